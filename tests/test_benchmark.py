"The installed console command `seqrec-nb`, run as a user runs it (benchmark, recommend, report, reproducibility), and its bad arguments."
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from seqrec_nb.data import synthetic_log

from run_cli import run_main

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only

CLI = shutil.which("seqrec-nb", path=str(Path(sys.executable).parent)) or "seqrec-nb"
NEURAL = "lstm,sasrec,multvae,seqvae,cfgan"


def start(tmp_path, *args):
    "Start `seqrec-nb ARGS` in the background (offline; caches under tmp_path)."
    env = {**os.environ, "SEQREC_CACHE": str(tmp_path / "cache"), "SEQREC_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, timeout=900):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    "A small synthetic log with its own column names and a description per item, as a user's CSV."
    log, _ = synthetic_log(n_users=120, n_items=150, seed=5)     # items enough for 100 distinct sampled negatives
    log = log.assign(description=lambda d: "thing " + d.item_id.astype(str))
    path = tmp_path_factory.mktemp("data") / "events.csv"
    log.rename(columns={"user_id": "customer", "item_id": "sku", "timestamp": "when"}).to_csv(path, index=False)
    return path


def columns(log_file):
    return ["--data", log_file, "--user-col", "customer", "--item-col", "sku", "--time-col", "when"]


def test_benchmark_writes_the_leaderboard_and_a_saved_model_recommends(tmp_path, log_file):
    out = tmp_path / "out"
    code, printed, err = finish(start(tmp_path, "benchmark", *columns(log_file), "--models", "pop,markov,ease,lstm",
                                      "--max-epochs", "1", "--protocol", "sampled", "--seed", "3", "--out", out))
    assert code == 0, err
    header = next(line for line in printed.splitlines() if "train s" in line).split()
    assert "EASE" in printed and "sampled" in header and not {"full", "unseen"} & set(header), printed
    table = pd.read_csv(out / "leaderboard.csv", index_col="model")
    assert list(table.index) == ["Popularity", "MarkovChain", "EASE", "LSTMRec"]
    assert table["sampled NDCG@10"].between(0, 1).all() and (table["latency_ms_median"] > 0).all()
    doc = json.loads((out / "leaderboard.json").read_text())
    assert doc["meta"]["seed"] == 3 and doc["meta"]["protocols"] == ["sampled"] and doc["meta"]["versions"]["keras"]
    assert {r["bucket"] for r in doc["ndcg_by_history_length"]} == {"1-4", "5-9", "10-19", "20-49", "50+"}
    for png in ("quality_vs_time.png", "ndcg_by_history_length.png"):
        assert (out / png).stat().st_size > 1000
    # integer item ids from the command line, a word among them ignored, the history itself left out
    code, printed, err = finish(start(tmp_path, "recommend", "--model", out / "models" / "lstm", "--history", "3", "foo", "7",
                                      "-k", "4", "--exclude-seen"))
    assert code == 0, err
    lines = printed.strip().splitlines()
    assert len(lines) == 4 and all("\tthing " in line for line in lines), printed
    assert not {line.split("\t")[0] for line in lines} & {"3", "7"}


def test_another_cutoff(tmp_path, log_file):
    out = tmp_path / "k5"
    code, printed, err = finish(start(tmp_path, "benchmark", *columns(log_file), "--models", "pop,ease", "-k", "5",
                                      "--out", out, "--no-save-models"))
    assert code == 0, err
    table = pd.read_csv(out / "leaderboard.csv", index_col="model")
    assert {"full NDCG@5", "sampled HR@5", "repeat share@5"} <= set(table.columns)
    assert (out / "quality_vs_time.png").is_file() and (out / "ndcg_by_history_length.png").is_file()


def test_same_seed_same_leaderboard(tmp_path, log_file):
    "Two runs with the same seed (at the same time, on this machine and backend) give the same quality columns."
    runs = [start(tmp_path, "benchmark", *columns(log_file), "--models", f"pop,markov,ease,{NEURAL}", "--size", "quick",
                  "--max-users", 100, "--seed", 1, "--out", tmp_path / f"run{i}", "--no-save-models") for i in (0, 1)]
    results = [finish(p) for p in runs]
    for code, _, err in results: assert code == 0, err
    tables = [pd.read_csv(tmp_path / f"run{i}" / "leaderboard.csv", index_col="model") for i in (0, 1)]
    quality = [c for c in tables[0].columns if "@" in c]
    assert len(tables[0]) == 8 and len(quality) == 8          # 3 protocols x (HR, NDCG), repeats, popularity overlap
    pd.testing.assert_frame_equal(tables[0][quality], tables[1][quality], check_exact=True)
    assert not (tmp_path / "run0" / "models").exists()


@pytest.mark.backend_free        # every case is refused before a model trains: CI runs it on TensorFlow only
def test_bad_arguments_give_one_line_and_a_nonzero_exit(tmp_path, log_file, capsys, monkeypatch):
    """Each case runs `seqrec_nb.benchmark.main` in this process (no process start per case); the case without a
    command also goes through the installed console script, which must print the same line."""
    monkeypatch.setenv("SEQREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQREC_OFFLINE", "1")
    saved = tmp_path / "saved"
    code, _, err = run_main(["benchmark", *columns(log_file), "--models", "pop", "--out", saved], capsys)
    assert code == 0, err
    ints = tmp_path / "line_numbers.csv"           # times that are not calendar times: no ARIMA
    pd.read_csv(log_file).assign(when=lambda d: range(len(d))).to_csv(ints, index=False)
    short = tmp_path / "two_events_each.csv"      # nobody has a test target
    pd.read_csv(log_file).groupby("customer").head(2).to_csv(short, index=False)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    pickled = tmp_path / "pickled"                 # a model folder of the unsafe kind: refused before anything is read
    pickled.mkdir()
    (pickled / "recommender.json").write_text(json.dumps({"class": "Popularity", "format": "joblib"}))
    cases = {"unknown model": ["benchmark", "--models", "pop,bert4rec"],
             "unknown data set": ["benchmark", "--data", "movielens"],
             "missing file": ["benchmark", "--data", tmp_path / "nope.parquet"],
             "wrong columns": ["benchmark", "--data", log_file, "--models", "pop"],
             "arima without calendar": ["benchmark", *columns(ints), "--models", "arima"],
             "no saved model": ["recommend", "--model", tmp_path, "--history", "3"],
             "only unknown items": ["recommend", "--model", saved / "models" / "pop", "--history", "nope", "never"],
             "k too large": ["benchmark", *columns(log_file), "--models", "pop", "-k", "500"],
             "out is a file": ["benchmark", *columns(log_file), "--models", "lstm", "--out", a_file],
             "one column twice": ["benchmark", "--data", log_file, "--user-col", "customer", "--item-col", "customer",
                                  "--time-col", "when", "--models", "pop"],
             "no test targets": ["benchmark", *columns(short), "--models", "pop,lstm"],
             "pickled model": ["recommend", "--model", pickled, "--history", "3"],
             "no command": []}
    errs = {}
    for what, argv in cases.items():
        code, out, err = run_main(argv, capsys)
        errs[what] = err
        assert code != 0, what
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (what, err)
        assert err.startswith("seqrec-nb"), (what, err)
    for what, words in {"out is a file": "is not a folder", "no test targets": "needs two or more",
                        "one column twice": "three different columns", "pickled model": "unsafe to load"}.items():
        assert words in errs[what], (what, errs[what])
    code, out, err = finish(start(tmp_path))              # the installed console script: the same line and exit code
    assert code != 0 and err == errs["no command"], (code, err)
    code, out, err = run_main(["--version"], capsys)
    assert code == 0 and out.startswith("seqrec-nb "), (out, err)
    code, out, err = run_main(["recommend", "--model", saved / "models" / "pop", "--history", "3", "nope"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 10, (out, err)
    assert "ignored 1 item id(s) the model does not know: nope" in err, err


def test_report(tmp_path):
    code, out, err = finish(start(tmp_path, "report"))
    assert code == 0, err
    assert out.startswith("backend") and "will use" in out
