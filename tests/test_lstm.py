"""seqrec_nb.recurrent and seqrec_nb.lstm as a user meets them: the from-scratch cells against Keras, gradients, the losses, LSTMRec end to end.

Backend-neutral: CI runs this file on TensorFlow, JAX and PyTorch, except the sampled losses' end-to-end runs, marked
`one_backend`: their formulas are checked on every backend, and the training plumbing is the full softmax's.
"""
import keras
import numpy as np
import pytest
from keras import ops

from seqrec_nb.data import bucket_width, leave_one_out, synthetic_log
from seqrec_nb.evaluate import Popularity, evaluate
from seqrec_nb.lstm import LSTMNet, LSTMRec
from seqrec_nb.recurrent import GRUCell, LSTMCell, gru_step, lstm_step, run_cell
from seqrec_nb.train import value_and_grad
from seqrec_nb.train import seed_everything

BACKEND = keras.backend.backend()


def float64():
    "A context in which the backend computes in float64 (JAX needs x64 switched on)."
    if BACKEND == "jax":
        import jax
        return jax.enable_x64(True)
    import contextlib
    return contextlib.nullcontext()


def np_(x): return ops.convert_to_numpy(x)


def test_value_and_grad_matches_calculus():
    x = np.array([0.5, -1.0, 2.0])
    y, (g,) = value_and_grad(lambda t: ops.sum(ops.sin(t) * t), x)
    assert y == pytest.approx(float(np.sum(np.sin(x) * x)))
    # Keras computes ops.sin in float32 on JAX even for float64 input
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-6 if BACKEND == "jax" else 1e-12)
    with pytest.raises(ValueError, match="scalar"): value_and_grad(lambda t: t * 2, x)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_matches_keras_with_padding(kind):
    """Our cell, loaded with a Keras layer's (random) weights, reproduces its outputs and final states, masked."""
    r = np.random.default_rng(4)
    x = r.normal(size=(3, 7, 4)).astype("float32")
    mask = np.ones((3, 7), bool); mask[0, :3] = False; mask[1, -2:] = False; mask[2, 2:4] = False
    layer_cls, cell_cls = (keras.layers.LSTM, LSTMCell) if kind == "lstm" else (keras.layers.GRU, GRUCell)
    ref = layer_cls(6, return_sequences=True, return_state=True)
    ref.build((None, 7, 4))
    ref.set_weights([r.normal(size=w.shape).astype("float32") * 0.5 for w in ref.get_weights()])
    mine = cell_cls(6); mine.build((None, 4)); mine.set_weights(ref.get_weights())
    ref_out, *ref_states = ref(x, mask=mask)
    out, states = run_cell(mine, x, mask)
    for a, b in zip([out, *states], [ref_out, *ref_states]):
        assert np.abs(np_(a) - np_(b)).max() <= 1e-5


def test_mask_skips_steps():
    cell = LSTMCell(5)
    x = np.random.default_rng(0).normal(size=(1, 6, 2)).astype("float32")
    _, padded = run_cell(cell, x, np.array([[False, False, True, True, True, True]]))
    _, cut = run_cell(cell, x[:, 2:])
    np.testing.assert_allclose(np_(padded[1]), np_(cut[1]), atol=1e-6)
    with pytest.raises(ValueError, match="mask has shape"): run_cell(cell, x, np.ones((1, 5), bool))


def test_lstm_step_gradient_matches_finite_differences():
    r = np.random.default_rng(1)
    u, n_in = 3, 2
    args = [r.normal(size=(2, n_in)), r.normal(size=(2, u)), r.normal(size=(2, u)),
            r.normal(size=(n_in, 4 * u)), r.normal(size=(u, 4 * u)), r.normal(size=(4 * u,))]
    w = r.normal(size=(2, u))
    loss = lambda *a: ops.sum(ops.multiply(lstm_step(*a)[0], w)) + ops.sum(lstm_step(*a)[1] ** 2)
    _, grads = value_and_grad(loss, *args)
    assert all(g.dtype == np.float64 for g in grads)
    # On TensorFlow float64 end to end: central differences good to ~1e-9. Keras computes some ops in
    # float32 on JAX (ops.sin) and PyTorch (ops.matmul), so there the step is larger and the tolerance
    # that of float32 (a wrong gradient is off by O(1), not O(1e-3)).
    eps, tol = (1e-6, 1e-7) if BACKEND == "tensorflow" else (1e-3, 5e-3)
    at = lambda arrays: float(np_(loss(*[ops.convert_to_tensor(x, dtype="float64") for x in arrays])))
    with float64():
        for i, (a, g) in enumerate(zip(args, grads)):
            for idx in np.ndindex(a.shape):
                plus, minus = [x.copy() for x in args], [x.copy() for x in args]
                plus[i][idx] += eps; minus[i][idx] -= eps
                fd = (at(plus) - at(minus)) / (2 * eps)
                assert abs(fd - g[idx]) <= tol * max(1, abs(fd)), (i, idx)


