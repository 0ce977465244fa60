"""GPU check: the device report, then a small next-item model trained for a fixed number of steps in
float32 and in mixed precision, with steps per second for each and how well their losses agree.

Runs on any Keras backend (a GPU machine may have JAX or PyTorch and no TensorFlow):

    KERAS_BACKEND=jax python scripts/gpu_check.py            # or torch, or tensorflow
    KERAS_BACKEND=torch python scripts/gpu_check.py --steps 20 --batch 64   # a quick run on a CPU

The mixed policy is the one `seqrec_nb.train.choose_precision` picks for the machine; on a machine
where it picks float32 (a CPU), mixed_bfloat16 is run anyway so the comparison still means something.
"""
import argparse
import json
import time

import numpy as np


def build(n_items: int, maxlen: int, dim: int):
    import keras
    inp = keras.Input((maxlen,), dtype="int32")
    h = keras.layers.Embedding(n_items + 1, dim, mask_zero=True)(inp)
    h = keras.layers.GRU(dim, return_sequences=True)(h)
    # the scores stay float32 under a mixed policy: a softmax over thousands of items in 16 bits loses the tail
    out = keras.layers.Dense(n_items + 1, dtype="float32")(h)
    return keras.Model(inp, out)


def run(policy: str, batches, n_items: int, args, jit: bool) -> dict:
    import keras
    from seqrec_nb.train import seed_everything
    keras.config.set_dtype_policy(policy)
    seed_everything(0, deterministic=False)
    net = build(n_items, args.maxlen, args.dim)
    # under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer itself
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0), jit_compile=jit)
    for i in range(args.warmup): net.train_on_batch(*batches[i % len(batches)])     # compile, warm caches
    losses, t0 = [], time.perf_counter()
    for i in range(args.steps):
        losses.append(net.train_on_batch(*batches[(args.warmup + i) % len(batches)]))
    losses = [float(np.asarray(l).reshape(-1)[0]) for l in losses]                   # forces the device to finish
    secs = time.perf_counter() - t0
    return {"policy": policy, "steps_per_s": args.steps / secs, "final_loss": float(np.mean(losses[-max(1, args.steps // 10):])),
            "first_loss": losses[0], "finite": bool(np.isfinite(losses).all())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--maxlen", type=int, default=50)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--items", type=int, default=5000)
    args = p.parse_args()

    from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log
    from seqrec_nb.train import choose_jit_compile, choose_precision, describe_devices, device_report
    devices = describe_devices()
    report = device_report(devices)
    mixed = choose_precision(devices)
    if mixed == "float32": mixed = "mixed_bfloat16"
    split = leave_one_out(synthetic_log(n_users=4000, n_items=args.items, n_clusters=20, mean_len=40, seed=0)[0])
    batches = NextItemBatches(split.train_sequences(), split.n_items, maxlen=args.maxlen, batch_size=args.batch, seed=0)
    jit = choose_jit_compile(devices)
    results = [run(policy, batches, split.n_items, args, jit) for policy in ("float32", mixed)]
    f32, mix = results
    print(f"\n{'policy':16} {'steps/s':>9} {'first loss':>11} {'final loss':>11}")
    for r in results: print(f"{r['policy']:16} {r['steps_per_s']:9.2f} {r['first_loss']:11.4f} {r['final_loss']:11.4f}")
    agreement = abs(mix["final_loss"] - f32["final_loss"]) / f32["final_loss"]
    print(f"\nspeed-up {mix['steps_per_s'] / f32['steps_per_s']:.2f}x; final losses differ by {agreement:.2%} "
          f"({args.steps} steps of batch {args.batch}, XLA {'on' if jit else 'off'})")
    print(json.dumps({"report": {k: report[k] for k in ("backend", "framework", "accelerators", "precision", "strategy")},
                      "results": results, "relative_loss_difference": agreement}, default=str))
    if not all(r["finite"] for r in results): raise SystemExit("a loss went non-finite")


if __name__ == "__main__":
    main()
