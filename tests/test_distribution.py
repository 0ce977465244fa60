"""Real multi-replica and multi-worker training on CPU: tf.distribute on TensorFlow, DataParallel on JAX.

Each scenario runs in its own process: logical devices and collective ops must be configured before
TensorFlow initialises, and the multi-worker run needs two processes joined by TF_CONFIG.
"""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

# every scenario runs in a child process that sets the backend it needs, whatever the parent's

COMMON = textwrap.dedent("""
    import os, sys, json
    import numpy as np
    import keras

    def data():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 6)).astype("float32")
        y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(256, 1))).astype("float32")
        return x, y

    def build():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
        m.compile(keras.optimizers.SGD(0.05), "mse")
        return m
""")

SEQ = textwrap.dedent("""
    from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log

    def batches(batch_size=32):
        split = leave_one_out(synthetic_log(n_users=120, n_items=30, seed=0)[0])
        return NextItemBatches(split.train_sequences(), split.n_items, maxlen=10, batch_size=batch_size, shuffle=False)

    def seq_model():
        keras.utils.set_random_seed(0)
        inp = keras.Input((10,), dtype="int32")
        h = keras.layers.GRU(8, return_sequences=True)(keras.layers.Embedding(31, 8)(inp))
        m = keras.Model(inp, keras.layers.Dense(31)(h))
        m.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
        return m
""")

MIRRORED = COMMON + SEQ + textwrap.dedent("""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from seqrec_nb.train import Distribution, fit
    single = fit(seq_model(), batches(), epochs=4, verbose=0).history["loss"]
    dist = Distribution("mirrored", local_devices=["/cpu:0", "/cpu:1"])
    with dist:
        m = seq_model()
    multi = fit(m, batches(), epochs=4, verbose=0).history["loss"]      # fit outside the block, as people do
    # FusedAdam under the strategy: Keras' update (the fused kernel is for plain variables), the same curve as keras' Adam
    from seqrec_nb.train import FusedAdam
    adam_curves = {}
    for name, opt in (("fused", FusedAdam), ("keras", keras.optimizers.Adam)):
        with dist:
            m = seq_model()
            m.compile(opt(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
        adam_curves[name] = fit(m, batches(), epochs=2, verbose=0).history["loss"]
    print(json.dumps({"replicas": dist.replicas, "single": single, "multi": multi, "adam": adam_curves}))
""")

WORKER = COMMON + SEQ + textwrap.dedent("""
    from seqrec_nb.train import auto_distribution, fit
    dist = auto_distribution()                       # TF_CONFIG names two workers: multi-worker mirrored
    assert dist.name == "multi_worker_mirrored", dist
    with dist:
        m = seq_model()
        # a batch of 30 is the global batch: each step, each worker's replica computes on its 15
        hist = fit(m, batches(30), epochs=3).history["loss"]
    np.savez(sys.argv[1], *[np.asarray(w) for w in m.get_weights()])
    print(json.dumps({"replicas": dist.replicas, "loss": hist}))
""")

REFERENCE = COMMON + SEQ + textwrap.dedent("""
    from seqrec_nb.train import fit
    m = seq_model()
    hist = fit(m, batches(30), epochs=3).history["loss"]   # one process, the same global batches of 30
    np.savez(sys.argv[1], *[np.asarray(w) for w in m.get_weights()])
    print(json.dumps({"loss": hist}))
""")


def _env(**extra):
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow", **extra}


def test_mirrored_on_two_logical_cpus_matches_single_device():
    res = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    # same global batch, gradients averaged over the two replicas: the same loss curve up to float rounding
    np.testing.assert_allclose(out["multi"], out["single"], rtol=1e-4)
    assert out["multi"][-1] < out["multi"][0]
    np.testing.assert_allclose(out["adam"]["fused"], out["adam"]["keras"], rtol=1e-6)
    assert out["adam"]["fused"][-1] < out["adam"]["fused"][0]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks: s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks: s.close()
    return ports


def test_two_workers_on_loopback_agree(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / f"w{i}.npz")], env=_env(TF_CONFIG=tf_config),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 240                 # bounded: a hung collective must not hang CI
    outs = []
    try:
        for p in procs: outs.append(p.communicate(timeout=max(1, deadline - time.monotonic())))
    finally:
        for p in procs:
            if p.poll() is None: p.kill(); p.wait()
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err[-4000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [r["replicas"] for r in results] == [2, 2]
    ref = subprocess.run([sys.executable, "-c", REFERENCE, str(tmp_path / "ref.npz")], capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert ref.returncode == 0, ref.stderr[-4000:]
    w0, w1, wr = (np.load(tmp_path / f"{n}.npz") for n in ("w0", "w1", "ref"))
    for k in w0.files:
        np.testing.assert_allclose(w0[k], w1[k], rtol=1e-6, atol=1e-7)     # the workers agree...
        np.testing.assert_allclose(w0[k], wr[k], rtol=1e-4, atol=1e-5)     # ...on what one process computes
    assert results[0]["loss"][-1] < results[0]["loss"][0]


DATA_PARALLEL = COMMON + SEQ + textwrap.dedent("""
    import jax
    from seqrec_nb.train import Distribution, fit
    assert len(jax.devices()) == 2, jax.devices()
    b = batches(16)
    b.drop_remainder = True                          # what fit does under data parallelism: equal batches
    single = fit(seq_model(), b, epochs=4, verbose=0).history["loss"]
    dist = Distribution("data_parallel")
    with dist:
        m = seq_model()
        multi = fit(m, batches(16), epochs=4, verbose=0).history["loss"]   # ragged last batch dropped by fit
    kernel = m.layers[1].embeddings.value
    print(json.dumps({"replicas": dist.replicas, "single": single, "multi": multi,
                      "sharded_over": len(kernel.sharding.device_set)}))
""")


def test_jax_data_parallel_on_two_host_devices_matches_single_device():
    if importlib.util.find_spec("jax") is None and not os.environ.get("SEQREC_REQUIRE_BACKENDS"):
        pytest.skip("jax is not installed (pip install -e '.[jax]')")
    env = _env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", DATA_PARALLEL], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["sharded_over"] == 2      # weights replicated on both devices
    np.testing.assert_allclose(out["multi"], out["single"], rtol=1e-4)
