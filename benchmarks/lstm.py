"""Benchmark one training epoch of `LSTMRec` on the Games log: full versus sampled softmax, with and without
XLA (`jit_compile`), against the epoch's FLOP count and the machine's measured matrix-multiply rate.

    python -m benchmarks.lstm --json results/bench/lstm.json    # the whole table (30 to 60 minutes on 2 CPU cores)
    python -m benchmarks.lstm --batches 20                      # a quick smoke run on the first 20 batches
    python -m benchmarks.lstm --quality --json results/bench/lstm_quality.json   # what the batch sizes train (about 10 minutes)

Each configuration runs in its own process (so its peak memory is its own) for four epochs: the first
includes tracing and compilation; the table reports the median of the other three, the steady state. Training
goes through `seqrec_nb.train.fit`, as `LSTMRec.fit` does.

FLOPs count the matrix products the implementation performs, padded positions included: the output layer
(`6 P d (N+1)` for the full softmax: forward, and the two backward products; `6 P d (K+1)` for K sampled
candidates) and the LSTM (`48 d^2` per position: the input and recurrent products, forward and backward). The
bound is FLOPs / rate, the rate measured in the same process, in its backend, on the output layer's three
product shapes (2,048 rows) and, for comparison, on a square product. A machine's speed can move faster than an
epoch lasts, so an epoch is timed in segments of `SEGMENT` steps, each from its first step's start to its last
step's end, with the output layer's product rate measured between segments (outside them). Each epoch is priced
three ways: at the rates measured after training (`ratio`), at the rates measured just before and just after the
epoch (`ratio~`), and each segment at the rates measured just before and just after it (`ratio^`), the pricing
that follows the machine's speed most closely. The epoch's wall time from Keras' epoch start and the wait from
there to its first step are kept too. Peak memory includes the rate measurement's operands. The target the
chapter states: a full-softmax epoch takes at most 1.5x its bound.

The fixed hyper-parameters (`HYPER`) train in batches of 256 sequences at a learning rate of 1e-2: twice
`LSTMRec`'s defaults (SASRec's 128 sequences at 5e-3), the learning rate scaled with the batch
(`learning_rate_for`). A step pays some costs whatever its size (Adam's passes over the two item tables, the
LSTM's time steps one after another, Keras' own work); in batches of 256 they are shared by twice the positions.
One row keeps the defaults' batch of 128 beside them. `--quality` checks that the larger batch is not bought
with a worse model: it trains the full softmax for `QUALITY_EPOCHS` epochs at each batch size of
`QUALITY_BATCHES` and reports the validation NDCG@10 after each epoch and the test metrics. The full softmax
trains through `chunked_softmax_loss` (as `LSTMRec` does); the table also has it trained from the whole logits
(`NextItemNet.softmax_chunk = None`), side by side.

Every file written records the commit of the code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchmarks.timing import (SQUARE, first_batches, matmul_rates, mean_rate, provenance, rss_mib, run_in_subprocess,
                               write_result)

MEASURED_EPOCHS = 3                  # after the first; the table reports their median
SEGMENT = 40                         # training steps between two measurements of the product rate inside an epoch
HYPER = dict(dim=64, maxlen=50, batch_size=256, n_negatives=100, learning_rate=1e-2, dropout=0.2)
# (loss, jit_compile, dim, chunked, batch_size): the chapter's model (dim 64) four ways at HYPER's batch; the full softmax
# also computed from the whole logits (`softmax_chunk=None`, its training loss before `chunked_softmax_loss`), side by
# side; the full softmax at dim 128, where the output layer's products weigh more against the passes over the logits;
# and in batches of 128 (LSTMRec's default), where the costs each step pays whatever its size weigh twice as much
CONFIGS = [("softmax", False, 64, True, 256), ("softmax", True, 64, True, 256), ("softmax", False, 64, False, 256),
           ("softmax", True, 64, False, 256), ("sampled_softmax", False, 64, True, 256), ("sampled_softmax", True, 64, True, 256),
           ("softmax", False, 128, True, 256), ("softmax", True, 128, True, 256), ("softmax", False, 64, True, 128)]
QUALITY_EPOCHS = 4                   # epochs each batch size trains for in `--quality` (chapter 22's comparison trains 4)
QUALITY_BATCHES = (128, 256)


def learning_rate_for(batch_size: int) -> float:
    "The learning rate paired with `batch_size`: `HYPER`'s, scaled in proportion to the batch (5e-3 at 128, 1e-2 at 256)."
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
    return HYPER["learning_rate"] * batch_size / HYPER["batch_size"]


def hyper_for(batch_size: int, **changes) -> dict:
    "`HYPER` with `changes`, in batches of `batch_size` at the learning rate paired with it."
    return HYPER | changes | {"batch_size": batch_size, "learning_rate": learning_rate_for(batch_size)}


def step_positions(batches, n_batches: int | None = None) -> list:
    "The positions (padded ones included) of each batch of `batches` in its current order, or of its first `n_batches`."
    negatives, batches.negatives = batches.negatives, None          # the shapes only: skip drawing negatives
    n = len(batches) if n_batches is None else min(n_batches, len(batches))
    try: return [int(batches[i][1].size) for i in range(n)]
    finally: batches.negatives = negatives


def flops_per_position(n_items: int, loss: str, dim: int, n_negatives: int) -> dict:
    "Matrix-product FLOPs of one training position: the output layer's (forward and two backward) and the LSTM's."
    candidates = n_items + 1 if loss == "softmax" else n_negatives + 1
    return {"output": 6 * dim * candidates, "lstm": 48 * dim * dim}


def epoch_flops(batches, n_items: int, loss: str, dim: int, n_negatives: int, n_batches: int | None = None) -> dict:
    "Matrix-product FLOPs of one training epoch over `batches` (or its first `n_batches`), padded positions included."
    positions = sum(step_positions(batches, n_batches))
    per = flops_per_position(n_items, loss, dim, n_negatives)
    return {"positions": positions, "output": positions * per["output"], "lstm": positions * per["lstm"]}


def run_one(loss: str, jit: bool, n_batches: int | None, dim: int = HYPER["dim"], chunked: bool = True,
            batch_size: int = HYPER["batch_size"]) -> dict:
    """Train one configuration for `1 + MEASURED_EPOCHS` epochs in this process; its measurements. `chunked=False` trains the full
    softmax from the whole logits (`NextItemNet.softmax_chunk = None`) instead of chunk by chunk; `batch_size` (sequences
    per batch) replaces `HYPER`'s."""
    import keras
    import numpy as np
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.lstm import LSTMRec
    from seqrec_nb.train import fit, seed_everything

    seed_everything(0, deterministic=False)        # TensorFlow refuses XLA under op determinism
    split = leave_one_out(load_sasrec_txt())
    hyper = hyper_for(batch_size, dim=dim)
    rec = LSTMRec(loss=loss, jit_compile=jit, **hyper)
    batches = rec.batches(split)
    flops = epoch_flops(batches, split.n_items, loss, dim, HYPER["n_negatives"], n_batches)
    net = rec.build_net(split.n_items)
    net.set_sampler(batches.popularity)
    if not chunked: net.softmax_chunk = None
    rss_before = rss_mib()
    rate_shapes = [(2048, dim, split.n_items + 1), (2048, split.n_items + 1, dim), (dim, 2048, split.n_items + 1),
                   SQUARE]
    # the output layer's product rate just before the first epoch and after each one (outside the timed epochs): on a
    # machine whose speed drifts, each epoch is priced at the rates measured on either side of it
    def rate_now(): return mean_rate(matmul_rates(rate_shapes[:3], repeats=3))
    per_position = sum(flops_per_position(split.n_items, loss, dim, HYPER["n_negatives"]).values())
    begin, wait, timer, wall, segments, beside = {}, {}, {}, {}, {}, [rate_now()]
    data = first_batches(batches, n_batches)
    every = SEGMENT or len(data)                        # steps per segment; 0: the whole epoch

    class Timer(keras.callbacks.Callback):
        """An epoch's training time, the sum of its segments of `SEGMENT` steps, each timed from its first step's start
        to its last step's end, with the product rate measured between them (outside the segments); its wall time from
        Keras' epoch start (the measurements included); and the wait from the epoch's start to its first step."""
        def on_epoch_begin(self, epoch, logs=None):
            # this epoch's batch order (fit's own callback, which runs first, has set it): each segment's FLOPs
            self.epoch, self.positions, segments[epoch] = epoch, step_positions(batches, n_batches), []
            begin[epoch] = time.perf_counter()
        def on_train_batch_begin(self, batch, logs=None):
            if batch % every: return
            rate = rate_now() if batch else beside[-1]        # before the first segment: the one at the last epoch's end
            self.start = (batch, rate, time.perf_counter())
            if batch == 0: wait[self.epoch] = self.start[2] - begin[self.epoch]
        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % every and batch + 1 < len(data): return
            for v in (logs or {}).values(): keras.ops.convert_to_numpy(v)     # the step done (asynchronous backends)
            first, rate, t0 = self.start
            segments[self.epoch].append({"s": time.perf_counter() - t0, "rate_before": rate,
                                         "gflop": sum(self.positions[first:batch + 1]) * per_position / 1e9})
        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            beside.append(rate_now())
            segs = segments[epoch]
            for seg, after in zip(segs, [s["rate_before"] for s in segs[1:]] + [beside[-1]]): seg["rate_after"] = after
            timer[epoch], wall[epoch] = sum(seg["s"] for seg in segs), end - begin[epoch]
    hist = fit(net, data, epochs=1 + MEASURED_EPOCHS, verbose=0, callbacks=[Timer()])
    n_seq = sum(data[i][1].shape[0] for i in range(len(data)))
    rates = matmul_rates(rate_shapes)
    return {"loss": loss, "dim": dim, "batch_size": batch_size, "learning_rate": hyper["learning_rate"], "segment": SEGMENT, "jit_compile": jit, "chunked": chunked, "softmax_chunk": net.softmax_chunk, "jit_used": bool(net.jit_compile), "backend": keras.backend.backend(),
            "first_epoch_s": timer[0], "epoch_s": float(np.median([timer[e] for e in range(1, 1 + MEASURED_EPOCHS)])),
            "epochs_s": [timer[e] for e in range(1 + MEASURED_EPOCHS)],
            "epochs_wall_s": [wall[e] for e in range(1 + MEASURED_EPOCHS)], "epochs_start_wait_s": [wait[e] for e in range(1 + MEASURED_EPOCHS)],
            "segments": [segments[e] for e in range(1 + MEASURED_EPOCHS)], "sequences": n_seq, "final_loss": hist.history["loss"][-1],
            "peak_rss_mib": rss_mib(), "rss_before_training_mib": rss_before,
            "flops": flops, "rates_gflops": {str(k): v for k, v in rates.items()}, "rates_beside_epochs_gflops": beside}


