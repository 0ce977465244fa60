"""How late each training epoch starts on TensorFlow: Keras reading a `PyDataset` itself (an autotuned `tf.data`
pipeline) against `seqrec_nb.train.fit` (its own pipeline, autotuning off), side by side in one run.

    python -m benchmarks.fit_input --json results/bench/fit_input.json   # 6 epochs each way (a few minutes on 2 CPU cores)
    python -m benchmarks.fit_input --users 300 --epochs 2                # a smoke run

Both train the same small next-item GRU, built afresh, on the same synthetic log. Per epoch it records the *start
delay*, from Keras' epoch start (`on_epoch_begin`) to the start of the epoch's first training step, and the steps'
own time, from there to the epoch's end. When Keras reads the `PyDataset` itself, dropping the previous epoch's
iterator, which happens in that gap, can wait on tf.data's autotuning thread with the CPU idle. Each way runs in its
own process, so that neither inherits the other's tf.data threads. The file written records the commit of the
code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchmarks.timing import provenance, run_in_subprocess, write_result

WAYS = ("keras", "seqrec_nb")


def run_way(way: str, users: int, epochs: int, seed: int = 0) -> dict:
    "Train `epochs` epochs one way in this process; the start delay and step time of each epoch."
    import keras
    from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log
    from seqrec_nb.train import fit, seed_everything

    if way not in WAYS: raise ValueError(f"way={way!r}: use one of {WAYS}")
    seed_everything(seed, deterministic=False)
    split = leave_one_out(synthetic_log(n_users=users, n_items=500, mean_len=40, seed=seed)[0])
    batches = NextItemBatches(split.train_sequences(), split.n_items, maxlen=50, batch_size=128, seed=seed)
    inp = keras.Input((50,), dtype="int32")
    h = keras.layers.GRU(64, return_sequences=True)(keras.layers.Embedding(split.n_items + 1, 64, mask_zero=True)(inp))
    net = keras.Model(inp, keras.layers.Dense(split.n_items + 1)(h))
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
    begin, first, delay, steps = {}, {}, [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None): self.epoch, begin[epoch] = epoch, time.perf_counter()
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0: first[self.epoch] = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            delay.append(first[epoch] - begin[epoch]); steps.append(time.perf_counter() - first[epoch])

    if way == "keras": net.fit(batches, epochs=epochs, verbose=0, shuffle=False, callbacks=[Timer()])
    else: fit(net, batches, epochs=epochs, verbose=0, callbacks=[Timer()])
    return {"way": way, "backend": keras.backend.backend(), "batches": len(batches), "start_delay_s": delay, "steps_s": steps}


def table(rows) -> str:
    "The side-by-side table: per way, the start delays and the steps' median time, over the epochs after the first."
    head = f"{'input':10s} {'epochs':>6s} {'delay median s':>14s} {'delay max s':>11s} {'late > 1 s':>10s} {'steps median s':>14s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        # the first epoch is left out: its start has no earlier iterator to drop, its steps include tracing
        d, s = r["start_delay_s"][1:], r["steps_s"][1:]
        lines.append(f"{r['way']:10s} {len(r['start_delay_s']):6d} {statistics.median(d):14.2f} {max(d):11.2f} "
                     f"{sum(x > 1 for x in d):10d} {statistics.median(s):14.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000, help="users in the synthetic log (default 20,000)")
    p.add_argument("--epochs", type=int, default=6, help="epochs each way (at least 2; default 6)")
    p.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), help="which ways, in this order (default: both, keras first)")
    p.add_argument("--one", choices=WAYS, help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.epochs < 2: p.error(f"--epochs {args.epochs}: at least 2 (the first epoch's start is not compared)")
    if args.one:
        print("RESULT " + json.dumps(run_way(args.one, args.users, args.epochs)))
        return 0
    meta = provenance("benchmarks.fit_input", sys.argv[1:] if argv is None else list(argv)) if args.json else {}
    rows = []
    for way in args.ways:
        r = run_in_subprocess("benchmarks.fit_input", [way], extra=["--users", str(args.users), "--epochs", str(args.epochs)])
        if r is None: return 1
        rows.append(r)
    print(f"Epochs 2 to {args.epochs}: start delay and training steps, {rows[0]['batches']} batches an epoch, "
          f"backend {rows[0]['backend']}\n")
    print(table(rows))
    if args.json: write_result(args.json, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
