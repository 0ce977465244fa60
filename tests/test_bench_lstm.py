"""scripts/bench_lstm.py at a tiny size, so that the benchmark cannot rot between full runs."""
import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from seqrec_nb.data import NextItemBatches

spec = importlib.util.spec_from_file_location("bench_lstm", Path(__file__).parent.parent / "scripts" / "bench_lstm.py")
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)


def test_flop_count_follows_the_batches():
    batches = NextItemBatches([[1, 2, 3, 4], [2, 3], [4, 1, 2]], n_items=4, maxlen=5, batch_size=2, shuffle=False,
                              bucket_by_length=True)
    positions = sum(batches[i][1].size for i in range(len(batches)))
    f = bench.epoch_flops(batches, n_items=4, loss="softmax", dim=3, n_negatives=7)
    assert f == {"positions": positions, "output": 6 * positions * 3 * 5, "lstm": 48 * positions * 9}
    assert bench.epoch_flops(batches, 4, "sampled_softmax", 3, 7)["output"] == 6 * positions * 3 * 8


def test_matmul_rate_is_measured():
    rates = bench.matmul_rates([(64, 32, 48)], repeats=3)
    assert list(rates) == [(64, 32, 48)] and rates[(64, 32, 48)] > 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing; "
                    "LSTMRec itself is tested on every backend in test_lstm.py")
@pytest.mark.parametrize("chunked", [True, False])
def test_one_configuration_runs_on_real_data(chunked):
    r = bench.run_one("softmax", False, n_batches=2, dim=16, chunked=chunked)
    assert r["sequences"] > 0 and r["epoch_s"] > 0 and np.isfinite(r["final_loss"])
    assert r["flops"]["output"] > r["flops"]["lstm"] > 0 and r["peak_rss_mib"] >= r["rss_before_training_mib"]
    assert r["chunked"] is chunked and r["softmax_chunk"] == (512 if chunked else None)
    assert len(r["epochs_s"]) == 1 + bench.MEASURED_EPOCHS and r["epoch_s"] == np.median(r["epochs_s"][1:])