def priced(r: dict) -> dict:
    """The bounds and ratios of one configuration's result `r`: `bound_s` and `ratio` at the output layer's product rate
    measured after training, `bound_square_s` and `ratio_square` at the square product's, and `ratios_beside` (each
    measured epoch against the bound at the mean of the rates measured just before and just after it, each epoch's own
    FLOPs counted by its segments where `r` has them) with their median;
    and, where `r` has them, `ratios_segments` (each measured epoch against the sum of its segments' bounds, each
    segment's FLOPs priced at the mean of the rates measured just before and just after it) with their median."""
    rates, total = r["rates_gflops"], (r["flops"]["output"] + r["flops"]["lstm"]) / 1e9
    bound, bound_sq = total / mean_rate(rates), total / rates[str(SQUARE)]
    beside = r["rates_beside_epochs_gflops"]          # before epoch 1, then after each epoch
    # each epoch's own FLOPs where its segments counted them (a run on the first batches only sees other batches each epoch)
    totals = [sum(seg["gflop"] for seg in epoch) for epoch in r["segments"]] if "segments" in r else [total] * len(r["epochs_s"])
    ratios_beside = [r["epochs_s"][e] * (beside[e] + beside[e + 1]) / 2 / totals[e] for e in range(1, len(r["epochs_s"]))]
    out = {"bound_s": bound, "ratio": r["epoch_s"] / bound, "bound_square_s": bound_sq, "ratio_square": r["epoch_s"] / bound_sq,
           "ratios_beside": ratios_beside, "ratio_beside": statistics.median(ratios_beside)}
    if "segments" in r:          # a record without segments timed whole epochs only
        ratios = [sum(seg["s"] for seg in epoch) / sum(seg["gflop"] * 2 / (seg["rate_before"] + seg["rate_after"]) for seg in epoch)
                  for epoch in r["segments"][1:]]
        out |= {"ratios_segments": ratios, "ratio_segments": statistics.median(ratios)}
    return out


