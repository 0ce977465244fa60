"""Bad input and faults against `seqrec-nb`: one clear message, the right exit code, no traceback, nothing corrupted.

The table runs `seqrec_nb.benchmark.main` in this process (each case fails before any training); the fault tests
start real processes and kill them."""
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from seqrec_nb.benchmark import load_recommender, main
from seqrec_nb.data import synthetic_log

from run_cli import run_main

CLI = shutil.which("seqrec-nb", path=str(Path(sys.executable).parent)) or "seqrec-nb"


class Payload:
    "What a hostile pickle does when loaded: create a marker file. The tests check that it never appears."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (Path(self.marker).touch, ())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "A user's log (own column names), variants of it that are wrong in one way each, and a finished run to protect."
    d = tmp_path_factory.mktemp("bad")
    log, _ = synthetic_log(n_users=80, n_items=30, seed=2)
    log = log.rename(columns={"user_id": "customer", "item_id": "sku", "timestamp": "when"})
    f = {"log": d / "events.csv", "marker": d / "payload-ran"}
    log.to_csv(f["log"], index=False)
    f["empty"] = d / "empty.csv"; f["empty"].write_bytes(b"")
    f["latin1"] = d / "latin1.csv"
    log.assign(sku=log.sku.astype(str) + "é").to_csv(f["latin1"], index=False, encoding="latin-1")
    f["unix"] = d / "unix.csv"
    log.assign(when=pd.to_datetime(log.when).astype("int64") // 10**9).to_csv(f["unix"], index=False)
    f["two_each"] = d / "two_each.csv"; log.groupby("customer").head(2).to_csv(f["two_each"], index=False)
    f["one_user"] = d / "one_user.csv"; log[log.customer == log.customer.iloc[0]].to_csv(f["one_user"], index=False)
    f["one_event"] = d / "one_event.csv"; log.head(1).to_csv(f["one_event"], index=False)
    f["bad_times"] = d / "bad_times.csv"; log.assign(when="not a time").to_csv(f["bad_times"], index=False)
    f["missing_id"] = d / "missing_id.csv"; log.assign(sku=log.sku.where(log.index % 7 != 3)).to_csv(f["missing_id"], index=False)
    f["text"] = d / "notes.txt"; f["text"].write_text("hello")
    f["garbage_parquet"] = d / "garbage.parquet"; f["garbage_parquet"].write_bytes(b"not parquet at all")
    f["a_file"] = d / "a_file"; f["a_file"].write_text("a file, not a folder")
    # a finished run whose files no failed command may touch
    f["run"] = d / "run"
    assert main(["benchmark", "--data", f["log"], "--user-col", "customer", "--item-col", "sku", "--time-col", "when",
                 "--models", "pop,lstm", "--max-epochs", "1", "--out", f["run"]]) == 0
    models = f["run"] / "models"
    # damaged and hostile model folders, each a copy of a good one with one thing wrong
    def copy(name, model="pop"):
        shutil.copytree(models / model, d / name)
        return d / name
    f["pickled"] = copy("pickled")
    (f["pickled"] / "model.joblib").write_bytes(pickle.dumps(Payload(f["marker"])))
    (f["pickled"] / "recommender.json").write_text(json.dumps({"class": "Popularity", "format": "joblib"}))
    f["object_array"] = copy("object_array")
    np.savez(f["object_array"] / "arrays.npz", counts=np.array([Payload(f["marker"])], dtype=object))
    f["truncated_npz"] = copy("truncated_npz")
    npz = f["truncated_npz"] / "arrays.npz"; npz.write_bytes(npz.read_bytes()[:40])
    f["future"] = copy("future")
    meta = json.loads((f["future"] / "recommender.json").read_text())
    (f["future"] / "recommender.json").write_text(json.dumps(meta | {"format": 99, "seqrec_nb": "9.0"}))
    f["unknown_class"] = copy("unknown_class")
    (f["unknown_class"] / "recommender.json").write_text(json.dumps(meta | {"class": "os.system"}))
    f["not_json"] = copy("not_json"); (f["not_json"] / "recommender.json").write_text("{not json")
    f["garbage_keras"] = copy("garbage_keras", "lstm"); (f["garbage_keras"] / "net.keras").write_bytes(b"garbage")
    f["cut_keras"] = copy("cut_keras", "lstm")
    net = f["cut_keras"] / "net.keras"; net.write_bytes(net.read_bytes()[:1000])
    f["other_version"] = copy("other_version", "lstm")
    meta = json.loads((f["other_version"] / "recommender.json").read_text())
    (f["other_version"] / "recommender.json").write_text(json.dumps(meta | {"settings": meta["settings"] | {"gates": 5}}))
    f["no_items"] = copy("no_items"); (f["no_items"] / "items.parquet").unlink()
    return f


def cols(path): return ["--data", path, "--user-col", "customer", "--item-col", "sku", "--time-col", "when"]


# case -> (arguments, exit code, words the one message must contain)
CASES = {
    "no command": (lambda f: [], 2, "required"),
    "unknown command": (lambda f: ["train"], 2, "invalid choice"),
    "unknown model": (lambda f: ["benchmark", *cols(f["log"]), "--models", "pop,bert4rec"], 2, "bert4rec"),
    "empty model list": (lambda f: ["benchmark", *cols(f["log"]), "--models", ","], 2, "--models"),
    "unknown data set": (lambda f: ["benchmark", "--data", "movielens"], 2, "movielens"),
    "missing file": (lambda f: ["benchmark", "--data", f["log"].with_name("nope.csv")], 2, "nope.csv"),
    "data is a folder": (lambda f: ["benchmark", "--data", f["run"]], 2, "is not a file"),
    "unknown file type": (lambda f: ["benchmark", *cols(f["text"])], 2, "unknown file type '.txt'"),
    "empty file": (lambda f: ["benchmark", *cols(f["empty"])], 2, "empty.csv: the file is empty"),
    "latin-1 file": (lambda f: ["benchmark", *cols(f["latin1"])], 2, "--encoding latin-1"),
    "unknown encoding": (lambda f: ["benchmark", *cols(f["log"]), "--encoding", "klingon"], 2, "--encoding klingon"),
    "garbage parquet": (lambda f: ["benchmark", *cols(f["garbage_parquet"])], 2, "garbage.parquet: cannot be read as Parquet"),
    "wrong columns": (lambda f: ["benchmark", "--data", f["log"], "--models", "pop"], 2, "missing column 'user_id'"),
    "one column twice": (lambda f: ["benchmark", "--data", f["log"], "--user-col", "customer", "--item-col", "customer",
                                    "--time-col", "when"], 2, "three different columns"),
    "unparseable times": (lambda f: ["benchmark", *cols(f["bad_times"])], 2, "have a time that does not parse"),
    "missing ids": (lambda f: ["benchmark", *cols(f["missing_id"])], 2, "have a missing or empty id"),
    "time unit on text": (lambda f: ["benchmark", *cols(f["log"]), "--time-unit", "s"], 2, "not numbers"),
    "bad time unit": (lambda f: ["benchmark", *cols(f["unix"]), "--time-unit", "h"], 2, "--time-unit"),
    "arima without calendar": (lambda f: ["benchmark", *cols(f["unix"]), "--models", "arima"], 2, "--time-unit s or ms"),
    "no test targets": (lambda f: ["benchmark", *cols(f["two_each"]), "--models", "pop"], 2, "needs two or more"),
    "a single user": (lambda f: ["benchmark", *cols(f["one_user"]), "--models", "pop"], 2, "1 user(s)"),
    "a single event": (lambda f: ["benchmark", *cols(f["one_event"]), "--models", "pop"], 2, "0 user(s)"),
    "k zero": (lambda f: ["benchmark", *cols(f["log"]), "-k", "0"], 2, "argument -k"),
    "k too large": (lambda f: ["benchmark", *cols(f["log"]), "--models", "pop", "-k", "500"], 2, "k=500"),
    "negative seed": (lambda f: ["benchmark", *cols(f["log"]), "--seed", "-1"], 2, "argument --seed"),
    "zero users": (lambda f: ["benchmark", *cols(f["log"]), "--max-users", "0"], 2, "argument --max-users"),
    "epochs not a number": (lambda f: ["benchmark", *cols(f["log"]), "--max-epochs", "many"], 2, "argument --max-epochs"),
    "unknown protocol": (lambda f: ["benchmark", *cols(f["log"]), "--protocol", "oracle"], 2, "argument --protocol"),
    "unknown size": (lambda f: ["benchmark", *cols(f["log"]), "--size", "huge"], 2, "argument --size"),
    "sampled on a small catalogue": (lambda f: ["benchmark", *cols(f["log"]), "--models", "pop", "--protocol", "sampled"], 2,
                                     "fewer left"),
    "out is a file": (lambda f: ["benchmark", *cols(f["log"]), "--models", "lstm", "--out", f["a_file"]], 2, "is not a folder"),
    "resume another run": (lambda f: ["benchmark", *cols(f["log"]), "--models", "pop", "--seed", "4", "--out", f["run"],
                                      "--resume"], 2, "another run (seed"),
    "no saved model": (lambda f: ["recommend", "--model", f["run"], "--history", "3"], 2, "no recommender.json"),
    "model folder missing": (lambda f: ["recommend", "--model", f["run"] / "nope", "--history", "3"], 2, "no such folder"),
    "only unknown items": (lambda f: ["recommend", "--model", f["run"] / "models" / "pop", "--history", "nope"], 2, "is known"),
    "strict with an unknown item": (lambda f: ["recommend", "--model", f["run"] / "models" / "pop", "--history", "3", "NOPE",
                                               "--strict"], 2, "NOPE"),
    "recommend k zero": (lambda f: ["recommend", "--model", f["run"] / "models" / "pop", "--history", "3", "-k", "0"], 2,
                         "argument -k"),
    "pickled model": (lambda f: ["recommend", "--model", f["pickled"], "--history", "3"], 2, "unsafe to load"),
    "object array": (lambda f: ["recommend", "--model", f["object_array"], "--history", "3"], 2, "arrays.npz: damaged"),
    "truncated arrays": (lambda f: ["recommend", "--model", f["truncated_npz"], "--history", "3"], 2, "arrays.npz: damaged"),
    "newer format": (lambda f: ["recommend", "--model", f["future"], "--history", "3"], 2, "format 99"),
    "unknown class": (lambda f: ["recommend", "--model", f["unknown_class"], "--history", "3"], 2, "'os.system'"),
    "description not JSON": (lambda f: ["recommend", "--model", f["not_json"], "--history", "3"], 2, "not a model description"),
    "garbage network": (lambda f: ["recommend", "--model", f["garbage_keras"], "--history", "3"], 2, "net.keras: not a .keras archive"),
    "truncated network": (lambda f: ["recommend", "--model", f["cut_keras"], "--history", "3"], 2, "net.keras: not a .keras archive"),
    "settings of another version": (lambda f: ["recommend", "--model", f["other_version"], "--history", "3"], 2,
                                    "settings this version of LSTMRec does not take"),
    "item index missing": (lambda f: ["recommend", "--model", f["no_items"], "--history", "3"], 2, "items.parquet: missing"),
}


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_has_the_cases_the_issue_asks_for():
    assert len(CASES) >= 35


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_clear_message(case, files, capsys):
    argv, code, words = CASES[case]
    before = snapshot(files["run"])
    got, out, err = run_main(argv(files), capsys)
    assert got == code, (case, got, err)
    assert "Traceback" not in err and out == "", (case, out, err)
    assert err.count("seqrec-nb") == 1 and err.startswith("seqrec-nb"), (case, err)   # one message
    assert words in err, (case, err)
    assert not files["marker"].exists(), "a saved file ran code"
    assert snapshot(files["run"]) == before, "a failed command changed a finished run"
    load_recommender(files["run"] / "models" / "lstm")


def test_version_and_the_ids_recommend_ignores(files, capsys):
    for argv in (["--version"], ["benchmark", "--version"], ["recommend", "--version"]):
        code, out, err = run_main(argv, capsys)
        assert code == 0 and out.startswith("seqrec-nb "), (argv, out, err)
    code, out, err = run_main(["recommend", "--model", files["run"] / "models" / "pop", "--history", "03", "NOPE"], capsys)
    assert code == 0 and len(out.splitlines()) == 10          # "03" is the integer id 3: used, not reported
    assert err.strip() == "seqrec-nb: ignored 1 item id(s) the model does not know: NOPE (ids are case-sensitive)"


def test_unix_seconds_read_as_calendar_times(files, tmp_path, capsys):
    code, out, err = run_main(["benchmark", *cols(files["unix"]), "--time-unit", "s", "--models", "pop",
                               "--out", tmp_path / "unix"], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "unix" / "leaderboard.json").read_text())["meta"]
    assert "ARIMA demand" not in meta["left_out"]


