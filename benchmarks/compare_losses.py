"""Train one sequence model with three losses and the rest of its recipe unchanged, and write what each loss
scores under every protocol, with its training time: the experiment of chapters 20 (LSTM) and 30 (SASRec).

    python -m benchmarks.compare_losses --model sasrec --data games --epochs 6 --out results/losses
    python -m benchmarks.compare_losses --model lstm --data games --epochs 6 --out results/losses
    python -m benchmarks.compare_losses --model sasrec --max-users 300 --epochs 2 --out /tmp/losses   # a quick check

The losses: the SASRec paper's binary cross-entropy with one uniform negative per position, a sampled softmax
over 256 popularity-sampled negatives per position (log-Q corrected; `NextItemBatches` draws them for every
position, so their cost grows with their number much faster than a batch-shared draw would), and the full
softmax over every item. Each run gets the same epoch cap (`--epochs`) and stops early on validation NDCG@10 under full ranking, as
the recipe does. The file `OUT/<model>-<data>.json` is written after every loss, and a rerun with the same
settings keeps the losses it already holds, so a killed run loses at most the loss in progress. The file records the
commit of the code, the package versions and the command (`benchmarks.timing`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.timing import provenance, write_json

LOSSES = {
    "BCE, 1 negative": {"loss": "bce", "negatives": "uniform", "n_negatives": 1},
    "sampled softmax, 256 negatives": {"loss": "sampled_softmax", "negatives": "popularity", "n_negatives": 256},
    "full softmax": {"loss": "softmax"},
}
_SAME = ("model", "data", "seed", "epochs", "max_users", "k")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sasrec", choices=["sasrec", "lstm"], help="the recipe to train (default sasrec)")
    p.add_argument("--data", default="games", help="games (default), online-retail, or a CSV/Parquet log with "
                   "user_id, item_id and timestamp columns")
    p.add_argument("--epochs", type=int, default=6, help="epoch cap of every run (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-users", type=int, default=None, help="a seeded random slice of this many users")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--out", default="results/losses", help="output folder (default results/losses)")
    args = p.parse_args(argv)
    if args.epochs < 1: p.error(f"--epochs {args.epochs}: must be at least 1")
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.model}-{Path(args.data).stem}.json"

    from seqrec_nb.benchmark import EpochBar, PROTOCOLS, load_log, measure, slice_users
    from seqrec_nb.data import leave_one_out
    from seqrec_nb.evaluate import RECIPES, too_few_negatives
    from seqrec_nb.train import seed_everything

    # the commit before training: the checkout may change while it runs
    run = provenance("benchmarks.compare_losses", sys.argv[1:] if argv is None else list(argv))
    commit = run["commit"]
    name, log = load_log(args.data)
    log = slice_users(log, args.max_users, args.seed)
    split = leave_one_out(log)
    protocols = PROTOCOLS
    if why := too_few_negatives(split):                   # a small catalogue: no 100 distinct negatives per user
        protocols = tuple(p for p in PROTOCOLS if p != "sampled")
        print(f"sampled protocol left out: {why}", file=sys.stderr)
    recipe = RECIPES[args.model]
    meta = {"model": args.model, "data": name, "seed": args.seed, "epochs": args.epochs, "max_users": args.max_users,
            "k": args.k, "users": int(split.train.user_id.nunique()), "items": split.n_items, "commit": commit,
            "versions": run["versions"], "command": run["command"], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows = {}
    if path.is_file():                  # keep the losses an earlier run of the same settings finished
        earlier = json.loads(path.read_text())
        if all(earlier["meta"].get(key) == meta[key] for key in _SAME):
            rows = {r["variant"]: r for r in earlier["rows"]}
            if rows: print(f"kept from {path}: {'; '.join(rows)}", file=sys.stderr)
    for label, loss in LOSSES.items():
        if label in rows: continue
        seed_everything(args.seed)
        model = recipe.build(split, "full", args.seed, args.epochs, **loss)
        t0 = time.perf_counter()
        model.fit(split, verbose=0, callbacks=[EpochBar(f"{recipe.name}, {label}")])
        seconds = time.perf_counter() - t0
        row, _ = measure(args.model, model, split, protocols, args.k, serving=False, seed=args.seed)
        val = model.history.get("val_NDCG@10", [])
        rows[label] = {"variant": label, **loss, "train s": seconds, "epochs": len(val),
                       "best epoch": (max(range(len(val)), key=val.__getitem__) + 1) if val else None,
                       "commit": commit} | row
        doc = {"meta": meta | {"finished": time.strftime("%Y-%m-%d %H:%M:%S")}, "rows": list(rows.values())}
        write_json(path, doc)
        scores = ", ".join(f"{row[f'{p} NDCG@{args.k}']:.4f} {p}" for p in protocols)
        print(f"{label}: NDCG@{args.k} {scores}, {seconds:.0f} s", file=sys.stderr)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
