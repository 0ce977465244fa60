"""seqrec_nb.transformer and seqrec_nb.attention as a user meets them: attention against Keras, causality, SASRec end to end.

Backend-neutral: CI runs this file on TensorFlow, JAX and PyTorch, except the tests marked `one_backend`.
"""
import keras
import numpy as np
import pytest
from keras import ops

from seqrec_nb.attention import SASRec, SASRecNet
from seqrec_nb.data import leave_one_out, synthetic_log
from seqrec_nb.evaluate import Popularity, evaluate
from seqrec_nb.train import load_model, save_model, seed_everything
from seqrec_nb.transformer import SelfAttention, TransformerBlock, causal_mask, scaled_dot_product_attention


def np_(x): return ops.convert_to_numpy(x)


def test_attention_matches_formula_and_masks_the_future():
    r = np.random.default_rng(0)
    q, k, v = (r.normal(size=(2, 4, 3)).astype("float32") for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v, causal_mask(4))
    s = np.einsum("bid,bjd->bij", q, k) / np.sqrt(3)
    s = np.where(np.tril(np.ones((4, 4))) > 0, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(np_(w), p, atol=1e-6)
    np.testing.assert_allclose(np_(out), p @ v, atol=1e-5)


@pytest.mark.parametrize("heads", [1, 3])
def test_self_attention_matches_keras_multi_head_attention(heads):
    """Same random weights, causal and padding masks: outputs and weights within 1e-5 on real positions."""
    r = np.random.default_rng(heads)
    x = r.normal(size=(3, 6, 9)).astype("float32")
    real = np.ones((3, 6), bool); real[0, :2] = False
    ref = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=9 // heads)
    key_mask = np.broadcast_to(real[:, None, :], (3, 6, 6))
    ref(x, x, attention_mask=key_mask, use_causal_mask=True)
    ref.set_weights([r.normal(size=w.shape).astype("float32") * 0.4 for w in ref.get_weights()])
    ref_out, ref_w = ref(x, x, attention_mask=key_mask, use_causal_mask=True, return_attention_scores=True)
    mine = SelfAttention(heads, 9 // heads); mine.build(x.shape); mine.set_weights(ref.get_weights())
    out, w = mine(x, valid=real, return_attention=True)
    assert np.abs(np_(out) - np_(ref_out))[real].max() <= 1e-5
    assert np.abs(np_(w) - np_(ref_w)).transpose(0, 2, 1, 3)[real].max() <= 1e-5
    assert (np_(w)[0, :, :2] == 0).all()          # padded queries attend to nothing


def test_attention_with_context_and_no_output_projection():
    """Queries from x, keys and values from another sequence, heads concatenated (SASRec's reference code)."""
    r = np.random.default_rng(5)
    x, c = (r.normal(size=(2, 5, 6)).astype("float32") for _ in range(2))
    att = SelfAttention(2, 3, output_projection=False); att.build(x.shape)
    att.set_weights([r.normal(size=w.shape).astype("float32") * 0.5 for w in att.get_weights()])
    assert len(att.weights) == 6
    wq, bq, wk, bk, wv, bv = att.get_weights()
    proj = lambda z, w, b: np.einsum("btd,dhk->bhtk", z, w) + b[None, :, None, :]
    s = proj(x, wq, bq) @ proj(c, wk, bk).transpose(0, 1, 3, 2) / np.sqrt(3)
    s = np.where(np.tril(np.ones((5, 5))) > 0, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
    want = (p @ proj(c, wv, bv)).transpose(0, 2, 1, 3).reshape(2, 5, 6)
    np.testing.assert_allclose(np_(att(x, context=c)), want, atol=1e-5)


def test_reference_block_is_its_sublayers_composed():
    blk = TransformerBlock(2, style="reference"); blk.build((None, None, 6))
    r = np.random.default_rng(6)
    blk.set_weights([r.normal(size=w.shape).astype("float32") * 0.5 for w in blk.get_weights()])
    x = r.normal(size=(2, 5, 6)).astype("float32")
    valid = np.ones((2, 5), bool); valid[1, :2] = False
    q = blk.norm_attention(x)
    y = blk.norm_ffn(q + blk.attention(q, valid=valid, context=x))
    want = np_(y + blk.ffn_out(blk.ffn_in(y))) * valid[..., None]
    np.testing.assert_allclose(np_(blk(x, valid=valid)), want, atol=1e-5)
    assert blk.get_config()["style"] == "reference" and blk.attention.get_config()["output_projection"] is False
    net = SASRecNet(30, dim=8, maxlen=10, style="reference"); net.build()
    for table, rows in ((net.embedding, 31), (net.positions, 10)):      # Glorot uniform, not Keras' default of ±0.05
        assert 0.05 < np.abs(np_(table.embeddings)).max() <= np.sqrt(6 / (rows + 8))
    with pytest.raises(ValueError, match="style='post'"): TransformerBlock(style="post")


def test_reference_attention_kernels_drawn_as_dense_layers():
    """The reference style draws q/k/v as the code's (d, d) dense kernels; the paper style keeps Keras' narrower draw."""
    keras_bound, dense_bound = np.sqrt(6 / (50 * 1 + 50 * 50)), np.sqrt(6 / (50 + 50))
    ref, paper = TransformerBlock(1, style="reference"), TransformerBlock(1)
    for blk in (ref, paper): blk.build((None, None, 50))
    again = SelfAttention.from_config(ref.attention.get_config()); again.build((None, None, 50))
    for att in (ref.attention, again):
        kernels = [np_(w) for w in (att.w_query, att.w_key, att.w_value)]
        assert all(keras_bound < np.abs(k).max() <= dense_bound for k in kernels)
        assert all(not np.allclose(a, b) for i, a in enumerate(kernels) for b in kernels[i + 1:])   # one draw each
    assert keras_bound / 2 < np.abs(np_(paper.attention.w_query)).max() <= keras_bound
    seeded = SelfAttention(2, 3, kernel_initializer=keras.initializers.GlorotUniform(seed=7)); seeded.build((None, None, 6))
    kernels = [np_(w) for w in (seeded.w_query, seeded.w_key, seeded.w_value, seeded.w_out)]
    assert all(not np.allclose(a, b) for a, b in zip(kernels[:2], kernels[1:3]))     # seeds 7, 8, 9: no copies


def test_sasrec_net_is_causal_and_bucketing_exact():
    net = SASRecNet(25, dim=8, maxlen=9, n_blocks=2, n_heads=2, dropout=0.0); net.build()
    hist = np.array([[0, 0, 0, 3, 8, 1, 5, 7, 2]])
    h = np_(net(hist))
    np.testing.assert_allclose(np_(net(hist[:, -7:]))[:, -6:], h[:, -6:], atol=1e-5)    # less padding, same states
    changed = hist.copy(); changed[0, 6] = 11
    h2 = np_(net(changed))
    np.testing.assert_array_equal(h2[:, :6], h[:, :6])
    assert np.abs(h2[:, 6:] - h[:, 6:]).min() > 0
    _, maps = net(hist, return_attention=True)
    assert len(maps) == 2 and tuple(maps[0].shape) == (1, 2, 9, 9)
    with pytest.raises(ValueError, match="maxlen=9"): net(np.ones((1, 10), "int32"))


def test_layers_config_and_saving_round_trip(tmp_path):
    for layer in (SelfAttention(2, 4, dropout=0.1), TransformerBlock(2, 0.3, ffn_dim=16)):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    net = SASRecNet(20, dim=8, maxlen=6, n_blocks=1, n_heads=2, dropout=0.1, loss="softmax"); net.build()
    net.compile(keras.optimizers.Adam())
    net.optimizer.build(net.trainable_variables)          # its slots exist, so the saved optimizer matches on loading
    again = load_model(save_model(net, tmp_path / "sas.keras"))
    assert again.get_config() == net.get_config()
    x = np.array([[0, 1, 2, 3, 4, 5]])
    np.testing.assert_allclose(np_(again(x)), np_(net(x)), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="num_heads=0"): SelfAttention(0, 4)
    with pytest.raises(ValueError, match="n_heads=3"): SASRecNet(10, dim=8, n_heads=3)
    with pytest.raises(ValueError, match="dropout=1"): SASRec(dropout=1.0)
    with pytest.raises(ValueError, match="n_blocks=0"): SASRec(n_blocks=0)
    with pytest.raises(RuntimeError, match="not fitted"): SASRec().attention_maps(["a"])
    with pytest.raises(ValueError, match="bucket_by_length='no'"): SASRec(bucket_by_length="no")
    blk = TransformerBlock(num_heads=3)
    with pytest.raises(ValueError, match="not divisible"): blk.build((None, None, 8))


@pytest.fixture(scope="module")
def syn():
    return leave_one_out(synthetic_log(n_users=300, n_items=40, seed=3)[0])


@pytest.mark.parametrize("loss, style", [pytest.param("bce", "paper", marks=pytest.mark.one_backend),   # each part runs below
                                         ("softmax", "paper"), ("bce", "reference")])
def test_sasrec_learns_and_round_trips(syn, loss, style, tmp_path):
    seed_everything(0, deterministic=False)
    # batches padded to maxlen: one shape, so JAX compiles the step once instead of once per batch width (35 s -> 6 s);
    # the length-grouped batches are test_sasrec_batches_as_asked's, and chapter 30 trains on them
    rec = SASRec(dim=16, maxlen=15, dropout=0.2, loss=loss, learning_rate=5e-3, epochs=4, patience=4, batch_size=32,
                 validation_protocol="full", style=style, bucket_by_length=False).fit(syn, verbose=0)
    assert len(rec.history["loss"]) == len(rec.history["val_NDCG@10"]) == 4
    assert rec.history["loss"][-1] < rec.history["loss"][0]
    assert evaluate(rec, syn)["NDCG@10"] > evaluate(Popularity().fit(syn), syn)["NDCG@10"]
    history = list(syn.index.decode([3, 17, 5]))
    again = SASRec.load(rec.save(tmp_path / "model"))
    assert again.style == style and again.net.style == style
    assert list(again.recommend(history, k=5)) == list(rec.recommend(history, k=5))
    np.testing.assert_allclose(again.score([[3, 17, 5]])[:, 1:], rec.score([[3, 17, 5]])[:, 1:], atol=1e-5)
    maps = again.attention_maps(history)
    assert len(maps) == 2 and maps[-1].shape == (1, 3, 3)
    np.testing.assert_allclose(maps[-1].sum(-1), 1, atol=1e-5)
    assert (np.triu(maps[-1][0], 1) == 0).all()


@pytest.mark.one_backend         # batch shapes and a saved setting: plumbing; CI runs it on TensorFlow only
@pytest.mark.parametrize("bucket", [True, False])
def test_sasrec_batches_as_asked(syn, bucket, tmp_path):
    """`bucket_by_length=False` trains on batches padded to maxlen (the reference code's), the default on cut ones."""
    widths = []

    class Recording(SASRec):
        def batches(self, split, bucket_by_length=True):
            b = super().batches(split, bucket_by_length)
            widths.extend(np.shape(b[i][1])[1] for i in range(len(b)))
            shapes.update(np.shape(b[i][1]) for i in range(len(b)))
            return b

    shapes = set()
    rec = Recording(dim=8, maxlen=15, epochs=1, batch_size=32, bucket_by_length=bucket,
                    validation_protocol="full").fit(syn, verbose=0)          # 40 items: too few for 100 sampled negatives
    if bucket: assert min(widths) < 15
    else: assert set(widths) == {15} and shapes == {(32, 15)}        # one shape: XLA compiles once
    assert Recording.load(rec.save(tmp_path / "m")).bucket_by_length == bucket      # a saved setting


def test_fully_masked_rows_stay_finite_in_float16():
    """Under mixed precision a padded query has every key masked: the fill must stay finite in float16."""
    from seqrec_nb.transformer import attention_weights
    q = ops.convert_to_tensor(np.ones((1, 2, 4)), dtype="float16")
    mask = np.array([[False, False], [True, False]])
    w = np_(attention_weights(q, q, mask)).astype("float32")
    assert np.isfinite(w).all() and w[0, 1, 0] == 1.0


@pytest.mark.parametrize("jit", [False] + ([True] if keras.backend.backend() != "torch" else []))
def test_compile_tells_every_dropout_layer_about_xla_and_training_still_drops(jit):
    """SASRecNet's nine dropout layers (input, and per block the attention weights and three sub-layer outputs) learn
    from `mark_xla_dropout` (which `SASRec` calls after compiling) whether XLA compiles them; on TensorFlow under
    XLA they draw with ThreeFry, at the same rate."""
    from seqrec_nb.layers import Dropout, mark_xla_dropout
    net = SASRecNet(30, dim=8, maxlen=12, n_blocks=2, n_heads=1, dropout=0.4); net.build()
    drops = [layer for layer in net._flatten_layers() if isinstance(layer, Dropout)]
    assert len(drops) == 9 and not any(d.xla for d in drops)
    seed_everything(0, deterministic=not jit)
    net.compile(keras.optimizers.Adam(1e-3), jit_compile=jit)
    assert all(d.xla is jit for d in mark_xla_dropout(net)._flatten_layers() if isinstance(d, Dropout))
    built = SASRec(dim=8, maxlen=12, dropout=0.4, jit_compile=jit).build_net(30)           # as `fit` builds it
    assert sum(isinstance(d, Dropout) and d.xla is jit for d in built._flatten_layers()) == 9
    x = np.ones((100, 40, 40), "float32")
    if jit and keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        out = np_(tf.function(lambda v: drops[0](v, training=True), jit_compile=True)(x))
    else:
        out = np_(drops[0](x, training=True))
    kept = out != 0
    assert abs(kept.mean() - 0.6) < 0.005 and np.allclose(out[kept], 1 / 0.6)