def run_quality(batch_size: int, users: int | None = None, epochs: int | None = None) -> dict:
    """Train the full softmax (chunked, without XLA) at `batch_size` and its learning rate (`learning_rate_for`) for
    `epochs` (default `QUALITY_EPOCHS`) on Games (its first `users` users where given), with early stopping off;
    its validation NDCG@10 after each epoch (the sampled protocol, as chapter 22's comparison), its test HR@10 and
    NDCG@10 under both protocols, and the seconds `fit` took (validation included; not a benchmark: one run). With
    `patience=epochs` every epoch trains; `fit` still restores the weights of the best validation epoch, which is the
    last one where validation improved."""
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.evaluate import evaluate
    from seqrec_nb.lstm import LSTMRec
    from seqrec_nb.train import seed_everything

    epochs = QUALITY_EPOCHS if epochs is None else epochs
    log = load_sasrec_txt()
    if users is not None: log = log[log["user_id"].isin(log["user_id"].unique()[:users])]
    split = leave_one_out(log)
    seed_everything(0, deterministic=False)
    hyper = hyper_for(batch_size)
    rec = LSTMRec(loss="softmax", epochs=epochs, patience=epochs, validation_protocol="sampled", **hyper)
    t0 = time.perf_counter()
    rec.fit(split, verbose=0)
    seconds = time.perf_counter() - t0
    test = {protocol: {k: v for k, v in evaluate(rec, split, protocol).items() if k in ("HR@10", "NDCG@10")}
            for protocol in ("sampled", "full")}
    return {"batch_size": batch_size, "learning_rate": hyper["learning_rate"], "epochs": epochs, "users": split.n_users,
            "steps_per_epoch": len(rec.batches(split)), "val_ndcg10": [float(x) for x in rec.history["val_NDCG@10"]],
            "loss": [float(x) for x in rec.history["loss"]], "fit_s": seconds, "test": test}


