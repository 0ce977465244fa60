"""What the benchmarks share: peak memory, matrix-multiply rates, one configuration per process, and provenance.

A benchmark prices an epoch against a bound: the epoch's matrix-product FLOPs divided by the rate that
`keras.ops.matmul` reaches on this machine, in this process's backend, measured on the model's own product
shapes (`matmul_rates`). `SQUARE`, a 2048-cubed product, is measured beside them for comparison. Each
configuration runs in its own process (`run_in_subprocess`), so that its peak memory (`rss_mib`) is its own.
Every file a benchmark writes records the commit of the code, the package versions and the command
(`provenance`, `write_result`).
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]          # the checkout: seqrec_nb/, benchmarks/, pyproject.toml
SQUARE = (2048, 2048, 2048)                         # the square product measured beside a model's own shapes


def rss_mib() -> float:
    "Peak resident memory of this process so far, in MiB (Linux reports `ru_maxrss` in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_batches(batches, n: int | None):
    "The first `n` batches of the `keras.utils.PyDataset` `batches` only (a quick run); `None` keeps all."
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
        # constant operands, made directly in float32: a product's speed does not depend on the values, and drawing
        # random ones of the output layer's size takes longer than the products
        a, b = keras.ops.full((m, k), 0.5, dtype="float32"), keras.ops.full((k, n), 0.5, dtype="float32")
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0])          # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            c = keras.ops.matmul(a, b)
            keras.ops.convert_to_numpy(c[0, 0])        # wait for the result (asynchronous backends)
            times.append(time.perf_counter() - t0)
        out[(m, k, n)] = 2 * m * k * n / np.median(times) / 1e9
    return out


def mean_rate(rates: dict) -> float:
    "The mean of the rates in `rates` (as `matmul_rates` returns them, keys tuples or their strings), `SQUARE` left out."
    shaped = [v for k, v in rates.items() if str(k) != str(SQUARE)]
    return sum(shaped) / len(shaped)


def epoch_timer(before_epoch=None):
    """A Keras callback that records each epoch's seconds in its list `seconds`, from `on_epoch_begin` to
    `on_epoch_end`; `before_epoch(epoch)`, when given, runs first at each epoch's start, outside the timing."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []
        def on_epoch_begin(self, epoch, logs=None):
            if before_epoch is not None: before_epoch(epoch)
            self.start = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None): self.seconds.append(time.perf_counter() - self.start)
    return EpochTimer()


def run_in_subprocess(module: str, one_args: list, batches: int | None = None, extra: list = ()) -> dict | None:
    """Run `python -m module --one *one_args *extra` in a fresh process (so its peak memory is its own) and return
    the dict it prints on its `RESULT ` line; None (with the child's stderr printed) when it fails. The child starts
    in this process's working directory: run the benchmarks from the repository root."""
    cmd = [sys.executable, "-m", module, "--one", *one_args, *extra] + (["--batches", str(batches)] if batches else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not line:
        print(f"{module} {' '.join(one_args)} failed:\n{res.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(line[-1][len("RESULT "):])


def source_commit() -> str | None:
    """The commit of the checkout the benchmarks run from, with `+changes` when the code that runs (`seqrec_nb/`,
    `benchmarks/`, `pyproject.toml`) differs from it; None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "seqrec_nb", "benchmarks", "pyproject.toml")
    except (OSError, subprocess.SubprocessError): return None
    return commit + ("+changes" if dirty else "")


def package_versions() -> dict:
    "Python, the packages the numbers depend on and the machine, as `seqrec_nb.evaluate.package_versions` records them for leaderboards and recipes."
    from seqrec_nb.evaluate import package_versions as versions
    return versions()


def provenance(module: str, argv: list | None = None, commit: str | None = None) -> dict:
    """What a result file records about its run: the commit of the code (`source_commit`, or `commit` when it was
    taken earlier, before training, since the checkout may change while a benchmark runs), the package versions,
    the command (`python -m module` with `argv`, default this process's arguments) and the start time (UTC)."""
    argv = sys.argv[1:] if argv is None else argv
    return {"commit": commit if commit is not None else source_commit(), "versions": package_versions(),
            "command": shlex.join(["python", "-m", module, *argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def write_json(path, doc) -> None:
    "Write `doc` to `path` through a temporary file, so that a run stopped while writing keeps the previous version whole."
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def write_result(path, rows: list, meta: dict) -> None:
    "Write a benchmark's `rows` (one per configuration) with its `provenance` `meta` to `path`: `{**meta, \"rows\": rows}`."
    write_json(path, meta | {"rows": rows})
