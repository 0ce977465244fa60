"""`benchmarks.compare_losses` at a tiny size: one row per loss, every protocol, and a rerun keeps what is done."""
import json

import pytest

from benchmarks import compare_losses as cl
from seqrec_nb.data import synthetic_log

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only


def test_three_losses_written_and_kept_on_rerun(tmp_path, capsys):
    log = tmp_path / "log.csv"
    synthetic_log(n_users=120, n_items=40, mean_len=8, seed=1)[0].to_csv(log, index=False)
    argv = ["--model", "lstm", "--data", str(log), "--epochs", "1", "--out", str(tmp_path / "out")]
    assert cl.main(argv) == 0
    assert "sampled protocol left out" in capsys.readouterr().err
    path = tmp_path / "out" / "lstm-log.json"
    doc = json.loads(path.read_text())
    assert [r["variant"] for r in doc["rows"]] == list(cl.LOSSES)
    for row in doc["rows"]:
        assert row["epochs"] == 1 and row["train s"] > 0
        assert all(0 <= row[f"{p} NDCG@10"] <= 1 for p in ("full", "unseen"))
        assert "sampled NDCG@10" not in row                     # 40 items: no 100 distinct negatives per user
    assert doc["meta"]["epochs"] == 1 and doc["meta"]["items"] == 40
    assert doc["meta"]["command"].startswith("python -m benchmarks.compare_losses --model lstm") and doc["meta"]["versions"]
    capsys.readouterr()
    assert cl.main(argv) == 0                                   # the same settings: nothing is trained again
    assert "kept from" in capsys.readouterr().err
    assert [r["train s"] for r in json.loads(path.read_text())["rows"]] == [r["train s"] for r in doc["rows"]]