def test_gru_step_keeps_state_when_update_gate_saturates():
    u, n_in = 4, 3
    r = np.random.default_rng(2)
    bias = np.zeros((2, 3 * u)); bias[0, :u] = 50.0           # z = 1: the old state passes unchanged
    h0 = r.normal(size=(1, u))
    h = gru_step(r.normal(size=(1, n_in)), h0, r.normal(size=(n_in, 3 * u)), r.normal(size=(u, 3 * u)), bias)
    np.testing.assert_allclose(np_(h), h0, atol=1e-12)


def small_batch():
    x = np.array([[0, 3, 8, 1, 5], [2, 2, 6, 9, 4]]); y = np.array([[0, 8, 1, 5, 7], [2, 6, 9, 4, 11]])
    return x, y


def test_softmax_loss_is_masked_cross_entropy_over_real_items():
    net = LSTMNet(20, dim=6, dropout=0.0); net.build()
    x, y = small_batch()
    h = net(x)
    logits = np_(net.logits(h))
    assert (logits[..., 0] < -1e3).all()                      # padding is never a candidate
    ce = np.log(np.exp(logits).sum(-1)) - np.take_along_axis(logits, y[..., None], -1)[..., 0]
    assert float(np_(net.compute_loss(x, y, h))) == pytest.approx(ce[y > 0].mean(), rel=1e-5)
    emb = np_(net.embedding.embeddings).copy(); emb[0] += 3.0       # padding's embedding row changes nothing
    net.embedding.embeddings.assign(emb)
    assert float(np_(net.compute_loss(x, y, net(x)))) == pytest.approx(ce[y > 0].mean(), rel=1e-5)


def test_history_padding_does_not_change_the_state():
    net = LSTMNet(20, dim=6, dropout=0.0, cell="gru"); net.build()
    a = np_(net(np.array([[0, 0, 0, 4, 7, 1]])))[:, -1]
    b = np_(net(np.array([[4, 7, 1]])))[:, -1]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_sampled_losses_match_their_formulas():
    x, y = small_batch()
    q = np.linspace(1, 2, 20); q /= q.sum()
    nets = {}
    for loss in ("softmax", "bce", "sampled_softmax"):
        nets[loss] = LSTMNet(20, dim=6, dropout=0.0, loss=loss); nets[loss].build()
    for n in ("bce", "sampled_softmax"): nets[n].set_weights(nets["softmax"].get_weights())
    nets["sampled_softmax"].set_sampler(q)
    h = nets["softmax"](x)
    logits = np_(nets["softmax"].logits(h))
    negs = (y[..., None] + np.array([1, 2, 3])) % 20 + 1       # never the target
    s = lambda ids: np.take_along_axis(logits, ids, -1)
    pos, neg = s(y[..., None])[..., 0], s(negs)
    valid = y > 0
    bce = np.logaddexp(0, -pos) + np.logaddexp(0, neg).sum(-1)
    assert float(np_(nets["bce"].compute_loss({"negatives": negs}, y, h))) == pytest.approx(bce[valid].mean(), rel=1e-5)
    qq = np.concatenate([[1.0], q])
    pos, neg, y_ = pos[valid], neg[valid], y[valid]              # padded positions carry no loss
    corrected = neg - np.log(3 * qq[negs[valid]] / (1 - qq[y_])[..., None])
    both = np.concatenate([pos[..., None], corrected], -1)
    ssm = np.log(np.exp(both).sum(-1)) - pos
    got = float(np_(nets["sampled_softmax"].compute_loss({"negatives": negs}, y, h)))
    assert got == pytest.approx(ssm.mean(), rel=1e-5)
    with pytest.raises(ValueError, match="needs negatives"): nets["bce"].compute_loss(x, y, h)
    with pytest.raises(ValueError, match="20 probabilities"): nets["sampled_softmax"].set_sampler(np.ones(3))


def test_net_config_and_tying():
    tied = LSTMNet(15, dim=4, tie_weights=True, cell="gru"); tied.build()
    untied = LSTMNet(15, dim=4); untied.build()
    assert tied.item_vectors() is tied.embedding.embeddings
    assert LSTMNet.from_config(tied.get_config()).get_config() == tied.get_config()
    tied_lstm = LSTMNet(15, dim=4, tie_weights=True); tied_lstm.build()
    assert untied.count_params() - tied_lstm.count_params() == 16 * 4
    for bad, msg in [(dict(cell="rnn"), "cell='rnn'"), (dict(loss="mse"), "loss='mse'"), (dict(dropout=1.0), "dropout=1.0")]:
        with pytest.raises(ValueError, match=msg): LSTMNet(15, **bad)


