"""Where a full-softmax training step of `LSTMRec` spends its time, stage by stage (TensorFlow backend).

    python -m benchmarks.lstm_profile --json results/bench/lstm_profile.json   # the whole Games epoch, median of 3 (about 5 minutes on 2 CPU cores)
    python -m benchmarks.lstm_profile --batches 20                            # a quick smoke run on the first 20 batches

`benchmarks.lstm` times whole epochs; this module splits one. It compiles four nested training steps with
`tf.function` (no XLA), each doing one stage more than the last, and times an epoch of each over the same
batches:

1. the network's forward pass (embedding, dropout, LSTM);
2. + the loss and its gradients for the hidden states and the output layer's weights: for the full softmax
   that is `chunked_softmax_loss`, which computes them in its forward pass;
3. + the backward pass through the rest: the gradients of every weight (the LSTM's backward loop, the
   embedding's);
4. + Adam's update.

Each stage's cost is the difference between consecutive rows. A stage whose result nothing uses would be
pruned from the graph, so each step returns a number that depends on every result of its stage's work. The
file written records the commit of the code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks.lstm import HYPER
from benchmarks.timing import provenance, write_json

STAGES = ("forward", "loss", "backward", "optimizer")


def depends_on(grads):
    "One number that depends on every gradient in `grads` (sparse ones through their values, not densified)."
    import tensorflow as tf
    return tf.add_n([tf.reduce_sum((g.values if isinstance(g, tf.IndexedSlices) else g)[:1]) for g in grads])


def stage_steps(net, optimizer):
    "One `tf.function` per stage: each runs the stages up to and including its own on a batch `(x, y)`."
    import tensorflow as tf

    def upto(stage):
        @tf.function(reduce_retracing=True)
        def step(x, y):
            if stage == "forward": return tf.reduce_sum(net(x, training=True))
            with tf.GradientTape() as tape:
                h = net(x, training=True)
                loss = net.compute_loss(x, y, h)
            if stage == "loss":              # the output layer's gradients too, which it computes anyway
                output = [v for v in net.trainable_variables if "output" in v.path]    # output embedding and bias
                return loss + depends_on(tape.gradient(loss, [h] + output))
            grads = tape.gradient(loss, net.trainable_variables)
            if stage == "backward": return loss + depends_on(grads)
            optimizer.apply_gradients(zip(grads, net.trainable_variables))
            return loss
        return step
    return {stage: upto(stage) for stage in STAGES}


def profile(n_batches: int | None = None, epochs: int = 3, dim: int = 64) -> dict:
    """Median epoch time, in seconds, of each cumulative stage, on the Games log with `benchmarks.lstm`'s hyper-parameters
    (`HYPER`) at width `dim`."""
    import keras
    import numpy as np
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.lstm import LSTMRec
    from seqrec_nb.train import adam, seed_everything

    if keras.backend.backend() != "tensorflow": raise SystemExit("benchmarks.lstm_profile times TensorFlow graphs: use KERAS_BACKEND=tensorflow")
    seed_everything(0, deterministic=False)
    split = leave_one_out(load_sasrec_txt())
    rec = LSTMRec(loss="softmax", jit_compile=False, **(HYPER | {"dim": dim}))
    source = rec.batches(split)
    batches = [source[i] for i in range(len(source) if n_batches is None else min(n_batches, len(source)))]
    net = rec.build_net(split.n_items)
    net(batches[0][0])
    optimizer = adam(HYPER["learning_rate"])             # what `LSTMRec` compiles with
    optimizer.build(net.trainable_variables)
    out = {}
    for stage, step in stage_steps(net, optimizer).items():
        for x, y in batches[:3]: step(x, y)               # trace
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            for x, y in batches: step(x, y).numpy()
            times.append(time.perf_counter() - t0)
        out[stage] = float(np.median(times))
    return {"cumulative_s": out, "batches": len(batches), "positions": int(sum(y.size for _, y in batches)), "dim": dim,
            "batch_size": HYPER["batch_size"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=None, help="the first N batches only (a smoke run)")
    p.add_argument("--epochs", type=int, default=3, help="epochs timed per stage; the median is reported")
    p.add_argument("--json", help="also write the result to this file")
    args = p.parse_args(argv)
    # the commit before profiling: the checkout may change while it runs
    meta = provenance("benchmarks.lstm_profile", sys.argv[1:] if argv is None else list(argv)) if args.json else {}
    r = profile(args.batches, args.epochs)
    cum = r["cumulative_s"]
    print(f"LSTMRec, full softmax, d={r['dim']}: {r['batches']} batches, {r['positions']:,} positions; "
          f"median of {args.epochs} epochs per stage (TensorFlow, no XLA)\n")
    print(f"{'stage':10s} {'up to here s':>12s} {'stage s':>8s} {'share':>6s}")
    previous = 0.0
    for stage in STAGES:
        print(f"{stage:10s} {cum[stage]:12.2f} {cum[stage] - previous:8.2f} {(cum[stage] - previous) / cum['optimizer']:6.1%}")
        previous = cum[stage]
    if args.json: write_json(args.json, meta | r | {"epochs": args.epochs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
