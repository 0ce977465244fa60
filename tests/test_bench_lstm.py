"""`benchmarks.lstm` (and the shared `benchmarks.timing`) at a tiny size, so that the benchmark cannot rot between full runs."""
import json
import subprocess

import keras
import numpy as np
import pytest

from benchmarks import lstm as bench
from benchmarks import timing
from seqrec_nb.data import NextItemBatches

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only


def test_flop_count_follows_the_batches():
    batches = NextItemBatches([[1, 2, 3, 4], [2, 3], [4, 1, 2]], n_items=4, maxlen=5, batch_size=2, shuffle=False,
                              bucket_by_length=True)
    positions = sum(batches[i][1].size for i in range(len(batches)))
    f = bench.epoch_flops(batches, n_items=4, loss="softmax", dim=3, n_negatives=7)
    assert f == {"positions": positions, "output": 6 * positions * 3 * 5, "lstm": 48 * positions * 9}
    assert bench.epoch_flops(batches, 4, "sampled_softmax", 3, 7)["output"] == 6 * positions * 3 * 8


def test_matmul_rate_is_measured():
    rates = timing.matmul_rates([(64, 32, 48)], repeats=3)
    assert list(rates) == [(64, 32, 48)] and rates[(64, 32, 48)] > 0
    assert timing.mean_rate({"(1, 2, 3)": 3.0, "(4, 5, 6)": 1.0, str(timing.SQUARE): 99.0}) == 2.0     # the square left out


