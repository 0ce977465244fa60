"""The batch source feeds `keras.Model.fit` on every Keras backend that is installed.

Each backend runs in its own process (Keras picks its backend once, at import). CI installs
TensorFlow, JAX and PyTorch, so all three run there.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    from seqrec_nb.data import NextItemBatches, leave_one_out, synthetic_log
    split = leave_one_out(synthetic_log(n_users=80, n_items=30, seed=0)[0])
    seqs, n = split.train_sequences(), split.n_items

    # full softmax over items at every position, padding masked out of the loss
    keras.utils.set_random_seed(0)
    inp = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(n + 1, 8, mask_zero=True)(inp)
    out = keras.layers.Dense(n + 1)(keras.layers.GRU(8, return_sequences=True)(h))
    model = keras.Model(inp, out)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
    hist = model.fit(NextItemBatches(seqs, n, maxlen=10, batch_size=16, seed=0), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all() and hist.history["loss"][1] < hist.history["loss"][0]

    # sampled negatives arrive as a named input
    batches = NextItemBatches(seqs, n, maxlen=10, batch_size=16, negatives="uniform", n_negatives=2, seed=0)
    x, y = batches[0]
    hi, ng = keras.Input((10,), dtype="int32", name="history"), keras.Input((10, 2), dtype="int32", name="negatives")
    emb = keras.layers.Embedding(n + 1, 8)
    score = keras.ops.sum(emb(hi)[:, :, None, :] * emb(ng), axis=-1)
    net = keras.Model({"history": hi, "negatives": ng}, score)
    assert tuple(net.predict(x, verbose=0).shape) == (len(y), 10, 2)
    print("backend ok:", keras.backend.backend())
""")


@pytest.mark.parametrize("backend,module", [("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")])
def test_batches_train_on_backend(backend, module):
    if importlib.util.find_spec(module) is None:
        if os.environ.get("SEQREC_REQUIRE_BACKENDS"):     # CI installs all three: a missing one is a failure there
            pytest.fail(f"{module} is not installed but SEQREC_REQUIRE_BACKENDS is set")
        pytest.skip(f"{module} is not installed (pip install -e '.[{'jax' if backend == 'jax' else backend}]')")
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert f"backend ok: {backend}" in res.stdout
