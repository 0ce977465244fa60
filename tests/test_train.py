"""seqrec_nb.train as a user's training run meets it: resume after SIGKILL, seeds, saving, decisions.

Backend-neutral: CI runs this file on TensorFlow, JAX and PyTorch, except the resume test with validation, marked
`one_backend`: the history it checks is files on disk, and resuming itself is the plain case's.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log
from seqrec_nb.train import (Accelerator, Devices, ValidationMetric, adam, checkpoint_seconds, choose_jit_compile,
                             choose_precision, choose_strategy, device_report, diagnose, fit, load_model, save_model,
                             scale_batch_size, seed_everything, tf_config_workers, total_replicas)

RUN = textwrap.dedent("""
    import os, signal, sys, json
    import numpy as np, keras
    from seqrec_nb.data import NextItemBatches, leave_one_out, pad_sequences, synthetic_log
    from seqrec_nb.evaluate import Recommender
    from seqrec_nb.train import ValidationMetric, adam, fit, seed_everything
    ckpt, out, kill_after, with_validation = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "val"
    seed_everything(0)
    split = leave_one_out(synthetic_log(n_users=120, n_items=30, seed=0)[0])
    inp = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(split.n_items + 1, 8, mask_zero=True)(inp)
    h = keras.layers.Dropout(0.2, seed=1)(h)
    net = keras.Model(inp, keras.layers.Dense(split.n_items + 1)(keras.layers.GRU(8, return_sequences=True)(h)))
    net.compile(adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))   # the models' Adam

    class Kill(keras.callbacks.Callback):             # as epoch `kill_after` + 1 starts: its predecessor is checkpointed
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_after: os.kill(os.getpid(), signal.SIGKILL)       # no clean-up, no finally

    class Rec(Recommender):
        index = split.index
        def _score(self, h): return keras.ops.convert_to_numpy(net(pad_sequences(h, 10))[:, -1])

    batches = NextItemBatches(split.train_sequences(), split.n_items, maxlen=10, batch_size=32, seed=3, fill_last=True)  # one shape
    val = ValidationMetric(Rec(), split, "NDCG@10") if with_validation else None
    hist = fit(net, batches, epochs=6, checkpoint_dir=ckpt if ckpt != "-" else None, validation=val, patience=2,
               callbacks=[Kill()] if kill_after else [], verbose=0)
    np.savez(out, *[np.asarray(w) for w in net.get_weights()])
    print(json.dumps({"epochs_run": list(hist.epoch), "val": hist.history.get("val_NDCG@10")}))
