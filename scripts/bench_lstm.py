"""Benchmark one training epoch of `LSTMRec` on the Games log: full versus sampled softmax, with and without
XLA (`jit_compile`), against the epoch's FLOP count and this machine's measured matrix-multiply rate.

    python scripts/bench_lstm.py                     # the whole table (about 35 minutes on 2 CPU cores)
    python scripts/bench_lstm.py --batches 20        # a quick smoke run on the first 20 batches

Each configuration runs in its own process (so its peak memory is its own) for four epochs: the first
includes tracing and compilation; the table reports the median of the other three, the steady state (one
epoch alone misled before). Training goes through `seqrec_nb.train.fit`, as `LSTMRec.fit` does. An epoch is timed
from its first training step's start to its end; the wall time from Keras' epoch start is kept too (`epochs_wall_s`).
Until `fit` fed Keras its own `tf.data` pipeline (autotuning off), Keras' start of an epoch on TensorFlow sometimes
waited (up to 39 s in run C), with the CPU idle, for the previous epoch's autotuned iterator to shut down; the two
times now show whether any such wait is left. Each epoch is also priced
at the product rates measured just before and after it (`ratio~`), as this shared machine's speed drifts. FLOPs count the
matrix products the implementation performs, padded positions included: the output layer
(`6 P d (N+1)` for the full softmax: forward, and the two backward products; `6 P d (K+1)` for K
sampled candidates) and the LSTM (`48 d^2` per position: the input and recurrent products, forward and
backward). The bound is FLOPs / rate, with the rate measured here, in this process's backend, on the
output layer's own shapes and on a square product. The check the chapter states: a full-softmax epoch
takes at most 1.5x its bound. The full softmax trains through `chunked_softmax_loss` (as `LSTMRec` does); the
table also has it trained from the whole logits (`NextItemNet.softmax_chunk = None`), side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MEASURED_EPOCHS = 3                  # after the first; the table reports their median
HYPER = dict(dim=64, maxlen=50, batch_size=128, n_negatives=100, learning_rate=5e-3, dropout=0.2)
# (loss, jit_compile, dim, chunked): the chapter's model (dim 64) four ways; the full softmax also computed from the
# whole logits (`softmax_chunk=None`, its training loss before `chunked_softmax_loss`), side by side; and the full
# softmax at dim 128, where the output layer's products weigh more against the passes over the logits
CONFIGS = [("softmax", False, 64, True), ("softmax", True, 64, True), ("softmax", False, 64, False),
           ("softmax", True, 64, False), ("sampled_softmax", False, 64, True), ("sampled_softmax", True, 64, True),
           ("softmax", False, 128, True), ("softmax", True, 128, True)]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batches_limited(batches, n):
    "The first `n` batches of `batches` only (a quick run); `None` keeps all."
    if n is None: return batches
    import keras

    class First(keras.utils.PyDataset):
        def __init__(self): super().__init__()
        def __len__(self): return min(n, len(batches))
        def __getitem__(self, i): return batches[i]
        def on_epoch_end(self): batches.on_epoch_end()
    return First()


def matmul_rates(shapes, repeats: int = 7) -> dict:
    "Median float32 GFLOP/s of `keras.ops.matmul` for each `(m, k, n)` in `shapes`, on the current backend."
    import keras
    import numpy as np
    out = {}
    for m, k, n in shapes:
        a = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(m, k)).astype("float32"))
        b = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(k, n)).astype("float32"))
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0])          # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            c = keras.ops.matmul(a, b)
            keras.ops.convert_to_numpy(c[0, 0])        # wait for the result (asynchronous backends)
            times.append(time.perf_counter() - t0)
        out[(m, k, n)] = 2 * m * k * n / np.median(times) / 1e9
    return out


def shaped_rate(rates: dict) -> float:
    "The mean rate of the output layer's three product shapes in `rates` (as `matmul_rates` returns it, keys tuples or strings)."
    shaped = [v for k, v in rates.items() if str(k) != "(2048, 2048, 2048)"]
    return sum(shaped) / len(shaped)


def epoch_flops(batches, n_items: int, loss: str, dim: int, n_negatives: int, n_batches: int | None = None) -> dict:
    "Matrix-product FLOPs of one training epoch over `batches` (or its first `n_batches`), padded positions included."
    negatives, batches.negatives = batches.negatives, None          # the shapes only: skip drawing negatives
    n = len(batches) if n_batches is None else min(n_batches, len(batches))
    try: positions = sum(batches[i][1].size for i in range(n))
    finally: batches.negatives = negatives
    candidates = n_items + 1 if loss == "softmax" else n_negatives + 1
    return {"positions": positions, "output": 6 * positions * dim * candidates, "lstm": 48 * positions * dim * dim}


def run_one(loss: str, jit: bool, n_batches: int | None, dim: int = HYPER["dim"], chunked: bool = True) -> dict:
    """Train one configuration for `1 + MEASURED_EPOCHS` epochs in this process; its measurements. `chunked=False` trains the full
    softmax from the whole logits (`NextItemNet.softmax_chunk = None`) instead of chunk by chunk."""
    import keras
    import numpy as np
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.lstm import LSTMRec
    from seqrec_nb.train import fit, seed_everything

    seed_everything(0, deterministic=False)        # TensorFlow refuses XLA under op determinism
    split = leave_one_out(load_sasrec_txt())
    hyper = HYPER | {"dim": dim}
    rec = LSTMRec(loss=loss, jit_compile=jit, **hyper)
    batches = rec.batches(split)
    flops = epoch_flops(batches, split.n_items, loss, dim, HYPER["n_negatives"], n_batches)
    net = rec.build_net(split.n_items)
    net.set_sampler(batches.popularity)
    if not chunked: net.softmax_chunk = None
    rss_before = _rss_mib()
    rate_shapes = [(2048, dim, split.n_items + 1), (2048, split.n_items + 1, dim), (dim, 2048, split.n_items + 1),
                   (2048, 2048, 2048)]
    # the output layer's product rate just before the first epoch and after each one (outside the timed epochs): on a
    # shared machine whose speed drifts, each epoch is priced at the rates measured on either side of it
    begin, first_step, timer, wall, beside = {}, {}, {}, {}, [shaped_rate(matmul_rates(rate_shapes[:3], repeats=5))]

    class Timer(keras.callbacks.Callback):
        "An epoch's training steps, from its first step's start, and its wall time, from Keras' epoch start."
        def on_epoch_begin(self, epoch, logs=None): self.epoch, begin[epoch] = epoch, time.perf_counter()
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0: first_step[self.epoch] = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            timer[epoch], wall[epoch] = end - first_step[epoch], end - begin[epoch]
            beside.append(shaped_rate(matmul_rates(rate_shapes[:3], repeats=5)))
    data = _batches_limited(batches, n_batches)
    hist = fit(net, data, epochs=1 + MEASURED_EPOCHS, verbose=0, callbacks=[Timer()])
    n_seq = sum(data[i][1].shape[0] for i in range(len(data)))
    rates = matmul_rates(rate_shapes)
    return {"loss": loss, "dim": dim, "jit_compile": jit, "chunked": chunked, "softmax_chunk": net.softmax_chunk, "jit_used": bool(net.jit_compile), "backend": keras.backend.backend(),
            "first_epoch_s": timer[0], "epoch_s": float(np.median([timer[e] for e in range(1, 1 + MEASURED_EPOCHS)])),
            "epochs_s": [timer[e] for e in range(1 + MEASURED_EPOCHS)],
            "epochs_wall_s": [wall[e] for e in range(1 + MEASURED_EPOCHS)], "sequences": n_seq, "final_loss": hist.history["loss"][-1],
            "peak_rss_mib": _rss_mib(), "rss_before_training_mib": rss_before,
            "flops": flops, "rates_gflops": {str(k): v for k, v in rates.items()}, "rates_beside_epochs_gflops": beside}


def priced(r: dict) -> dict:
    """The bounds and ratios of one configuration's result `r`: `bound_s` and `ratio` at the output layer's product rate
    measured after training, `bound_square_s` and `ratio_square` at the square product's, and `ratios_beside` (each
    measured epoch against the bound at the mean of the rates measured just before and just after it) with their median."""
    rates, total = r["rates_gflops"], (r["flops"]["output"] + r["flops"]["lstm"]) / 1e9
    bound, bound_sq = total / shaped_rate(rates), total / rates["(2048, 2048, 2048)"]
    beside = r["rates_beside_epochs_gflops"]          # before epoch 1, then after each epoch
    ratios_beside = [r["epochs_s"][e] * (beside[e] + beside[e + 1]) / 2 / total for e in range(1, len(r["epochs_s"]))]
    return {"bound_s": bound, "ratio": r["epoch_s"] / bound, "bound_square_s": bound_sq, "ratio_square": r["epoch_s"] / bound_sq,
            "ratios_beside": ratios_beside, "ratio_beside": statistics.median(ratios_beside)}


def run_in_subprocess(script: str, one_args: list, batches: int | None) -> dict | None:
    """Run `script --one *one_args` in a fresh process (so its peak memory is its own) and return the dict it
    prints on its `RESULT ` line; None (with the child's stderr printed) when it fails."""
    cmd = [sys.executable, script, "--one", *one_args] + (["--batches", str(batches)] if batches else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        print(f"{' '.join(one_args)} failed:\n{res.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(line[0][len("RESULT "):])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=None, help="train on the first N batches only (a smoke run)")
    p.add_argument("--one", nargs=4, metavar=("LOSS", "JIT", "DIM", "CHUNKED"), help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one[0], args.one[1] == "1", args.batches, int(args.one[2]), args.one[3] == "1")))
        return 0
    rows = []
    for loss, jit, dim, chunked in CONFIGS:
        r = run_in_subprocess(__file__, [loss, "1" if jit else "0", str(dim), "1" if chunked else "0"], args.batches)
        if r is None: return 1
        rows.append(r)
        print(f"  done: {loss:16s} jit={jit!s:5s} dim={dim} chunked={chunked!s:5s} epoch {r['epoch_s']:.1f} s",
              file=sys.stderr, flush=True)

    print(f"LSTMRec, one epoch on Games ({rows[0]['sequences']:,} training sequences), backend {rows[0]['backend']}, "
          f"hyper-parameters {HYPER} (dim as in the table); steady state: the median of epochs 2 to {1 + MEASURED_EPOCHS}\n")
    head = (f"{'loss':16s} {'logits':>7s} {'dim':>4s} {'jit':>5s} {'epoch s':>8s} {'1st ep s':>8s} {'seq/s':>7s} {'peak MiB':>9s} {'+MiB':>6s} "
            f"{'GFLOP':>8s} {'bound s':>8s} {'ratio':>6s} {'ratio~':>6s} {'bound* s':>8s} {'ratio*':>6s}")
    print(head); print("-" * len(head))
    for r in rows:
        r |= priced(r)
        total = r["flops"]["output"] + r["flops"]["lstm"]
        bound, bound_sq = r["bound_s"], r["bound_square_s"]
        logits = "-" if r["loss"] != "softmax" else ("chunked" if r["chunked"] else "whole")
        print(f"{r['loss']:16s} {logits:>7s} {r['dim']:4d} {('yes' if r['jit_used'] else 'no'):>5s} {r['epoch_s']:8.1f} {r['first_epoch_s']:8.1f} "
              f"{r['sequences'] / r['epoch_s']:7.0f} {r['peak_rss_mib']:9.0f} {r['peak_rss_mib'] - r['rss_before_training_mib']:6.0f} "
              f"{total / 1e9:8.0f} {bound:8.1f} "
              f"{r['ratio']:6.2f} {r['ratio_beside']:6.2f} {bound_sq:8.1f} {r['ratio_square']:6.2f}")
    r0 = rows[0]
    print("\nmatmul rates measured (GFLOP/s, float32, keras.ops.matmul):",
          ", ".join(f"{k}: {v:.0f}" for k, v in r0["rates_gflops"].items()))
    print("peak MiB: the process's peak resident memory; +MiB: its growth during training (this machine has no GPU)")
    print("bound = FLOPs / mean rate of the output layer's three product shapes, measured after training; bound* = FLOPs / "
          "square-matmul rate;\nratio~ = median over the measured epochs of epoch / bound, the bound priced at the mean of "
          "the rates measured just before and just after that epoch")
    print(f"padded positions per epoch: {r0['flops']['positions']:,.0f}; output-layer share of the full-softmax FLOPs: "
          f"{r0['flops']['output'] / (r0['flops']['output'] + r0['flops']['lstm']):.1%}")
    print("matmul rates at dim 128:", ", ".join(f"{k}: {v:.0f}" for k, v in rows[-1]["rates_gflops"].items()))
    for dim in sorted({r["dim"] for r in rows}, reverse=True):
        full = [r for r in rows if r["loss"] == "softmax" and r["dim"] == dim]
        best = min(full, key=lambda r: r["ratio"])
        verdict = "meets" if best["ratio"] <= 1.5 else "misses"
        print(f"full softmax at dim {dim}, best configuration (jit={best['jit_used']}, chunked={best['chunked']}): "
              f"{best['epoch_s']:.1f} s = {best['ratio']:.2f}x its FLOP bound: {verdict} the 1.5x target")
        best = min(full, key=lambda r: r["ratio_beside"])
        verdict = "meets" if best["ratio_beside"] <= 1.5 else "misses"
        print(f"  priced beside each epoch (ratio~), best (jit={best['jit_used']}, chunked={best['chunked']}): "
              f"{best['ratio_beside']:.2f}x (epochs {', '.join(f'{x:.2f}' for x in best['ratios_beside'])}): {verdict} the 1.5x target")
    for jit in (False, True):
        pair = {r["chunked"]: r for r in rows if r["loss"] == "softmax" and r["dim"] == 64 and r["jit_compile"] == jit}
        if len(pair) == 2:
            print(f"full softmax at dim 64, jit={jit}: whole logits {pair[False]['epoch_s']:.1f} s, chunked "
                  f"{pair[True]['epoch_s']:.1f} s ({pair[False]['epoch_s'] / pair[True]['epoch_s']:.2f}x faster); "
                  f"peak memory {pair[False]['peak_rss_mib']:.0f} and {pair[True]['peak_rss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f: json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
