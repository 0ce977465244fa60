"""`benchmarks.sasrec` and `benchmarks.reproduce_sasrec` at a tiny size, so that they cannot rot between full runs."""
import json
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from benchmarks import reproduce_sasrec as repro
from benchmarks import sasrec as bench
from seqrec_nb.data import NextItemBatches

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only


def test_flop_count_by_hand():
    """Two sequences of 5 items, one batch of width 4: d=3, one block, one negative, counted by hand."""
    batches = NextItemBatches([[1, 2, 3, 4, 1], [2, 3, 4, 1, 2]], n_items=4, maxlen=4, batch_size=2, shuffle=False,
                              negatives="uniform")
    f = bench.epoch_flops(batches, dim=3, n_blocks=1, n_negatives=1)
    # P = 8 positions; forward per block 12*8*9 = 864 (products) + 4*8*4*3 = 384 (attention); x3 with backward
    assert f == {"positions": 8, "blocks": 3 * (864 + 384), "output": 6 * 8 * 3 * 2}
    assert bench.epoch_flops(batches, dim=3, n_blocks=2, n_negatives=1)["blocks"] == 2 * 3 * (864 + 384)
    assert batches.negatives == "uniform"             # restored after counting


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing; "
                    "SASRec itself is tested on every backend in test_attention.py")
def test_one_configuration_runs_on_real_data():
    r = bench.run_one(bucket=True, jit=False, n_batches=2)
    assert r["sequences"] > 0 and r["epoch_s"] > 0 and np.isfinite(r["final_loss"])
    assert r["flops"]["blocks"] > r["flops"]["output"] > 0 and len(r["rates_gflops"]) == 6


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing")
def test_reproduction_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert repro.main(["--users", "300", "--epochs", "2", "--checkpoint-dir", str(tmp_path / "ck"), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["epochs"] == 2 and set(r["results"]) == {"Popularity", "MarkovChain", "SASRec"}
    assert r["command"].startswith("python -m benchmarks.reproduce_sasrec --users 300") and r["versions"]["keras"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    if head.returncode == 0: assert r["commit"].split("+")[0] == head.stdout.strip()   # the code the numbers came from
    else: assert r["commit"] is None
    assert 0 <= r["results"]["SASRec"]["sampled NDCG@10"] <= 1
    assert "SASRec (paper)" in capsys.readouterr().out