@pytest.fixture(scope="module")
def syn():
    return leave_one_out(synthetic_log(n_users=300, n_items=40, seed=3)[0])


@pytest.mark.parametrize("loss", ["softmax", pytest.param("sampled_softmax", marks=pytest.mark.one_backend),
                                  pytest.param("bce", marks=pytest.mark.one_backend)])
def test_lstmrec_learns_and_round_trips(syn, loss, tmp_path, monkeypatch):
    seed_everything(0, deterministic=False)
    # batches padded to maxlen, one shape: JAX compiles the step once, not once per width (test_recipes trains on buckets)
    monkeypatch.setattr(LSTMRec, "bucket_by_length", False)
    rec = LSTMRec(dim=12, maxlen=15, loss=loss, n_negatives=10, epochs=4, patience=4, batch_size=32).fit(syn, verbose=0)
    assert len(rec.history["loss"]) == len(rec.history["val_NDCG@10"]) == 4
    assert rec.history["loss"][-1] < rec.history["loss"][0]
    if loss != "bce":             # one negative learns too slowly for a four-epoch test
        assert evaluate(rec, syn)["NDCG@10"] > evaluate(Popularity().fit(syn), syn)["NDCG@10"]
    history = list(syn.index.decode([3, 17, 5]))           # raw ids, a history the log never held
    assert not any(len(q) >= 3 and (np.lib.stride_tricks.sliding_window_view(q, 3) == [3, 17, 5]).all(1).any()
                   for q in syn.sequences.values())
    again = LSTMRec.load(rec.save(tmp_path / "model"))
    assert list(again.recommend(history, k=5)) == list(rec.recommend(history, k=5))
    np.testing.assert_allclose(again.score([[3, 17, 5]])[:, 1:], rec.score([[3, 17, 5]])[:, 1:], atol=1e-5)
    assert again.history == rec.history and again.loss == loss


def test_lstmrec_errors(tmp_path):
    with pytest.raises(ValueError, match="loss='mse'"): LSTMRec(loss="mse")
    with pytest.raises(ValueError, match="maxlen=0"): LSTMRec(maxlen=0)
    with pytest.raises(ValueError, match="validation_protocol"): LSTMRec(validation_protocol="random")
    with pytest.raises(RuntimeError, match="not fitted"): LSTMRec().score([[1]])
    with pytest.raises(RuntimeError, match="nothing to save"): LSTMRec().save(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no saved LSTMRec"): LSTMRec.load(tmp_path)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA on demand is TensorFlow's: JAX always compiles (the other "
                    "tests here), and on PyTorch jit_compile means torch.compile")
def test_jit_compiled_training_with_variable_widths(syn):
    """XLA compiles one program per batch width (bucketed batches): training still runs and learns."""
    seed_everything(0, deterministic=False)
    rec = LSTMRec(dim=8, maxlen=15, loss="softmax", epochs=2, patience=2, batch_size=32, jit_compile=True).fit(syn, verbose=0)
    assert rec.net.jit_compile is True and np.isfinite(rec.history["loss"]).all()
    widths = {rec.batches(syn)[i][0].shape[1] for i in range(len(rec.batches(syn)))}
    assert len(widths) > 1 and widths <= {bucket_width(n) for n in range(1, 16)} | {15}


def test_gru_tied_uniform_round_trips(syn, tmp_path, monkeypatch):
    """The other constructor options: a GRU, tied weights, uniform negatives; saved and reloaded alike."""
    seed_everything(0, deterministic=False)
    monkeypatch.setattr(LSTMRec, "bucket_by_length", False)          # one batch shape, as above
    rec = LSTMRec(cell="gru", tie_weights=True, negatives="uniform", dim=8, maxlen=15, n_negatives=5, epochs=1,
                  batch_size=32).fit(syn, verbose=0)
    assert rec.net.tie_weights and rec.net.cell_kind == "gru"
    np.testing.assert_allclose(np_(rec.net.log_q)[1:], np.log(1 / syn.n_items), rtol=1e-5)     # uniform sampler
    again = LSTMRec.load(rec.save(tmp_path / "gru"))
    assert again.net.tie_weights and again.net.get_config() == rec.net.get_config()
    np.testing.assert_allclose(again.score([[1, 2, 3]])[:, 1:], rec.score([[1, 2, 3]])[:, 1:], atol=1e-5)
