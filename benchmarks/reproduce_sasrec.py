"""Reproduce SASRec (Kang & McAuley, ICDM 2018) on the Games log at the paper's settings, as the flagged cells of
`nbs/32_sasrec_reproduction.ipynb` do, and print the test metrics under both protocols beside the paper's.

    python -m benchmarks.reproduce_sasrec                      # the paper's settings: BCE, 200 epochs at most
    python -m benchmarks.reproduce_sasrec --loss softmax       # the full softmax instead of one negative per position
    python -m benchmarks.reproduce_sasrec --json results/sasrec_games.json
    python -m benchmarks.reproduce_sasrec --style reference    # the blocks and initialisation of the authors' code
    python -m benchmarks.reproduce_sasrec --style reference --padded   # ... and its batches: random users, padded to 50

Training stops early when validation NDCG@10 (sampled protocol) has not improved for `--patience` epochs,
with the best weights restored. A checkpoint folder (`--checkpoint-dir`, default in the user cache) lets a
killed run resume where it stopped. The file written records the commit of the code, the package versions and
the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks.timing import provenance, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", default="bce", choices=["bce", "softmax", "sampled_softmax"])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default="paper", choices=["paper", "reference"],
                   help="'paper': the paper's equations; 'reference': the released code's blocks and initialisation")
    p.add_argument("--padded", action="store_true",
                   help="batches of random users padded to 50, as the reference code trains (default: similar lengths, cut)")
    p.add_argument("--users", type=int, default=None, help="keep only the first N users (a quick run)")
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    # the commit before training: the checkout may change while it runs
    meta = provenance("benchmarks.reproduce_sasrec", sys.argv[1:] if argv is None else list(argv)) if args.json else {}

    import keras
    from platformdirs import user_cache_dir
    from seqrec_nb.attention import SASRec
    from seqrec_nb.data import leave_one_out, load_sasrec_txt
    from seqrec_nb.evaluate import MarkovChain, Popularity, evaluate
    from seqrec_nb.train import seed_everything

    ck = args.checkpoint_dir or (f"{user_cache_dir('seqrec_nb')}/reproduce_sasrec_{args.style}_{args.loss}_{args.seed}_"
                                 f"{args.users or 'all'}{'_padded' if args.padded else ''}")
    log = load_sasrec_txt()
    if args.users: log = log[log.user_id.isin(log.user_id.unique()[:args.users])]
    games = leave_one_out(log)
    seed_everything(args.seed, deterministic=False)

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, val NDCG@10 {logs['val_NDCG@10']:.4f} "
                  f"({time.perf_counter() - self.t:.1f} s with validation)", flush=True)

    t0 = time.perf_counter()
    rec = SASRec(loss=args.loss, epochs=args.epochs, patience=args.patience, seed=args.seed, style=args.style,
                 bucket_by_length=not args.padded, validation_protocol="sampled")      # the paper validates on sampled
    rec.fit(games, checkpoint_dir=ck, verbose=0, callbacks=[Progress()])
    seconds = time.perf_counter() - t0
    rows = {}
    for name, model in {"Popularity": Popularity().fit(games), "MarkovChain": MarkovChain().fit(games), "SASRec": rec}.items():
        rows[name] = {f"{proto} {m}": v for proto in ("sampled", "full")
                      for m, v in evaluate(model, games, proto, progress=False).items() if m in ("HR@10", "NDCG@10")}
    epochs = len(rec.history["loss"])
    best = max(range(epochs), key=lambda i: rec.history["val_NDCG@10"][i]) + 1
    print(f"\nSASRec on Games{f' (first {args.users} users)' if args.users else ''}, loss={args.loss}, style={args.style}, "
          f"{'padded' if args.padded else 'length-grouped'} batches, {epochs} epochs (best validation at epoch {best}), "
          f"{seconds:.0f} s wall time with validation, backend {keras.backend.backend()}\n")
    print(f"{'model':22s} {'sampled HR@10':>14s} {'sampled NDCG@10':>16s} {'full HR@10':>11s} {'full NDCG@10':>13s}")
    for name, r in rows.items():
        print(f"{name:22s} {r['sampled HR@10']:14.4f} {r['sampled NDCG@10']:16.4f} {r['full HR@10']:11.4f} {r['full NDCG@10']:13.4f}")
    print(f"{'SASRec (paper)':22s} {0.7410:14.4f} {0.5360:16.4f}")
    if args.json:
        write_json(args.json, meta | {"loss": args.loss, "style": args.style, "epochs": epochs, "best_epoch": best,
                                      "seconds": seconds, "seed": args.seed, "padded": args.padded,
                                      "backend": keras.backend.backend(), "results": rows, "history": rec.history})
    return 0


if __name__ == "__main__":
    sys.exit(main())
