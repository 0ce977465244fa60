"""seqrec_nb.layers: the shared output layer, losses and recommender plumbing. Backend-neutral."""
import keras
import numpy as np
import pytest
from keras import ops

from seqrec_nb.data import leave_one_out, pad_sequences, synthetic_log
from seqrec_nb.layers import FMCRec, LastItemNet, chunked_softmax_loss
from seqrec_nb.train import value_and_grad
from seqrec_nb.train import seed_everything


def test_scores_do_not_depend_on_how_histories_are_grouped():
    """`score` sorts histories by length and pads each group only to its longest: same as padding all to maxlen."""
    seed_everything(0, deterministic=False)
    syn = leave_one_out(synthetic_log(n_users=120, n_items=30, seed=2)[0])
    rec = FMCRec(dim=8, maxlen=12, n_negatives=5, epochs=1, batch_size=32).fit(syn, verbose=0)
    hist = syn.histories("test")
    direct = ops.convert_to_numpy(rec.net.logits(rec.net(pad_sequences(hist, 12))[:, -1]))
    np.testing.assert_allclose(rec._score(hist, chunk=7)[:, 1:], direct[:, 1:], atol=1e-5)


def test_net_errors():
    net = LastItemNet(10, dim=4, loss="bce"); net.build()
    with pytest.raises(ValueError, match="needs negatives"): net.compute_loss(np.ones((1, 3), "int32"), np.ones((1, 3), "int32"), net(np.ones((1, 3), "int32")))
    with pytest.raises(ValueError, match="10 probabilities"): net.set_sampler(np.ones(4) / 4)


def np_(x): return ops.convert_to_numpy(x)


def direct_softmax_loss(h, w, b, y, weights):
    logits = ops.matmul(h, ops.transpose(w)) + b
    return ops.sum(ops.multiply(weights, keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)))


@pytest.mark.parametrize("chunk", [1, 7, 40, 64])
def test_chunked_softmax_loss_matches_the_direct_one(chunk):
    """Value and the gradients for h, w and b, with 40 positions (not a multiple of 7), zero weights included."""
    r = np.random.default_rng(chunk)
    h, w, b = (r.normal(size=s).astype("float32") for s in [(40, 6), (33, 6), (33,)])
    y, weights = r.integers(0, 33, 40), r.random(40).astype("float32")
    weights[::9] = 0
    want, want_grads = value_and_grad(lambda h, w, b: direct_softmax_loss(h, w, b, y, weights), h, w, b)
    got, got_grads = value_and_grad(lambda h, w, b: chunked_softmax_loss(h, w, b, y, weights, chunk=chunk), h, w, b)
    assert got == pytest.approx(want, rel=1e-5)
    for g, g0 in zip(got_grads, want_grads): np.testing.assert_allclose(g, g0, atol=1e-5 * np.abs(g0).max())
    with pytest.raises(ValueError, match="chunk=True"): chunked_softmax_loss(h, w, b, y, weights, chunk=True)


@pytest.mark.parametrize("chunk", [8, 64])
def test_chunked_softmax_loss_when_targets_trail_far_behind(chunk):
    """One long item vector along the states: every target trails its row's top logit by more than 108, so a row
    shifted by its target's logit overflows; every chunk must be recomputed by its exact maximum, and still match."""
    r = np.random.default_rng(11)
    h, w, b = (r.normal(size=s).astype("float32") for s in [(40, 6), (33, 6), (33,)])
    h[:, 0] = 1; w[0] = 0; w[0, 0] = 300
    y, weights = r.integers(1, 33, 40), r.random(40).astype("float32")
    logits = h @ w.T + b
    assert (logits.max(1) - logits[np.arange(40), y]).min() > 108       # e^(gap - 20) overflows float32
    want, want_grads = value_and_grad(lambda h, w, b: direct_softmax_loss(h, w, b, y, weights), h, w, b)
    got, got_grads = value_and_grad(lambda h, w, b: chunked_softmax_loss(h, w, b, y, weights, chunk=chunk), h, w, b)
    assert np.isfinite(got) and got == pytest.approx(want, rel=1e-5)
    for g, g0 in zip(got_grads, want_grads): np.testing.assert_allclose(g, g0, atol=1e-5 * np.abs(g0).max())


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="JAX traces the loop: the branch taken is not observable")
def test_chunked_softmax_loss_takes_the_fallback_only_where_needed(monkeypatch):
    """Rows 0-7 trail far behind (fallback), rows 8-37 do not: with chunks of 8 exactly the first chunk is
    recomputed, the others take the fast path, and the whole still matches the direct computation (zero weights
    and a filled last chunk included). With the chunk count rounded up to even (6 chunks of 7 rows), row 7 is in
    the second chunk, and so the first two are recomputed."""
    r = np.random.default_rng(12)
    h, w, b = (r.normal(size=s).astype("float32") for s in [(38, 6), (33, 6), (33,)])
    h[:8, 0] = 1; h[8:, 0] = 0; w[0] = 0; w[0, 0] = 300
    y, weights = r.integers(1, 33, 38), r.random(38).astype("float32")
    weights[[9, 20]] = 0
    taken, cond = [], keras.ops.cond

    def watched(pred, true_fn, false_fn):
        taken.append(bool(np_(pred)))
        return cond(pred, true_fn, false_fn)
    monkeypatch.setattr(keras.ops, "cond", watched)
    want, want_grads = value_and_grad(lambda h, w, b: direct_softmax_loss(h, w, b, y, weights), h, w, b)
    for parallel, branches in ((1, [True, False, False, False, False]), (2, [True, True, False, False, False, False])):
        taken.clear()
        chunked = lambda h, w, b: chunked_softmax_loss(h, w, b, y, weights, chunk=8, parallel=parallel)
        got, got_grads = value_and_grad(chunked, h, w, b)
        assert taken == branches
        assert got == pytest.approx(want, rel=1e-5)
        for g, g0 in zip(got_grads, want_grads): np.testing.assert_allclose(g, g0, atol=1e-5 * np.abs(g0).max())