""")


def start(code, *args):
    "A Python process running `code` with `args`, started now; `finish` waits for it."
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def finish(proc):
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(*args): return finish(start(RUN, *args))


def weights(path):
    with np.load(path) as f: return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.parametrize("mode", ["plain", pytest.param("val", marks=pytest.mark.one_backend)])
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, mode):
    "Killed after epoch 2 and restarted, training ends where an uninterrupted run ends (with early stopping too)."
    whole = start(RUN, "-", tmp_path / "whole.npz", 0, mode)         # alongside the killed and resumed runs
    killed = run(tmp_path / "ck", tmp_path / "killed.npz", 2, mode)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "killed.npz").exists()
    resumed = run(tmp_path / "ck", tmp_path / "resumed.npz", 0, mode)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = finish(whole)
    assert whole.returncode == 0, whole.stderr[-3000:]
    w, r = (json.loads(p.stdout.strip().splitlines()[-1]) for p in (whole, resumed))
    assert r["epochs_run"][0] == 2 and w["epochs_run"][-1] == r["epochs_run"][-1]     # picked up after epoch 2, stopped alike
    if mode == "val": np.testing.assert_allclose(r["val"], w["val"], rtol=1e-5)     # the whole run's history, kept on disk
    for a, b in zip(weights(tmp_path / "whole.npz"), weights(tmp_path / "resumed.npz"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_resumed_fit_keeps_what_callbacks_log_and_its_training_seconds(tmp_path):
    "What a callback writes into an epoch's logs is in the history of a run stopped and resumed; so are the seconds."
    split = leave_one_out(synthetic_log(n_users=60, n_items=20, seed=0)[0])
    batches = NextItemBatches(split.train_sequences(), split.n_items, maxlen=10, batch_size=32, seed=3)
    def net():
        seed_everything(0)
        inp = keras.Input((10,), dtype="int32")
        m = keras.Model(inp, keras.layers.Dense(split.n_items + 1)(keras.layers.Embedding(split.n_items + 1, 4)(inp)))
        m.compile(adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
        return m
    class Note(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None): logs["note"] = float(epoch)
    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(net(), batches, epochs=4, checkpoint_dir=tmp_path, callbacks=[Note(), Stop()], verbose=0)
    assert checkpoint_seconds(tmp_path) > 0                   # two epochs' training time, kept with them
    hist = fit(net(), batches, epochs=4, checkpoint_dir=tmp_path, callbacks=[Note()], verbose=0)
    assert hist.epoch == [2, 3] and hist.history["note"] == [0.0, 1.0, 2.0, 3.0] and len(hist.history["loss"]) == 4
    assert checkpoint_seconds(tmp_path) == 0                  # finished: only the best weights are left


def test_same_seed_same_metrics():
    code = textwrap.dedent("""
        import json, keras
        from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log, pad_sequences
        from seqrec_nb.evaluate import Recommender, evaluate
        from seqrec_nb.train import fit, seed_everything
        seed_everything(int(__import__("sys").argv[1]))
        split = leave_one_out(synthetic_log(n_users=100, n_items=30, seed=0)[0])
        class M(Recommender):
            def __init__(self):
                self.index = split.index
                inp = keras.Input((10,), dtype="int32")
                h = keras.layers.Dropout(0.3)(keras.layers.Embedding(31, 8, mask_zero=True)(inp))
                self.net = keras.Model(inp, keras.layers.Dense(31)(keras.layers.GRU(8, return_sequences=True)(h)))
                self.net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
            def _score(self, h): return keras.ops.convert_to_numpy(self.net(pad_sequences(h, 10))[:, -1])
        m = M()
        fit(m.net, NextItemBatches(split.train_sequences(), 30, maxlen=10, batch_size=16, fill_last=True), epochs=2, verbose=0)
        print(json.dumps(evaluate(m, split, "sampled", n_negatives=10)))
    """)
    outs = [finish(p) for p in [start(code, s) for s in (5, 5, 6)]]       # three processes at once
    for o in outs: assert o.returncode == 0, o.stderr[-3000:]
    a, b, c = (json.loads(o.stdout.strip().splitlines()[-1]) for o in outs)
    assert a == b                        # identical, not merely close
    assert a != c


V100 = Accelerator("gpu", "V100", 16.0, (7, 0))
T4 = Accelerator("gpu", "T4", 15.0, (7, 5))
A100 = Accelerator("gpu", "A100", 40.0, (8, 0))
H100 = Accelerator("gpu", "H100", 80.0, (9, 0))
P100 = Accelerator("gpu", "P100", 16.0, (6, 0))
TPU = Accelerator("tpu", "TPU v4")

DECISIONS = [  # description, precision, strategy, global batch for 64/replica, XLA
    (Devices(), "float32", "default", 64, False),
    (Devices(accelerators=(P100,)), "float32", "default", 64, True),
    (Devices(accelerators=(V100,)), "mixed_float16", "default", 64, True),
    (Devices(accelerators=(T4, T4)), "mixed_float16", "mirrored", 128, True),
    (Devices(accelerators=(A100,)), "mixed_bfloat16", "default", 64, True),
    (Devices(accelerators=(H100,) * 8), "mixed_bfloat16", "mirrored", 512, True),
    (Devices(accelerators=(A100, V100)), "mixed_float16", "mirrored", 128, True),     # the weakest card decides
    (Devices(backend="jax", accelerators=(H100,) * 8), "mixed_bfloat16", "data_parallel", 512, True),
    (Devices(backend="jax"), "float32", "default", 64, True),
    (Devices(backend="jax", accelerators=(TPU,) * 4), "mixed_bfloat16", "data_parallel", 256, True),
    (Devices(accelerators=(TPU,)), "mixed_bfloat16", "default", 64, True),
    (Devices(backend="torch", accelerators=(H100,) * 8), "mixed_bfloat16", "default", 64, False),
    (Devices(cuda_build=False, system_gpus=(A100,)), "float32", "default", 64, False),   # CPU-only TF, GPU present
    (Devices(n_workers=3, accelerators=(A100,)), "mixed_bfloat16", "multi_worker_mirrored", 192, True),
    (Devices(backend="jax", n_workers=3, accelerators=(A100,)), "mixed_bfloat16", "default", 64, True),
]


@pytest.mark.parametrize("devices,precision,strategy,batch,xla", DECISIONS)
def test_decisions(devices, precision, strategy, batch, xla):
    assert choose_precision(devices) == precision
    assert choose_strategy(devices) == strategy
    assert scale_batch_size(64, total_replicas(devices, strategy)) == batch
    assert choose_jit_compile(devices) == xla
    assert choose_jit_compile(devices, model_supports=False) is False


def test_decision_errors_and_overrides():
    assert choose_precision(Devices(accelerators=(H100,)), override="float32") == "float32"
    with pytest.raises(ValueError, match="override='fp8'"): choose_precision(Devices(), override="fp8")
    with pytest.raises(ValueError, match="per_replica=0"): scale_batch_size(0, 2)


@pytest.mark.parametrize("devices,expect", [
    (Devices(cuda_build=False, system_gpus=(A100,)), "CPU-only build"),
    (Devices(cuda_build=True, cuda_version="12.5", system_gpus=(A100,), visible_devices_env="-1"), "CUDA_VISIBLE_DEVICES"),
    (Devices(cuda_build=True, cuda_version="12.5", cudnn_version="9", system_gpus=(A100,)), "CUDA 12.5 / cuDNN 9"),
    (Devices(backend="torch", cuda_build=False, system_gpus=(A100,)), "CPU-only build"),
    (Devices(backend="jax", system_gpus=(A100,)), "jax[cuda12]"),
])
def test_diagnose_explains_an_unused_gpu(devices, expect):
    msgs = diagnose(devices)
    assert "nvidia-smi sees 1 GPU(s) (A100)" in msgs[0] and expect in msgs[1]
    assert diagnose(Devices(accelerators=(A100,), system_gpus=(A100,))) == []


def test_tf_config_workers(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf_config_workers() == 1
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"]}, "task": {"type": "worker", "index": 0}}))
    assert tf_config_workers() == 3
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"): tf_config_workers()


def test_device_report_on_this_machine(capsys):
    from seqrec_nb.train import describe_devices
    rep = device_report()
    here = describe_devices()
    strategy = choose_strategy(here)
    assert rep["backend"] == keras.backend.backend()
    assert (rep["precision"], rep["strategy"], rep["replicas"], rep["jit_compile"], rep["problems"]) == (
        choose_precision(here), strategy, total_replicas(here, strategy), choose_jit_compile(here), diagnose(here))
    assert len(rep["accelerators"]) == len(here.accelerators)
    out = capsys.readouterr().out
    assert f"backend      {rep['backend']}" in out and f"precision {rep['precision']}, strategy {rep['strategy']}" in out


def test_report_explains_a_gpu_the_framework_misses():
    rep = device_report(Devices(cuda_build=False, system_gpus=(A100,)), show=False)
    assert rep["driver_gpus"][0]["name"] == "A100" and rep["accelerators"] == []
    assert any("CPU-only build" in p for p in rep["problems"])


def test_save_load_round_trip_and_lambda_refused(tmp_path):
    inp = keras.Input((6,), dtype="int32")
    h = keras.layers.GRU(4)(keras.layers.Embedding(10, 4, mask_zero=True)(inp))
    net = keras.Model(inp, keras.layers.Dense(10)(h))
    net.compile("adam", "mse")
    net.optimizer.build(net.trainable_variables)       # as after training: the optimizer's state is saved and read back
    x = np.random.default_rng(0).integers(0, 10, (4, 6))
    back = load_model(save_model(net, tmp_path / "m.keras"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back(x)), keras.ops.convert_to_numpy(net(x)))
    risky = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda t: t + 1)])
    save_model(risky, tmp_path / "risky.keras")
    with pytest.raises(ValueError, match="safe_mode"): load_model(tmp_path / "risky.keras")
    with pytest.raises(FileNotFoundError, match="no model file"): load_model(tmp_path / "absent.keras")


def test_gpu_check_script_runs_here():
    "scripts/gpu_check.py, at a tiny size on whatever this machine is, so it cannot rot between GPU runs."
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "gpu_check.py")
    res = subprocess.run([sys.executable, script, "--steps", "3", "--warmup", "1", "--batch", "16", "--items", "60", "--dim", "8"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["policy"] for r in out["results"]][0] == "float32" and all(r["steps_per_s"] > 0 for r in out["results"])
    assert out["report"]["backend"] == keras.backend.backend()


def test_best_checkpoint_holds_the_best_validation_epoch(tmp_path):
    from seqrec_nb.data import NextItemBatches, leave_one_out, pad_sequences, synthetic_log
    from seqrec_nb.evaluate import Recommender, evaluate
    from seqrec_nb.train import ValidationMetric, fit, seed_everything
    seed_everything(0)
    split = leave_one_out(synthetic_log(n_users=150, n_items=30, seed=4)[0])

    class M(Recommender):
        def __init__(self):
            self.index = split.index
            inp = keras.Input((10,), dtype="int32")
            h = keras.layers.GRU(8, return_sequences=True)(keras.layers.Embedding(31, 8, mask_zero=True)(inp))
            self.net = keras.Model(inp, keras.layers.Dense(31)(h))
            self.net.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
        def _score(self, h): return keras.ops.convert_to_numpy(self.net(pad_sequences(h, 10))[:, -1])

    m = M()
    val = ValidationMetric(m, split, "HR@5")
    hist = fit(m.net, NextItemBatches(split.train_sequences(), 30, maxlen=10, batch_size=32), epochs=6,
               validation=val, patience=2, checkpoint_dir=tmp_path, verbose=0)
    best = max(hist.history["val_HR@5"])
    assert hist.history["val_HR@5"] == val.history
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5"]    # a finished run leaves only the best
    fresh = M()
    fresh.net.optimizer.build(fresh.net.trainable_variables)      # the file holds Adam's state too
    fresh.net.load_weights(tmp_path / "best.weights.h5")
    assert evaluate(fresh, split, on="valid", k=5)["HR@5"] == pytest.approx(best)
    assert evaluate(m, split, on="valid", k=5)["HR@5"] == pytest.approx(best)   # early stopping restored the best
    with pytest.raises(ValueError, match="epochs=0"): fit(m.net, None, epochs=0)


def test_jax_gpu_description(monkeypatch):
    "What describe_devices makes of a JAX GPU, with a stand-in for jax (no GPU here)."
    import types
    from seqrec_nb.train import _jax_devices
    gpu = types.SimpleNamespace(platform="gpu", device_kind="NVIDIA H200", compute_capability="9.0",
                                memory_stats=lambda: {"bytes_limit": 140 * 2**30})
    cpu = types.SimpleNamespace(platform="cpu", device_kind="cpu")
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(devices=lambda: [gpu, gpu, cpu]))
    d = _jax_devices()
    assert d["accelerators"] == (Accelerator("gpu", "NVIDIA H200", 140.0, (9, 0)),) * 2 and d["cuda_build"] is True
    assert choose_strategy(Devices(backend="jax", **d)) == "data_parallel"


def test_validation_metric_name_checked_up_front():
    with pytest.raises(ValueError, match="metric='NDCG': use one of HR@K"): ValidationMetric(None, None, "NDCG")
    with pytest.raises(ValueError, match="metric='AUC@5'"): ValidationMetric(None, None, "AUC@5")


def test_memory_growth_failure_is_reported(monkeypatch):
    if keras.backend.backend() != "tensorflow": pytest.skip("memory growth is a TensorFlow setting")
    import tensorflow as tf
    from seqrec_nb.train import enable_memory_growth
    fake = type("GPU", (), {"name": "/physical_device:GPU:0"})()
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [fake] if kind == "GPU" else [])
    def refuse(dev, on): raise RuntimeError("Physical devices cannot be modified after being initialized")
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", refuse)
    with pytest.warns(UserWarning, match="could not enable memory growth on /physical_device:GPU:0"):
        assert enable_memory_growth() == 0
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda dev, on: None)
    assert enable_memory_growth() == 1
