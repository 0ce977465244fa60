"""`benchmarks.lstm_profile` at a tiny size, so that the profile cannot rot between full runs."""
import json

import keras
import pytest

from benchmarks import lstm_profile as prof


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the script times TensorFlow graphs")
def test_each_stage_is_timed_on_real_data(capsys, tmp_path):
    r = prof.profile(n_batches=2, epochs=1, dim=8)
    assert list(r["cumulative_s"]) == list(prof.STAGES) and all(t > 0 for t in r["cumulative_s"].values())
    assert r["batches"] == 2 and r["positions"] > 0 and r["batch_size"] == 256
    assert prof.main(["--batches", "2", "--epochs", "1", "--json", str(tmp_path / "p.json")]) == 0
    assert "optimizer" in capsys.readouterr().out
    saved = json.loads((tmp_path / "p.json").read_text())
    assert list(saved["cumulative_s"]) == list(prof.STAGES) and saved["epochs"] == 1
    assert saved["command"].startswith("python -m benchmarks.lstm_profile") and "commit" in saved and saved["versions"]


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="only the refusal is tested off TensorFlow")
def test_other_backends_are_refused():
    with pytest.raises(SystemExit, match="KERAS_BACKEND=tensorflow"): prof.profile(n_batches=1, epochs=1, dim=8)