def test_chunked_softmax_loss_scores_float16_item_vectors_in_float32():
    """A pure float16 model: e^-20 would underflow in float16, so everything is scored in float32; the gradients
    come back in float16."""
    r = np.random.default_rng(1)
    h, w = r.normal(size=(20, 4)).astype("float16"), r.normal(size=(9, 4)).astype("float16")
    b, y, weights = np.zeros(9, "float16"), r.integers(0, 9, 20), np.full(20, 0.05, "float16")
    got, grads = value_and_grad(lambda h, w: chunked_softmax_loss(h, w, b, y, weights, chunk=8), h, w)
    want = float(np_(direct_softmax_loss(h.astype("float32"), w.astype("float32"), b.astype("float32"), y,
                                         weights.astype("float32"))))
    assert np.isfinite(got) and got == pytest.approx(want, rel=1e-3)
    assert all(g.dtype == np.float16 and np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("jit", [False] + ([True] if keras.backend.backend() != "torch" else []))
def test_full_softmax_trains_the_same_chunked_or_not(jit):
    """`fit` from the same weights on the same batches: chunked (the default) or from the whole logits."""
    r = np.random.default_rng(4)
    x = r.integers(0, 31, size=(16, 9)); y = np.where(x > 0, r.integers(1, 31, size=(16, 9)), 0)

    def weights_after_fit(softmax_chunk):
        seed_everything(0, deterministic=not jit)
        net = LastItemNet(30, dim=6, loss="softmax", tie_weights=True); net.softmax_chunk = softmax_chunk; net.build()
        before = [ops.convert_to_numpy(v) for v in net.weights]
        net.compile(keras.optimizers.Adam(0.05), jit_compile=jit)
        net.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        return before, [ops.convert_to_numpy(v) for v in net.weights]

    (start, chunked), (start_direct, direct) = weights_after_fit(16), weights_after_fit(None)
    for a, b in zip(start, start_direct): np.testing.assert_array_equal(a, b)
    for a, b in zip(chunked, direct): np.testing.assert_allclose(a, b, atol=1e-4)
    assert max(float(np.abs(a - s).max()) for a, s in zip(chunked, start)) > 0.1      # it trained


def test_chunked_softmax_loss_scores_float16_states_in_float32():
    """Under mixed precision the hidden states arrive in float16: the loss is computed in float32 and the
    gradient for h comes back in float16."""
    r = np.random.default_rng(0)
    h, w, b = r.normal(size=(20, 4)).astype("float32"), r.normal(size=(9, 4)).astype("float32"), np.zeros(9, "float32")
    y, weights = r.integers(0, 9, 20), np.full(20, 0.05, "float32")
    h16 = h.astype("float16")
    got, (g,) = value_and_grad(lambda a: chunked_softmax_loss(a, w, b, y, weights, chunk=8), h16)
    want = float(np_(direct_softmax_loss(h16.astype("float32"), w, b, y, weights)))
    assert got == pytest.approx(want, rel=1e-5) and g.dtype == np.float16
