"The installed console command `seqrec-nb baselines`, run as a user runs it."
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from run_cli import run_main

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only

CLI = shutil.which("seqrec-nb", path=str(Path(sys.executable).parent)) or "seqrec-nb"


def run(tmp_path, data_dir, *args):
    env = {**os.environ, "SEQREC_DATA": str(data_dir), "SEQREC_CACHE": str(tmp_path / "cache"), "SEQREC_OFFLINE": "1"}
    return subprocess.run([CLI, "baselines", *args], capture_output=True, text=True, env=env, timeout=300)


def test_no_data_one_line_naming_seqrec_data(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(tmp_path, empty)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "SEQREC_DATA" in lines[0] and "Online Retail" in lines[0], res.stderr


@pytest.fixture
def data(tmp_path):
    "A local copy of a tiny Online Retail file, where SEQREC_DATA can point."
    data = tmp_path / "data"
    data.mkdir()
    rng = pd.Series(range(60))
    raw = pd.DataFrame({"InvoiceNo": (5000 + rng // 3).astype(str), "StockCode": (rng * 7 % 11).astype(str),
                        "Description": "THING", "Quantity": 1.0,
                        "InvoiceDate": (pd.Timestamp("2011-01-01") + pd.to_timedelta(rng, unit="h")).astype(str),
                        "UnitPrice": 1.5, "CustomerID": (12000 + rng % 6).astype(float), "Country": "France"})
    with gzip.open(data / "online_retail.csv.gz", "wt") as f: raw.to_csv(f, index=False)
    return data


def test_prints_the_table_from_a_local_copy(tmp_path, data):
    res = run(tmp_path, data, "-k", "5")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Popularity" in out and "MarkovChain" in out and "NDCG@5" in out and "full" in out
    # 11 items cannot give each user 100 distinct negatives: the sampled protocol is left out, in one line
    assert "sampled" not in out and res.stderr.count("sampled protocol left out") == 1, res.stderr


def test_help():
    res = subprocess.run([CLI, "baselines", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--data" in res.stdout


def test_bad_cutoffs_and_the_spelling_of_seqrec_nb(tmp_path, data, capsys, monkeypatch):
    """`-k` is checked as `seqrec-nb benchmark` checks it, and data sets are spelled as it spells them. The cases run
    `seqrec_nb.benchmark.main` in this process (no process start per case); `--version` goes through the console script."""
    for name, value in {"SEQREC_DATA": str(data), "SEQREC_CACHE": str(tmp_path / "cache"), "SEQREC_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)
    for args, words in ((["-k", "0"], "argument -k"), (["--data", "online-retail", "-k", "100000"], "k=100000"),
                        (["--data", "movielens"], "not a data set name (online-retail, games)"),
                        (["--data", "online_retail"], "not a data set name (online-retail, games)")):
        code, out, err = run_main(["baselines", *args], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in err, (args, err)
    res = run(tmp_path, data, "--version")
    assert res.returncode == 0 and res.stdout.startswith("seqrec-nb "), res


def test_importing_the_package_writes_nothing_to_stderr():
    "TensorFlow's native start-up lines are silenced on import unless the user chose TF_CPP_MIN_LOG_LEVEL."
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"KERAS_BACKEND": "tensorflow"}
    code = "import seqrec_nb.data, os, keras; print(os.environ['TF_CPP_MIN_LOG_LEVEL'], keras.backend.backend())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.split() == ["2", "tensorflow"], res
    assert res.stderr == "", res.stderr
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=env | {"TF_CPP_MIN_LOG_LEVEL": "1"})
    assert chosen.returncode == 0 and chosen.stdout.split() == ["1", "tensorflow"], chosen
