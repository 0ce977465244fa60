"""`seqrec-nb tune` as a user runs it: a study killed with SIGKILL mid-trial and started again, two workers sharing one
SQLite file, bad input in one line with an existing study left as it was; and, in this process, a pruned trial that
stops training, on every backend (CI runs the process-level tests on TensorFlow only)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import keras
import optuna
import pytest
import sqlalchemy

from seqrec_nb.cli import main
from seqrec_nb.data import leave_one_out, synthetic_log
from seqrec_nb.evaluate import RECIPES, read_recipe, write_recipe
from seqrec_nb.tune import FINISHED, check_study, objective, open_storage, search_space

CLI = shutil.which("seqrec-nb", path=str(Path(sys.executable).parent)) or "seqrec-nb"
# a small LSTM (width and batch fixed, step size, dropout and cell searched), at most two epochs a trial
TINY = ["--model", "lstm", "--size", "quick", "--max-epochs", "2", "--space", "dim=8", "--space", "batch_size=64"]
# processes and the SQLite study are the same plumbing on every backend: one is enough (the pruning test runs on all)
ONE_BACKEND = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the plumbing")


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "log.csv"
    synthetic_log(n_users=120, n_items=30, seed=0)[0].to_csv(path, index=False)
    return path


def command(log_file, out, *args):
    return [CLI, "tune", "--data", str(log_file), "--out", str(out), "--study", "s", *TINY, *map(str, args)]


STARTED = []


def start(cmd):
    env = {**os.environ, "SEQREC_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    STARTED.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return STARTED[-1]


@pytest.fixture(autouse=True)
def no_worker_left():
    "A test that fails half-way leaves no worker running."
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None: proc.kill(); proc.communicate()


def trials(out) -> list:
    "The study's trials, read as a user would (none until its database and study exist)."
    if not (out / "optuna.db").is_file(): return []
    try: storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'optuna.db'}", engine_kwargs={"connect_args": {"timeout": 60}})
    except sqlalchemy.exc.SQLAlchemyError: return []              # the worker is still making its tables
    try: return optuna.load_study(study_name="s", storage=storage).get_trials()
    except KeyError: return []


def ran(printed: str) -> int:
    return int(re.search(r"this run finished (\d+) trial", printed).group(1))


@ONE_BACKEND
@pytest.mark.one_backend         # processes and the study's storage: CI runs it on TensorFlow only
def test_a_study_killed_mid_trial_continues_without_losing_or_repeating_a_trial(tmp_path, log_file):
    out = tmp_path / "out"
    cmd = command(log_file, out, "--trials", 5, "--no-final")
    proc = start(cmd)
    deadline = time.monotonic() + 240
    while True:           # two trials finished and a third under way: kill it there
        now = trials(out)
        if sum(t.state in FINISHED for t in now) >= 2 and any(t.state == optuna.trial.TrialState.RUNNING for t in now): break
        assert proc.poll() is None, f"the study ended before it could be killed: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before = {t.number: (t.state, t.value, t.params) for t in trials(out)}
    done_before = {n for n, (state, _, _) in before.items() if state in FINISHED}
    killed = {n for n, (state, _, _) in before.items() if state == optuna.trial.TrialState.RUNNING}
    assert len(done_before) >= 2 and len(killed) == 1

    again = start(cmd)
    printed, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    after = {t.number: (t.state, t.value, t.params) for t in trials(out)}
    assert {n: after[n] for n in done_before} == {n: before[n] for n in done_before}       # nothing finished is lost
    finished = [n for n, (state, _, _) in after.items() if state in FINISHED]
    assert len(finished) == 5 and ran(printed) == 5 - len(done_before)                    # nor counted twice
    assert after[next(iter(killed))][0] in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL)
    assert f"{len(done_before)} of 5 trials finished" in err
    assert read_recipe(out / "s.json").name == "LSTMRec (tuned)"


@ONE_BACKEND
@pytest.mark.one_backend         # processes and the study's storage: CI runs it on TensorFlow only
def test_sigterm_mid_trial_exits_130_in_one_line_and_keeps_the_study(tmp_path, log_file):
    out = tmp_path / "out"
    proc = start(command(log_file, out, "--trials", 20, "--no-final"))
    deadline = time.monotonic() + 240
    while True:           # a trial finished and the next under way: stop it there
        now = trials(out)
        if any(t.state in FINISHED for t in now) and any(t.state == optuna.trial.TrialState.RUNNING for t in now): break
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    finished = {t.number: t.value for t in now if t.state in FINISHED}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("seqrec-nb: interrupted; the finished trials are kept in sqlite:///")
    assert {t.number: t.value for t in trials(out) if t.number in finished} == finished


@ONE_BACKEND
@pytest.mark.one_backend         # processes and the study's storage: CI runs it on TensorFlow only
def test_two_workers_share_one_study(tmp_path, log_file):
    out = tmp_path / "out"
    workers = [start(command(log_file, out, "--trials", 6, "--no-final")) for _ in range(2)]
    results = [w.communicate(timeout=300) for w in workers]
    for w, (_, err) in zip(workers, results): assert w.returncode == 0, err[-3000:]
    finished = [t for t in trials(out) if t.state in FINISHED]
    assert sum(ran(printed) for printed, _ in results) == len(finished) >= 6
    assert len(Counter(t.user_attrs["worker"] for t in finished)) == 2                     # both did some of the work
    settings = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(settings)) == len(settings)                                              # and never the same twice


@pytest.mark.backend_free
def test_a_worker_that_loses_the_race_to_make_the_tables_tries_again(tmp_path, monkeypatch):
    """Two workers making a fresh SQLite study database at once: the slower one's CREATE TABLE or schema stamp fails (the
    errors SQLite gives then, made here on purpose) and it opens the database again; any other failure is one line at once."""
    import sqlite3
    lost = [sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, sqlite3.OperationalError("table studies already exists")),
            sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, sqlite3.IntegrityError("UNIQUE constraint failed: alembic_version.version_num"))]
    real, calls = optuna.storages.RDBStorage, []
    def flaky(url, **kwargs):
        calls.append(url)
        if len(calls) <= len(lost): raise lost[len(calls) - 1]
        return real(url, **kwargs)
    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    assert isinstance(open_storage(f"sqlite:///{tmp_path / 's.db'}"), real) and len(calls) == 3
    calls.clear()
    locked = sqlalchemy.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("unable to open database file"))
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda url, **kwargs: calls.append(url) or (_ for _ in ()).throw(locked))
    with pytest.raises(ValueError, match=r"cannot be opened \(\(sqlite3.OperationalError\) unable to open database file\)"):
        open_storage(f"sqlite:///{tmp_path / 't.db'}")
    assert len(calls) == 1                                          # not a race: refused on the first try


@pytest.mark.backend_free
def test_a_study_being_made_is_waited_for_and_a_foreign_one_refused_at_once():
    "The race two workers run into: one made the study and queued its first trial, and records its settings a moment later."
    import threading
    being_made = optuna.create_study(direction="maximize")
    being_made.enqueue_trial({"x": 1.0})
    threading.Timer(0.5, lambda: being_made.set_user_attr("seqrec_nb", {"model": "lstm"})).start()
    check_study(being_made, {"model": "lstm"}, "memory")          # waits for the settings instead of refusing
    foreign = optuna.create_study(direction="maximize")
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="was not made by seqrec-nb tune"): check_study(foreign, {"model": "lstm"}, "memory")
    assert time.monotonic() - t0 < 5                                # a finished trial: no waiting


@ONE_BACKEND
@pytest.mark.one_backend         # processes and the study's storage: CI runs it on TensorFlow only
def test_benchmark_trains_a_recipe_file(tmp_path, log_file):
    "A tuned recipe in place of the registered one: only its model runs (no --models), under its own row label."
    path = write_recipe(RECIPES["lstm"].with_settings({"dim": 8, "dropout": 0.1}, name="LSTMRec (tuned)"), tmp_path / "r.json")
    proc = start([CLI, "benchmark", "--data", str(log_file), "--recipe", str(path), "--max-epochs", "1", "--protocol", "full",
                  "--no-save-models", "--out", str(tmp_path / "board")])
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert [row["model"] for row in board["leaderboard"]] == ["LSTMRec (tuned)"]
    assert {k: board["meta"]["settings"]["LSTMRec (tuned)"][k] for k in ("dim", "dropout")} == {"dim": 8, "dropout": 0.1}


@pytest.fixture(scope="module")
def made_study(tmp_path_factory, log_file):
    "A finished one-trial study of the LSTM, made in this process through the command line's entry point."
    out = tmp_path_factory.mktemp("study")
    assert main(["tune", "--data", log_file, "--out", out, "--study", "s", *TINY, "--trials", "1", "--no-final"]) == 0
    return out


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.backend_free        # every case is refused before a model trains: CI runs it on TensorFlow only
@pytest.mark.parametrize("args, says", [
    (["--model", "bert4rec"], "unknown model 'bert4rec'"),
    (["--space", "drop_out=0.1..0.5"], "LSTMRec has no setting 'drop_out'"),
    (["--space", "dropout=0.5..0.1"], "LOW must be below HIGH"),
    (["--storage", "sqlite:////no/such/folder/s.db"], "cannot be opened"),
    (["--storage", "nosuchdb://x"], "storage nosuchdb://x: cannot be opened"),
    (["--space", "loss=bce|softmax"], "recipe derives loss from the data"),
])
def test_bad_input_is_one_line(args, says, tmp_path, log_file, capsys):
    argv = ["tune", "--data", str(log_file), "--out", str(tmp_path), *TINY, *args]
    try: code = main(argv)
    except SystemExit as e: code = e.code                        # argparse's refusals
    assert code == 2 and says in one_line(capsys)


@ONE_BACKEND
@pytest.mark.one_backend         # processes and the study's storage: CI runs it on TensorFlow only
def test_a_study_of_another_model_or_log_is_refused_and_left_as_it_was(made_study, log_file, tmp_path, capsys):
    def state(): return [(t.number, t.state, t.value, t.params) for t in trials(made_study)]
    before = state()
    assert len(before) == 1
    assert main(["tune", "--data", log_file, "--out", made_study, "--study", "s", "--model", "sasrec", "--size", "quick",
                 "--trials", "2"]) == 2
    assert "was made for lstm on log.csv" in one_line(capsys)
    changed = tmp_path / "log.csv"                                 # a file of the same name with other events
    synthetic_log(n_users=100, n_items=30, seed=1)[0].to_csv(changed, index=False)
    assert main(["tune", "--data", changed, "--out", made_study, "--study", "s", *TINY, "--trials", "2"]) == 2
    assert "was made for lstm on log.csv with users" in one_line(capsys)
    assert state() == before


def test_a_pruned_trial_stops_training(log_file):
    "The pruning callback on this backend: the trial reports one epoch, stops there and is recorded as pruned."
    class AfterOne(optuna.pruners.BasePruner):
        def prune(self, study, trial): return max(trial.intermediate_values, default=0) >= 1
    split = leave_one_out(synthetic_log(n_users=60, n_items=20, seed=2)[0])
    space = search_space(RECIPES["lstm"], {"dim": "8", "batch_size": "64", "learning_rate": "1e-3..1e-2 log"})
    study = optuna.create_study(direction="maximize", pruner=AfterOne())
    study.optimize(objective(RECIPES["lstm"], split, space, size="quick", max_epochs=3), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1] and trial.user_attrs["epochs"] == 1


@pytest.mark.backend_free
@pytest.mark.parametrize("content, says", [(None, "no such recipe file"), ("{}", "not a recipe file written by seqrec_nb")])
def test_benchmark_refuses_a_bad_recipe_file_in_one_line(content, says, tmp_path, log_file, capsys):
    path = tmp_path / "r.json"
    if content is not None: path.write_text(content)
    assert main(["benchmark", "--data", str(log_file), "--recipe", str(path), "--out", str(tmp_path / "b")]) == 2
    assert says in one_line(capsys)