def quality_report(rows: list) -> None:
    "Print `run_quality`'s results side by side."
    print(f"LSTMRec, full softmax (chunked, no XLA) on Games ({rows[0]['users']:,} users), {rows[0]['epochs']} epochs each, "
          f"early stopping off; hyper-parameters {HYPER} but for the batch and its learning rate\n")
    head = (f"{'batch':>5s} {'lr':>7s} {'steps':>6s} " + " ".join(f"{'val ep ' + str(e + 1):>9s}" for e in range(rows[0]["epochs"]))
            + f" {'test s-NDCG':>11s} {'test s-HR':>9s} {'test f-NDCG':>11s} {'test f-HR':>9s} {'fit s':>6s}")
    print(head); print("-" * len(head))
    for r in rows:
        t = r["test"]
        print(f"{r['batch_size']:5d} {r['learning_rate']:7.4f} {r['steps_per_epoch']:6d} " + " ".join(f"{x:9.4f}" for x in r["val_ndcg10"])
              + f" {t['sampled']['NDCG@10']:11.4f} {t['sampled']['HR@10']:9.4f} {t['full']['NDCG@10']:11.4f} {t['full']['HR@10']:9.4f} {r['fit_s']:6.0f}")
    print("val ep k: validation NDCG@10 (sampled protocol) after epoch k; s-: the sampled protocol, f-: the full one; "
          "fit s: one run, validation included, not a timing")