def start(tmp_path, *args):
    env = {**os.environ, "SEQREC_CACHE": str(tmp_path / "cache"), "SEQREC_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(check, proc, timeout=300):
    "Poll `check()` until true; fail if `proc` ends first or time runs out."
    t0 = time.monotonic()
    while not check():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


QUALITY = ["epochs", "best epoch", "full HR@10", "full NDCG@10", "unseen NDCG@10"]     # 30 items: no sampled protocol


def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_table(files, tmp_path):
    args = [*cols(files["log"]), "--models", "pop,lstm,markov", "--size", "quick", "--max-epochs", "3", "--no-save-models"]
    whole = start(tmp_path, "benchmark", *args, "--out", tmp_path / "whole")
    killed = start(tmp_path, "benchmark", *args, "--out", tmp_path / "killed")
    state = tmp_path / "killed" / "checkpoints" / "lstm" / "state.json"
    wait_for(state.is_file, killed)                      # the LSTM has finished an epoch: kill it mid-training
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    kept = pd.read_csv(tmp_path / "killed" / "leaderboard.csv", index_col="model")
    assert list(kept.index) == ["Popularity"]           # what finished before the kill is on disk
    done = json.loads(state.read_text())["epoch"]
    resumed = start(tmp_path, "benchmark", *args, "--out", tmp_path / "killed", "--resume")
    errs = []
    for proc in (whole, resumed):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        errs.append(err)
    assert f"lstm: resuming after epoch {done}" in errs[1], errs[1][-2000:]        # it did not train from scratch
    a, b = (pd.read_csv(tmp_path / d / "leaderboard.csv", index_col="model") for d in ("whole", "killed"))
    pd.testing.assert_frame_equal(a[QUALITY], b[QUALITY], rtol=1e-4)
    assert not (tmp_path / "killed" / "checkpoints" / "lstm").exists()      # removed once the model finished


SAVE_LOOP = """
import sys
from seqrec_nb.data import leave_one_out, synthetic_log
from seqrec_nb.evaluate import EASE
split = leave_one_out(synthetic_log(n_users=300, n_items=1500, seed=0)[0])
model = EASE(lam=10.0).fit(split)
model.save(sys.argv[1]); print("saved", flush=True)
while True: model.save(sys.argv[1])
"""


def test_sigkill_while_saving_leaves_a_model_that_loads(tmp_path):
    "Killed at random moments while it saves over and over into one folder, the folder always loads."
    from seqrec_nb.data import leave_one_out
    from seqrec_nb.evaluate import EASE
    expected = EASE(lam=10.0).fit(leave_one_out(synthetic_log(n_users=300, n_items=1500, seed=0)[0]))
    rng = np.random.default_rng(0)
    folder = tmp_path / "ease"
    for trial in range(5):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(folder)], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(rng.uniform(0.05, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = EASE.load(folder)
        assert np.array_equal(model.B, expected.B) and model.chosen == 10.0
        assert list(model.index.raw) == list(expected.index.raw)


def children(proc) -> list:
    try: return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess: return []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_in_one_line_and_leaves_no_workers(files, tmp_path, sig):
    "Stopped while ARIMA fits items in worker processes: exit 130, one line saying where the results are, no worker left."
    proc = start(tmp_path, "benchmark", *cols(files["log"]), "--models", "pop,arima", "--size", "full", "--out", tmp_path / "o")
    wait_for(lambda: len(children(proc)) >= 2 and (tmp_path / "o" / "leaderboard.csv").is_file(), proc)
    workers = children(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("seqrec-nb")]
    assert lines == [f"seqrec-nb: interrupted; the models finished so far are kept in {(tmp_path / 'o').resolve()}; "
                     "rerun with --resume to go on"], err[-3000:]
    assert "Traceback" not in err
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, [p.cmdline() for p in alive]
    assert list(pd.read_csv(tmp_path / "o" / "leaderboard.csv").model) == ["Popularity"]