def test_provenance_records_the_commit_and_versions(tmp_path):
    meta = timing.provenance("benchmarks.lstm", ["--json", "x y.json"])
    assert meta["command"] == "python -m benchmarks.lstm --json 'x y.json'"
    assert meta["versions"]["keras"] == keras.__version__ and meta["started"]
    head = subprocess.run(["git", "-C", str(timing.ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0: assert meta["commit"].split("+")[0] == head.stdout.strip()
    else: assert meta["commit"] is None
    timing.write_result(tmp_path / "r.json", [{"a": 1}], meta)
    assert json.loads((tmp_path / "r.json").read_text()) == meta | {"rows": [{"a": 1}]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]                  # no temporary file left


def test_each_epoch_is_priced_at_the_rates_beside_it():
    # 2 GFLOP an epoch; after training the output layer's shapes average 2 GFLOP/s and the square product 8; beside
    # the epochs the rate was 4 (before the first), then 2, 1 and 1 after each
    rates = {"(1, 2, 3)": 3.0, "(4, 5, 6)": 1.0, "(7, 8, 9)": 2.0, "(2048, 2048, 2048)": 8.0}
    r = {"flops": {"output": 1.5e9, "lstm": 0.5e9}, "rates_gflops": rates, "epochs_s": [9.0, 1.0, 2.0], "epoch_s": 1.5,
         "rates_beside_epochs_gflops": [4.0, 2.0, 1.0, 1.0]}
    p = bench.priced(r)
    assert timing.mean_rate(rates) == 2.0 and p["bound_s"] == 1.0 and p["ratio"] == 1.5
    assert p["bound_square_s"] == 0.25 and p["ratio_square"] == 6.0
    # epoch 2 (1 s) between rates 2 and 1: bound 2 / 1.5 s; epoch 3 (2 s) between 1 and 1: bound 2 s
    assert p["ratios_beside"] == [0.75, 1.0] and p["ratio_beside"] == 0.875
    assert "ratio_segments" not in p                # a run from before the segments were timed


def test_each_segment_is_priced_at_the_rates_beside_it():
    # epoch 2: 3 GFLOP in 1 s between rates 2 and 4 (bound 1 s), then 2 GFLOP in 3 s between 4 and 4 (bound 0.5 s);
    # epoch 3: one segment, 4 GFLOP in 2 s between 1 and 3 (bound 2 s); epoch 1 (tracing) is left out
    seg = lambda s, gflop, before, after: {"s": s, "gflop": gflop, "rate_before": before, "rate_after": after}
    r = {"flops": {"output": 4e9, "lstm": 1e9}, "rates_gflops": {"(1, 2, 3)": 1.0, "(2048, 2048, 2048)": 1.0},
         "epochs_s": [9.0, 4.0, 2.0], "epoch_s": 3.0, "rates_beside_epochs_gflops": [1.0, 1.0, 1.0, 1.0],
         "segments": [[seg(9.0, 5.0, 100.0, 100.0)], [seg(1.0, 3.0, 2.0, 4.0), seg(3.0, 2.0, 4.0, 4.0)], [seg(2.0, 4.0, 1.0, 3.0)]]}
    p = bench.priced(r)
    assert p["ratios_segments"] == [4.0 / 1.5, 1.0] and p["ratio_segments"] == (4.0 / 1.5 + 1.0) / 2
    # priced beside each epoch at its own FLOPs, counted by its segments: 4 s for 5 GFLOP at 1, 2 s for 4 GFLOP at 1
    assert p["ratios_beside"] == [0.8, 0.5]


def test_segment_must_not_be_negative():
    with pytest.raises(SystemExit): bench.main(["--segment", "-1"])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing; "
                    "LSTMRec itself is tested on every backend in test_lstm.py")
@pytest.mark.parametrize("chunked, batch_size", [(True, 128), (False, 64)])
def test_one_configuration_runs_on_real_data(chunked, batch_size, monkeypatch):
    monkeypatch.setattr(bench, "SEGMENT", 2)            # 3 batches: segments of 2 and 1 steps, the rate measured between
    r = bench.run_one("softmax", False, n_batches=3, dim=16, chunked=chunked, batch_size=batch_size)
    assert r["sequences"] > 0 and r["epoch_s"] > 0 and np.isfinite(r["final_loss"])
    assert r["flops"]["output"] > r["flops"]["lstm"] > 0 and r["peak_rss_mib"] >= r["rss_before_training_mib"]
    assert r["chunked"] is chunked and r["softmax_chunk"] == (512 if chunked else None)
    assert len(r["epochs_s"]) == 1 + bench.MEASURED_EPOCHS and r["epoch_s"] == np.median(r["epochs_s"][1:])
    assert len(r["rates_beside_epochs_gflops"]) == 2 + bench.MEASURED_EPOCHS and min(r["rates_beside_epochs_gflops"]) > 0
    assert all(0 < steps <= wall for steps, wall in zip(r["epochs_s"], r["epochs_wall_s"]))
    assert r["learning_rate"] == pytest.approx(bench.learning_rate_for(batch_size))
    assert r["batch_size"] == batch_size and 2 * batch_size < r["sequences"] <= 3 * batch_size   # 3 batches, the last maybe short
    segments = r["segments"]
    assert [len(epoch) for epoch in segments] == [2] * (1 + bench.MEASURED_EPOCHS)
    for epoch, seconds in zip(segments, r["epochs_s"]):
        assert seconds == sum(seg["s"] for seg in epoch) and all(seg["s"] > 0 for seg in epoch)
        assert epoch[0]["rate_after"] == epoch[1]["rate_before"] > 0 and epoch[0]["gflop"] > 0 < epoch[1]["gflop"]
    # the rate at an epoch's end is the next epoch's first segment's rate before it
    assert [epoch[-1]["rate_after"] for epoch in segments] == r["rates_beside_epochs_gflops"][1:]
    assert [epoch[0]["rate_before"] for epoch in segments] == r["rates_beside_epochs_gflops"][:-1]
    # the first epoch's batches are those counted before training: its segments hold all its FLOPs
    assert sum(seg["gflop"] for seg in segments[0]) == pytest.approx((r["flops"]["output"] + r["flops"]["lstm"]) / 1e9)


def test_learning_rate_scales_with_the_batch():
    assert bench.learning_rate_for(bench.HYPER["batch_size"]) == bench.HYPER["learning_rate"]
    assert bench.learning_rate_for(128) == pytest.approx(5e-3) and bench.learning_rate_for(256) == pytest.approx(1e-2)
    for bad in (0, -128, True, 12.5):
        with pytest.raises(ValueError, match="batch_size"): bench.learning_rate_for(bad)
    h = bench.hyper_for(128, dim=16)
    assert h == bench.HYPER | {"dim": 16, "batch_size": 128, "learning_rate": pytest.approx(5e-3)}


def _nothing_runs(monkeypatch):
    "Make training fail loudly, so that an argument check that is missing fails the test at once instead of training."
    def refuse(*args, **kwargs): raise AssertionError("an argument check let this run")
    for name in ("run_in_subprocess", "run_quality", "run_one"): monkeypatch.setattr(bench, name, refuse)


def test_configs_are_positions_in_the_table(monkeypatch):
    _nothing_runs(monkeypatch)
    for bad in ("9", "-1", "a,1", "", "0,0"):
        with pytest.raises(SystemExit): bench.main(["--configs", bad])


def test_options_that_do_not_apply_are_refused(monkeypatch):
    _nothing_runs(monkeypatch)
    for argv in (["--users", "100"], ["--quality", "--users", "0"], ["--quality", "--configs", "0"], ["--quality", "--batches", "2"],
                 ["--one", "softmax", "0", "64", "1", "256", "--configs", "0"]):
        with pytest.raises(SystemExit): bench.main(argv)


def test_each_configuration_is_saved_as_it_ends(tmp_path, monkeypatch):
    # the second configuration fails: the file holds the first, whole
    results = iter([{"epoch_s": 1.0, "n": 1}, None])
    monkeypatch.setattr(bench, "run_in_subprocess", lambda *args, **kwargs: next(results))
    monkeypatch.setattr(bench, "priced", lambda r: {"ratio_segments": 1.0})
    path = tmp_path / "run.json"
    assert bench.main(["--configs", "3,1", "--json", str(path)]) == 1
    doc = json.loads(path.read_text())
    assert doc["rows"] == [{"epoch_s": 1.0, "n": 1, "ratio_segments": 1.0}]
    assert doc["command"] == f"python -m benchmarks.lstm --configs 3,1 --json {path}" and "commit" in doc and doc["versions"]
    assert not (tmp_path / "run.json.tmp").exists()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing")
def test_quality_trains_each_batch_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "QUALITY_EPOCHS", 2)
    monkeypatch.setattr(bench, "QUALITY_BATCHES", (32, 64))
    assert bench.main(["--quality", "--users", "150", "--json", str(tmp_path / "q.json")]) == 0
    rows = json.loads((tmp_path / "q.json").read_text())["rows"]
    assert [r["batch_size"] for r in rows] == [32, 64]
    assert [r["learning_rate"] for r in rows] == [pytest.approx(bench.learning_rate_for(32)), pytest.approx(bench.learning_rate_for(64))]
    for r in rows:
        assert r["users"] == 150 and r["epochs"] == 2 and len(r["val_ndcg10"]) == len(r["loss"]) == 2
        assert all(0 <= x <= 1 for x in r["val_ndcg10"]) and all(np.isfinite(r["loss"])) and r["fit_s"] > 0
        for protocol in ("sampled", "full"):
            assert set(r["test"][protocol]) == {"HR@10", "NDCG@10"}
            assert 0 <= r["test"][protocol]["NDCG@10"] <= r["test"][protocol]["HR@10"] <= 1
    # half the batch, about twice the steps (bucketing by length may add one)
    assert rows[0]["steps_per_epoch"] >= 2 * rows[1]["steps_per_epoch"] - 1
    out = capsys.readouterr().out
    assert "val ep 2" in out and out.count("\n   32 ") == 1 and out.count("\n   64 ") == 1
