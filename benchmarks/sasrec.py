"""Benchmark one training epoch of `SASRec` on the Games log at the paper's settings, with and without XLA
(`jit_compile`), with batches cut to their longest history (the default) and padded to 50 as the reference
implementation does, against the epoch's FLOP count and the machine's measured matrix-multiply rate.

    python -m benchmarks.sasrec --json results/bench/sasrec.json   # the whole table (about 6 minutes on 2 CPU cores)
    python -m benchmarks.sasrec --batches 20                       # a quick smoke run on the first 20 batches

Each configuration runs in its own process for four epochs; the table reports the median of the last three (the
first includes tracing and compilation; a later epoch's first step sometimes stalls for seconds, a recompilation
or the data pipeline restarting, so one epoch alone is a noisy sample). FLOPs count the matrix products the model performs, padded positions included, per
batch of B sequences of width T with P = B T positions, width d, n blocks and K negatives: per block, forward,
`12 P d^2` (the query/key/value, output and two feed-forward products) plus `4 P T d` (scores and weighted
sum); backward twice the forward; and `6 P d (K + 1)` for the candidate scores. The rate is measured in the
same process on the model's dense product shapes (projections and feed-forward, forward and backward, m = 6400
rows, a padded batch), averaged over the shapes; the attention's batched products are priced at that rate. The check the chapter states:
an epoch at the paper's settings takes at most 2.5x its bound. The file written records the commit of the
code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import json
import sys

from benchmarks.timing import (SQUARE, epoch_timer, first_batches, matmul_rates, mean_rate, provenance, rss_mib,
                               run_in_subprocess, write_result)

PAPER = dict(dim=50, n_blocks=2, n_heads=1, dropout=0.5, maxlen=50, loss="bce", n_negatives=1, learning_rate=1e-3,
             batch_size=128)
MEASURED_EPOCHS = 3                  # after the first; the table reports their median
CONFIGS = [(True, False), (True, True), (False, False), (False, True)]          # (bucket_by_length, jit_compile)


def epoch_flops(batches, dim: int, n_blocks: int, n_negatives: int, n_batches: int | None = None) -> dict:
    "Matrix-product FLOPs of one SASRec training epoch over `batches` (or its first `n_batches`), padding included."
    n = len(batches) if n_batches is None else min(n_batches, len(batches))
    negatives, batches.negatives = batches.negatives, None              # the shapes only: skip drawing negatives
    try: shapes = [batches[i][1].shape for i in range(n)]
    finally: batches.negatives = negatives
    blocks = sum(3 * n_blocks * (12 * b * t * dim ** 2 + 4 * b * t * t * dim) for b, t in shapes)
    output = sum(6 * b * t * dim * (n_negatives + 1) for b, t in shapes)
    return {"positions": sum(b * t for b, t in shapes), "blocks": blocks, "output": output}


def run_one(bucket: bool, jit: bool, n_batches: int | None) -> dict:
    "Train one configuration for `1 + MEASURED_EPOCHS` epochs in this process; its measurements."
    import keras
    import numpy as np
    from seqrec_nb.attention import SASRec
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.train import seed_everything

    seed_everything(0, deterministic=False)
    split = leave_one_out(load_sasrec_txt())
    rec = SASRec(jit_compile=jit, **PAPER)
    batches = rec.batches(split, bucket_by_length=bucket)
    flops = epoch_flops(batches, PAPER["dim"], PAPER["n_blocks"], PAPER["n_negatives"], n_batches)
    net = rec.build_net(split.n_items)
    rss_before, timer = rss_mib(), epoch_timer()
    data = first_batches(batches, n_batches)
    hist = net.fit(data, epochs=1 + MEASURED_EPOCHS, verbose=0, shuffle=False, callbacks=[timer])
    seconds = timer.seconds
    n_seq = sum(int((np.asarray(data[i][1]) != 0).any(axis=1).sum()) for i in range(len(data)))     # real rows, not fill
    d, m = PAPER["dim"], 6400
    rate_shapes = [(m, d, 3 * d), (m, 3 * d, d), (d, m, 3 * d), (m, d, d), (d, m, d), SQUARE]
    rates = matmul_rates(rate_shapes)
    return {"bucket": bucket, "jit_compile": jit, "jit_used": bool(net.jit_compile), "backend": keras.backend.backend(),
            "first_epoch_s": seconds[0], "epoch_s": float(np.median(seconds[1:])), "epochs_s": seconds, "sequences": n_seq, "final_loss": hist.history["loss"][-1],
            "peak_rss_mib": rss_mib(), "rss_before_training_mib": rss_before, "flops": flops,
            "rates_gflops": {str(k): v for k, v in rates.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=None, help="train on the first N batches only (a smoke run)")
    p.add_argument("--one", nargs=2, metavar=("BUCKET", "JIT"), help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one[0] == "1", args.one[1] == "1", args.batches)))
        return 0
    # the commit before training: the checkout may change while the benchmark runs
    meta = provenance("benchmarks.sasrec", sys.argv[1:] if argv is None else list(argv)) if args.json else {}
    rows = []
    for bucket, jit in CONFIGS:
        r = run_in_subprocess("benchmarks.sasrec", [str(int(bucket)), str(int(jit))], args.batches)
        if r is None: return 1
        rows.append(r)
        print(f"  done: bucket={bucket!s:5s} jit={jit!s:5s} epoch {rows[-1]['epoch_s']:.1f} s", file=sys.stderr, flush=True)

    r0 = rows[0]
    print(f"SASRec, one epoch on Games ({r0['sequences']:,} training sequences), backend {r0['backend']}, paper settings "
          f"{PAPER}; steady state: the median of epochs 2 to {1 + MEASURED_EPOCHS}\n")
    head = (f"{'batches':>14s} {'jit':>4s} {'epoch s':>8s} {'1st ep s':>8s} {'seq/s':>7s} {'peak MiB':>9s} {'+MiB':>6s} "
            f"{'positions':>10s} {'GFLOP':>7s} {'bound s':>8s} {'ratio':>6s}")
    print(head); print("-" * len(head))
    for r in rows:
        rates = r["rates_gflops"]
        model_rate = mean_rate(rates)
        total = r["flops"]["blocks"] + r["flops"]["output"]
        r |= {"rate_gflops": model_rate, "bound_s": total / 1e9 / model_rate}
        r["ratio"] = r["epoch_s"] / r["bound_s"]
        print(f"{'cut to longest' if r['bucket'] else 'padded to 50':>14s} {('yes' if r['jit_used'] else 'no'):>4s} "
              f"{r['epoch_s']:8.1f} {r['first_epoch_s']:8.1f} {r['sequences'] / r['epoch_s']:7.0f} {r['peak_rss_mib']:9.0f} "
              f"{r['peak_rss_mib'] - r['rss_before_training_mib']:6.0f} {r['flops']['positions']:10,d} {total / 1e9:7.1f} "
              f"{r['bound_s']:8.2f} {r['ratio']:6.2f}")
    print("\nmatmul rates measured (GFLOP/s, float32, keras.ops.matmul, (m, k, n)):",
          ", ".join(f"{k}: {v:.0f}" for k, v in r0["rates_gflops"].items()))
    print("bound = FLOPs / mean rate of the model's five dense product shapes; peak MiB: the process's peak resident memory")
    padded = [r for r in rows if not r["bucket"]]
    best = min(padded, key=lambda r: r["ratio"])
    print(f"padded to 50 (the reference implementation's epoch), best (jit={best['jit_used']}): {best['epoch_s']:.1f} s = "
          f"{best['ratio']:.2f}x its FLOP bound: {'meets' if best['ratio'] <= 2.5 else 'misses'} the 2.5x target")
    fastest = min(rows, key=lambda r: r["epoch_s"])
    print(f"fastest epoch: {fastest['epoch_s']:.1f} s ({'cut to longest' if fastest['bucket'] else 'padded to 50'}, "
          f"jit={fastest['jit_used']}), {fastest['ratio']:.2f}x the bound of the FLOPs it performs")
    if args.json: write_result(args.json, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