def main(argv=None) -> int:
    global SEGMENT
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=None, help="train on the first N batches only (a smoke run)")
    p.add_argument("--one", nargs=5, metavar=("LOSS", "JIT", "DIM", "CHUNKED", "BATCH"), help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results to this file (rewritten after each configuration)")
    p.add_argument("--configs", default=None, help=f"comma-separated positions in CONFIGS to run, in that order (default: "
                   f"all {len(CONFIGS)})")
    p.add_argument("--quality", action="store_true", help="train the full softmax at each batch size of QUALITY_BATCHES "
                   f"for {QUALITY_EPOCHS} epochs and report validation NDCG@10 per epoch and test metrics, instead of timing")
    p.add_argument("--users", type=int, default=None, help="with --quality: the first N users of Games only (a smoke run)")
    p.add_argument("--segment", type=int, default=SEGMENT,
                   help=f"training steps between two measurements of the product rate inside an epoch (default {SEGMENT}; "
                        "0: none, each epoch one segment)")
    args = p.parse_args(argv)
    if args.segment < 0: p.error(f"--segment {args.segment}: must be at least 0")
    SEGMENT = args.segment
    if args.users is not None and (not args.quality or args.users < 1):
        p.error(f"--users {args.users}: a positive number, and only with --quality")
    if args.quality and (args.configs is not None or args.batches is not None or args.one):
        p.error("--quality trains whole epochs of the full softmax at QUALITY_BATCHES: --configs, --batches and --one do not apply")
    if args.one and args.configs is not None: p.error("--one runs one configuration: --configs does not apply")
    # the commit before training: the checkout may change while the benchmark runs
    meta = provenance("benchmarks.lstm", sys.argv[1:] if argv is None else list(argv)) if args.json else {}
    if args.quality:
        rows = [run_quality(batch, args.users) for batch in QUALITY_BATCHES]
        if args.json: write_result(args.json, rows, meta)
        quality_report(rows)
        return 0
    if args.one:
        loss, jit, dim, chunked, batch = args.one
        print("RESULT " + json.dumps(run_one(loss, jit == "1", args.batches, int(dim), chunked == "1", int(batch))))
        return 0
    try: picked = range(len(CONFIGS)) if args.configs is None else [int(i) for i in args.configs.split(",")]
    except ValueError: picked = [-1]
    if not all(0 <= i < len(CONFIGS) for i in picked) or len(set(picked)) < len(picked):
        p.error(f"--configs {args.configs}: comma-separated positions 0..{len(CONFIGS) - 1}, each at most once")
    configs = [CONFIGS[i] for i in picked]
    rows = []
    for loss, jit, dim, chunked, batch in configs:
        r = run_in_subprocess("benchmarks.lstm", [loss, "1" if jit else "0", str(dim), "1" if chunked else "0", str(batch)], args.batches,
                              ["--segment", str(args.segment)])
        if r is None: return 1
        rows.append(r | priced(r))
        print(f"  done: {loss:16s} jit={jit!s:5s} dim={dim} chunked={chunked!s:5s} batch={batch} epoch {r['epoch_s']:.1f} s, "
              f"ratio^ {rows[-1]['ratio_segments']:.2f}", file=sys.stderr, flush=True)
        if args.json: write_result(args.json, rows, meta)       # after each configuration: a failure later loses none of them

    print(f"LSTMRec, one epoch on Games ({rows[0]['sequences']:,} training sequences), backend {rows[0]['backend']}, "
          f"hyper-parameters {HYPER} (dim, batch size and learning rate as in the table); steady state: the median of epochs 2 to {1 + MEASURED_EPOCHS}\n")
    head = (f"{'loss':16s} {'logits':>7s} {'dim':>4s} {'batch':>5s} {'lr':>6s} {'jit':>5s} {'epoch s':>8s} {'1st ep s':>8s} {'seq/s':>7s} {'peak MiB':>9s} {'+MiB':>6s} "
            f"{'GFLOP':>8s} {'bound s':>8s} {'ratio':>6s} {'ratio~':>6s} {'ratio^':>6s} {'bound* s':>8s} {'ratio*':>6s}")
    print(head); print("-" * len(head))
    for r in rows:
        total = r["flops"]["output"] + r["flops"]["lstm"]
        bound, bound_sq = r["bound_s"], r["bound_square_s"]
        logits = "-" if r["loss"] != "softmax" else ("chunked" if r["chunked"] else "whole")
        print(f"{r['loss']:16s} {logits:>7s} {r['dim']:4d} {r['batch_size']:5d} {r['learning_rate']:6.4f} {('yes' if r['jit_used'] else 'no'):>5s} {r['epoch_s']:8.1f} {r['first_epoch_s']:8.1f} "
              f"{r['sequences'] / r['epoch_s']:7.0f} {r['peak_rss_mib']:9.0f} {r['peak_rss_mib'] - r['rss_before_training_mib']:6.0f} "
              f"{total / 1e9:8.0f} {bound:8.1f} "
              f"{r['ratio']:6.2f} {r['ratio_beside']:6.2f} {r['ratio_segments']:6.2f} {bound_sq:8.1f} {r['ratio_square']:6.2f}")
    r0 = rows[0]
    segment_words = f"{args.segment} steps" if args.segment else "a whole epoch (--segment 0)"
    print("\nmatmul rates measured (GFLOP/s, float32, keras.ops.matmul):",
          ", ".join(f"{k}: {v:.0f}" for k, v in r0["rates_gflops"].items()))
    print("peak MiB: the process's peak resident memory; +MiB: its growth during training")
    print("bound = FLOPs / mean rate of the output layer's three product shapes, measured after training; bound* = FLOPs / "
          "square-matmul rate;\nratio~ = median over the measured epochs of epoch / bound, the bound priced at the mean of "
          "the rates measured just before and just after that epoch;\nratio^ = the same with each segment of "
          f"{segment_words} priced at the rates measured just before and just after it (epoch s: the sum of its segments)")
    seg_rates = [seg["rate_before"] for epoch in r0["segments"][1:] for seg in epoch]
    print(f"output-layer product rates measured between the segments of {r0['loss']} (dim {r0['dim']}), epochs 2 to "
          f"{1 + MEASURED_EPOCHS}: {min(seg_rates):.0f} to {max(seg_rates):.0f} GFLOP/s (median {statistics.median(seg_rates):.0f})")
    print(f"padded positions per epoch: {r0['flops']['positions']:,.0f}; output-layer share of the full-softmax FLOPs: "
          f"{r0['flops']['output'] / (r0['flops']['output'] + r0['flops']['lstm']):.1%}")
    at_128 = [r for r in rows if r["dim"] == 128]
    if at_128: print("matmul rates at dim 128:", ", ".join(f"{k}: {v:.0f}" for k, v in at_128[-1]["rates_gflops"].items()))
    for dim, batch in sorted({(r["dim"], r["batch_size"]) for r in rows}, reverse=True):
        full = [r for r in rows if r["loss"] == "softmax" and r["dim"] == dim and r["batch_size"] == batch]
        if not full: continue
        best = min(full, key=lambda r: r["ratio"])
        verdict = "meets" if best["ratio"] <= 1.5 else "misses"
        print(f"full softmax at dim {dim}, batch {batch}, best configuration (jit={best['jit_used']}, chunked={best['chunked']}): "
              f"{best['epoch_s']:.1f} s = {best['ratio']:.2f}x its FLOP bound: {verdict} the 1.5x target")
        for key, how in (("beside", "priced beside each epoch (ratio~)"), ("segments", f"priced beside each segment of {segment_words} (ratio^)")):
            best = min(full, key=lambda r: r[f"ratio_{key}"])
            verdict = "meets" if best[f"ratio_{key}"] <= 1.5 else "misses"
            print(f"  {how}, best (jit={best['jit_used']}, chunked={best['chunked']}): {best[f'ratio_{key}']:.2f}x "
                  f"(epochs {', '.join(f'{x:.2f}' for x in best[f'ratios_{key}'])}): {verdict} the 1.5x target")
    for jit in (False, True):
        pair = {r["chunked"]: r for r in rows if r["loss"] == "softmax" and r["dim"] == 64 and r["batch_size"] == HYPER["batch_size"] and r["jit_compile"] == jit}
        if len(pair) == 2:
            print(f"full softmax at dim 64, jit={jit}: whole logits {pair[False]['epoch_s']:.1f} s, chunked "
                  f"{pair[True]['epoch_s']:.1f} s ({pair[False]['epoch_s'] / pair[True]['epoch_s']:.2f}x faster); "
                  f"peak memory {pair[False]['peak_rss_mib']:.0f} and {pair[True]['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
