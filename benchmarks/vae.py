"""Benchmark one training epoch of Mult-VAE, Mult-DAE and the sequential VAE (`SeqVAE`) on the Games log at their
default settings, with and without XLA (`jit_compile`), against the epoch's FLOP count and the machine's measured
matrix-multiply rate. There is no target to meet: the module prints epoch time and peak memory.

    python -m benchmarks.vae --json results/bench/vae.json   # the whole table (six configurations, two epochs each)
    python -m benchmarks.vae --batches 2                    # a quick smoke run on the first 2 batches

Each configuration runs in its own process (so its peak memory is its own) for two epochs; the table reports the
second (the steady state) and the first (which includes tracing and compilation). FLOPs count the matrix
products, padded positions included, forward and a backward of twice the forward. The bag models, per batch
of B users with N = n_items + 1, hidden H and latent L: forward `2 B (N H + H E + L H + H N)`, with an encoder
output E = 2L for Mult-VAE (mean and log-variance) and E = L for Mult-DAE; the backward is twice that, less
the gradient with respect to the input bags (`2 B N H`), which nothing computes. The sequential
VAE, per batch of P = B T positions (batches cut to their longest history, maxlen 50), width d, latent L:
forward `2 P (6 d^2)` for the GRU's input and recurrent products (three gates each), `2 P d 2L` into the
latent, `2 P L d` out of it, and `2 P d N` for the full-softmax output layer. The bound is FLOPs / rate, the
rate measured in the same process on the output layer's shape (B users x H -> N for the bag models, 2048
positions x d -> N for SeqVAE); a square 2048 product is measured for comparison. The file written records the
commit of the code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import json
import sys

from benchmarks.timing import (SQUARE, epoch_timer, first_batches, matmul_rates, provenance, rss_mib, run_in_subprocess,
                               write_result)

MODELS = {"vae": "Mult-VAE", "dae": "Mult-DAE", "seqvae": "SeqVAE"}
CONFIGS = [(model, jit) for model in MODELS for jit in (False, True)]
SETTINGS = {"vae": dict(hidden=600, latent=200, batch_size=500), "dae": dict(hidden=600, latent=200, batch_size=500, variational=False),
            "seqvae": dict(dim=64, latent=64, batch_size=128, maxlen=50)}


def bag_epoch_flops(batches, hidden: int, latent: int, variational: bool, n_batches: int | None = None) -> dict:
    "Matrix-product FLOPs of one Mult-VAE (or Mult-DAE) epoch over `BagBatches` `batches` (or its first `n_batches`)."
    n = len(batches) if n_batches is None else min(n_batches, len(batches))
    users, N, E = min(len(batches.sequences), n * batches.batch_size), batches.n_items + 1, (2 if variational else 1) * latent
    # the first layer's backward needs only its weight gradient: nothing differentiates the input bags
    return {"rows": users, "encoder": 2 * 2 * users * N * hidden + 3 * 2 * users * hidden * E,
            "decoder": 3 * 2 * users * (latent * hidden + hidden * N)}


def seq_epoch_flops(batches, dim: int, latent: int, n_batches: int | None = None) -> dict:
    "Matrix-product FLOPs of one `SeqVAE` epoch over `NextItemBatches` `batches` (or its first `n_batches`), padding included."
    n = len(batches) if n_batches is None else min(n_batches, len(batches))
    shapes = [batches[i][1].shape for i in range(n)]
    p = sum(b * t for b, t in shapes)
    return {"rows": sum(b for b, _ in shapes), "positions": p, "gru": 3 * 2 * p * 6 * dim * dim,
            "latent": 3 * 2 * p * (dim * 2 * latent + latent * dim), "output": 3 * 2 * p * dim * (batches.n_items + 1)}


def total_flops(flops: dict) -> int:
    return sum(v for k, v in flops.items() if k not in ("rows", "positions"))


def run_one(model: str, jit: bool, n_batches: int | None) -> dict:
    "Train one configuration for two epochs in this process; its measurements."
    import keras
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.train import seed_everything
    from seqrec_nb.vae import MultVAE, SeqVAE

    seed_everything(0, deterministic=False)        # TensorFlow refuses XLA under op determinism
    split, s = leave_one_out(load_sasrec_txt()), SETTINGS[model]
    rec = (SeqVAE if model == "seqvae" else MultVAE)(jit_compile=jit, **s)
    batches = rec.batches(split)
    if model == "seqvae":
        flops = seq_epoch_flops(batches, s["dim"], s["latent"], n_batches)
        out_shape = (2048, s["dim"], split.n_items + 1)
    else:
        flops = bag_epoch_flops(batches, s["hidden"], s["latent"], s.get("variational", True), n_batches)
        out_shape = (s["batch_size"], s["hidden"], split.n_items + 1)
    net = rec.build_net(split.n_items)
    rss_before = rss_mib()
    timer = epoch_timer(batches.set_epoch)          # each epoch its own shuffle, as seqrec_nb.train.fit does
    hist = net.fit(first_batches(batches, n_batches), epochs=2, verbose=0, shuffle=False, callbacks=[timer])
    peak = rss_mib()                                # before the matmul probe, whose operands are large
    rates = matmul_rates([out_shape, SQUARE])
    return {"model": model, "jit_compile": jit, "jit_used": bool(net.jit_compile), "backend": keras.backend.backend(),
            "n_items": split.n_items, "first_epoch_s": timer.seconds[0], "epoch_s": timer.seconds[1], "rows": flops["rows"],
            "final_loss": hist.history["loss"][-1], "peak_rss_mib": peak, "rss_before_training_mib": rss_before,
            "flops": flops, "rate_shape": list(out_shape), "rate_gflops": rates[out_shape], "square_gflops": rates[SQUARE]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=None, help="train on the first N batches only (a smoke run)")
    p.add_argument("--one", nargs=2, metavar=("MODEL", "JIT"), help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one[0], args.one[1] == "1", args.batches)))
        return 0
    # the commit before training: the checkout may change while the benchmark runs
    meta = provenance("benchmarks.vae", sys.argv[1:] if argv is None else list(argv)) if args.json else {}
    rows = []
    for model, jit in CONFIGS:
        r = run_in_subprocess("benchmarks.vae", [model, str(int(jit))], args.batches)
        if r is None: return 1
        rows.append(r)
        print(f"  done: {MODELS[model]:8s} jit={jit!s:5s} epoch {r['epoch_s']:.1f} s", file=sys.stderr, flush=True)

    r0 = rows[0]
    print(f"Mult-VAE, Mult-DAE and SeqVAE, one epoch on Games ({r0['n_items']:,} items), backend {r0['backend']}, "
          f"settings {SETTINGS}; steady-state epoch (the second)\n")
    head = (f"{'model':8s} {'jit':>4s} {'epoch s':>8s} {'1st ep s':>8s} {'rows':>7s} {'rows/s':>7s} {'peak MiB':>9s} "
            f"{'+MiB':>6s} {'GFLOP':>8s} {'GFLOP/s':>8s} {'bound s':>8s} {'ratio':>6s}")
    print(head); print("-" * len(head))
    for r in rows:
        total = total_flops(r["flops"])
        r |= {"bound_s": total / 1e9 / r["rate_gflops"]}
        r["ratio"] = r["epoch_s"] / r["bound_s"]
        print(f"{MODELS[r['model']]:8s} {('yes' if r['jit_used'] else 'no'):>4s} {r['epoch_s']:8.2f} {r['first_epoch_s']:8.2f} "
              f"{r['rows']:7,d} {r['rows'] / r['epoch_s']:7.0f} {r['peak_rss_mib']:9.0f} "
              f"{r['peak_rss_mib'] - r['rss_before_training_mib']:6.0f} {total / 1e9:8.1f} {r['rate_gflops']:8.0f} "
              f"{r['bound_s']:8.2f} {r['ratio']:6.2f}")
    print("\nrows: users (Mult-VAE, Mult-DAE) or training sequences (SeqVAE) per epoch; peak MiB: the process's peak "
          "resident memory, +MiB: its growth during training")
    print("GFLOP/s: the matmul rate measured on the output layer's shape, (m, k, n) = "
          + ", ".join(f"{MODELS[r['model']]} {tuple(r['rate_shape'])}" for r in rows[::2])
          + "; bound = FLOPs / that rate")
    print("square (2048, 2048, 2048) matmul rate, GFLOP/s:", ", ".join(f"{r['square_gflops']:.0f}" for r in rows))
    seq = [r for r in rows if r["model"] == "seqvae"]
    if seq: print(f"SeqVAE padded positions per epoch: {seq[0]['flops']['positions']:,d}")
    for model, name in MODELS.items():
        no, yes = (next(r for r in rows if r["model"] == model and r["jit_compile"] == j) for j in (False, True))
        print(f"{name}: XLA {'used' if yes['jit_used'] else 'NOT used'}, epoch {yes['epoch_s']:.2f} s against "
              f"{no['epoch_s']:.2f} s without ({yes['epoch_s'] / no['epoch_s']:.2f}x)")
    if args.json: write_result(args.json, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
