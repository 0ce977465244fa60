"""seqrec_nb.adversarial and seqrec_nb.gan as a user meets them: the one-step two-player update, the toy GAN learning, CFGAN's loss terms
against their formulas, the three CFGAN variants end to end with saving, and bad settings.

Backend-neutral (CI runs this file on TensorFlow, JAX and PyTorch), except the gradient-path check, which needs a
gradient tape and runs on TensorFlow only.
"""
import keras
import numpy as np
import pytest
from keras import ops

from seqrec_nb.data import bag_of_items, leave_one_out, synthetic_log
from seqrec_nb.evaluate import Popularity, evaluate
from seqrec_nb.adversarial import GAN, MLP, discriminator_loss, generator_loss
from seqrec_nb.gan import CFGAN, CFGANNet, FutureBagBatches
from seqrec_nb.train import load_model, save_model, seed_everything


def np_(x): return ops.convert_to_numpy(x)


def ring(n, seed=0):
    r = np.random.default_rng(seed)
    angle = r.integers(0, 8, n) * np.pi / 4
    return (2 * np.stack([np.cos(angle), np.sin(angle)], 1) + 0.05 * r.normal(size=(n, 2))).astype("float32")


def test_losses_match_their_formulas():
    a = np.array([-3.0, 0.0, 2.5], dtype="float32")
    sig = 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(np_(generator_loss(a, "minimax")), np.log(1 - sig), rtol=1e-5)
    np.testing.assert_allclose(np_(generator_loss(a, "nonsaturating")), -np.log(sig), rtol=1e-5)
    np.testing.assert_allclose(np_(discriminator_loss(a, a[::-1])), -np.log(sig) - np.log(1 - sig[::-1]), rtol=1e-5)
    with pytest.raises(ValueError, match="kind='hinge'"): generator_loss(a, "hinge")


def test_gan_moves_its_samples_onto_the_data():
    keras.utils.set_random_seed(0)
    gan = GAN(2, hidden=64, layers=2, seed=0); gan.build()
    gan.compile(keras.optimizers.Adam(1e-3, beta_1=0.5))
    off_ring = lambda: float(np.abs(np.linalg.norm(np_(gan.sample(1000)), axis=1) - 2).mean())
    before = off_ring()
    gan.fit(ring(4096), batch_size=128, epochs=12, verbose=0)
    assert off_ring() < 0.7 * before
    d = gan.diagnostics(ring(256, seed=1))
    assert set(d) == {"d_loss", "g_loss", "d_accuracy"} and 0 <= d["d_accuracy"] <= 1
    assert GAN.from_config(gan.get_config()).get_config() == gan.get_config()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="needs a gradient tape; the paths are backend-neutral ops")
def test_each_player_gets_only_its_own_gradient():
    import tensorflow as tf
    gan = GAN(2, hidden=8, seed=1); gan.build()
    D, G = gan.discriminator, gan.generator
    x = tf.constant(ring(32)); z = tf.constant(np.random.default_rng(2).normal(size=(32, 2)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        fake = G(z)
        combined = tf.reduce_mean(discriminator_loss(D(x), D(tf.stop_gradient(fake)))) + tf.reduce_mean(generator_loss(D(fake, frozen=True)))
        d_own, g_own = tf.reduce_mean(discriminator_loss(D(x), D(fake))), tf.reduce_mean(generator_loss(D(fake)))
    for weights, own in ((D.trainable_weights, d_own), (G.trainable_weights, g_own)):
        for got, want in zip(tape.gradient(combined, weights), tape.gradient(own, weights)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_frozen_mlp_is_the_same_function():
    mlp = MLP([5, 2], "tanh"); mlp.build((None, 3))
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(np_(mlp(x)), np_(mlp(x, frozen=True)), atol=1e-7)
    assert MLP.from_config(mlp.get_config()).units == [5, 2]
    with pytest.raises(ValueError, match="at least one layer"): MLP([])
    with pytest.raises(ValueError, match="lr_multiplier=0"): MLP([3], lr_multiplier=0)


def test_layers_start_from_different_weights():
    keras.utils.set_random_seed(0)
    mlp = MLP([6, 6, 6]); mlp.build((None, 6))
    k1, k2 = (np_(d.kernel) for d in mlp.dense[1:])
    assert not np.allclose(k1, k2)                       # each layer draws its own initial weights


def test_lr_multiplier_keeps_the_function_and_scales_the_weights_in_use():
    keras.utils.set_random_seed(0)
    slow = MLP([4, 2], lr_multiplier=0.25); slow.build((None, 3))
    used = [np_(w) * 0.25 for w in slow.trainable_weights]
    glorot_bound = np.sqrt(6 / (3 + 4))
    assert np.abs(used[0]).max() <= glorot_bound and np.abs(used[0]).max() > 0.5 * glorot_bound   # Glorot scale in use
    plain = MLP([4, 2]); plain.build((None, 3)); plain.set_weights(used)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(np_(slow(x)), np_(plain(x)), atol=1e-6)
    np.testing.assert_allclose(float(np_(slow.l2())), sum(0.5 * (u**2).sum() for u in used), rtol=1e-5)


def test_gan_and_cfgan_nets_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    gan = GAN(2, hidden=8, seed=0); gan.build()
    again = load_model(save_model(gan, tmp_path / "gan.keras"))
    z = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    np.testing.assert_allclose(np_(again.generator(z)), np_(gan.generator(z)), atol=1e-6)
    net = CFGANNet(7, hidden_g=4, hidden_d=3, condition="sequence", dim=4, d_lr_scale=0.3); net.build()
    again = load_model(save_model(net, tmp_path / "cfgan.keras"))
    x = {"history": np.array([[0, 1, 2], [3, 4, 5]], dtype="int32")}
    np.testing.assert_allclose(np_(again(x)), np_(net(x)), atol=1e-6)
    assert again.get_config() == net.get_config()


def test_cfgan_loss_terms_against_numpy():
    keras.utils.set_random_seed(0)
    net = CFGANNet(6, hidden_g=5, hidden_d=4, zr_weight=0.5); net.build()
    w = lambda layer: [(np_(d.kernel) * layer.lr_multiplier, np_(d.bias) * layer.lr_multiplier) for d in layer.dense]
    def mlp_np(params, x):
        (w1, b1), (w2, b2) = params
        return (1 / (1 + np.exp(-(x @ w1 + b1)))) @ w2 + b2
    real = bag_of_items([[1, 2], [3, 4, 6], [5]], 6)
    rng = np.random.default_rng(1)
    zr, pm = [((rng.random(real.shape) < 0.5) & (real == 0)).astype("float32") for _ in range(2)]
    zr[:, 0] = pm[:, 0] = 0
    r_hat = mlp_np(w(net.generator), real).astype("float32")
    np.testing.assert_allclose(np_(net(real)), r_hat, atol=1e-5)
    t = np_(net.loss_terms(real, real, r_hat, zr, pm))
    np.testing.assert_allclose(t[:, 0], mlp_np(w(net.discriminator), np.concatenate([real, real], 1))[:, 0], atol=1e-5)
    np.testing.assert_allclose(t[:, 1], mlp_np(w(net.discriminator), np.concatenate([r_hat * (real + pm), real], 1))[:, 0], atol=1e-5)
    np.testing.assert_allclose(t[:, 3], 0.5 * (zr * r_hat**2).sum(1), atol=1e-5)
    ae = CFGANNet(6, hidden_g=5, hidden_d=4, zr_weight=0.5, adversarial=False); ae.build()
    t = np_(ae.loss_terms(real, real, r_hat, zr, pm))
    np.testing.assert_allclose(t[:, 3], 0.5 * (zr * r_hat**2).sum(1) + ((real + pm) * (real - r_hat) ** 2).sum(1), atol=1e-5)
    np.testing.assert_allclose(t[:, :3], 0.0)


def test_training_masks_only_unpurchased_items():
    net = CFGANNet(50, hidden_g=3, zr_ratio=1.0, pm_ratio=0.0, zr_weight=1.0, adversarial=False, seed=0); net.build()
    last = net.generator.dense[-1]
    last.kernel.assign(np.zeros(last.kernel.shape, "float32")); last.bias.assign(np.ones(last.bias.shape, "float32"))
    penalty = np_(net(bag_of_items([[1, 2, 3], [4]], 50), training=True))[:, 3]
    np.testing.assert_allclose(penalty, [47.0, 49.0])      # every unpurchased item once, the padding entry never


@pytest.mark.parametrize("kw", [{}, {"adversarial": False}, {"condition": "sequence", "g_loss": "minimax", "maxlen": 8}])
def test_cfgan_end_to_end(kw, tmp_path):
    split = leave_one_out(synthetic_log(n_users=300, n_items=30, seed=4)[0])
    seed_everything(0)
    rec = CFGAN(hidden_g=32, hidden_d=16, dim=16, batch_size=32, epochs=3, patience=3, **kw).fit(split, verbose=0)
    assert len(rec.history["loss"]) == 3 and np.isfinite(rec.history["loss"]).all()
    assert {"own_items", "other_items"} <= set(rec.history)
    assert ("d_accuracy" in rec.history) == rec.adversarial
    scores = rec.score(split.histories()[:10])
    assert scores.shape == (10, split.n_items + 1) and np.isneginf(scores[:, 0]).all()
    assert 0 <= evaluate(rec, split, progress=False)["NDCG@10"] <= 1
    again = CFGAN.load(rec.save(tmp_path / "cfgan"))
    np.testing.assert_allclose(again.score(split.histories()[:10])[:, 1:], scores[:, 1:], atol=1e-5)
    recs = again.recommend(split.index.decode(split.histories()[0][-3:]).tolist(), k=5, exclude_seen=True)
    assert len(recs) == 5


def test_future_bag_batches_cut_before_the_targets():
    seqs = [[1, 2, 3, 4, 5, 6], [7], [8, 9, 10]]
    fb = FutureBagBatches(seqs, n_items=10, maxlen=2, horizon=3, batch_size=4, seed=0)
    assert len(fb) == 1
    for epoch in range(3):
        fb.set_epoch(epoch)
        (batch,) = fb[0]
        for hist, target in zip(batch["history"], batch["target"]):
            items = hist[hist > 0].tolist()
            seq = next(s for s in seqs if items[-1] in s)
            cut = seq.index(items[-1]) + 1
            assert items == seq[max(0, cut - 2):cut]
            assert np.flatnonzero(target).tolist() == seq[cut:cut + 3]
    with pytest.raises(ValueError, match="at least two items"): FutureBagBatches([[1], [2]], 3)
    with pytest.raises(ValueError, match="horizon=0"): FutureBagBatches(seqs, 10, horizon=0)


@pytest.mark.parametrize("kw,msg", [({"g_loss": "wgan"}, "g_loss='wgan'"), ({"condition": "graph"}, "condition='graph'"),
                                    ({"pm_ratio": 2}, "pm_ratio=2"), ({"zr_weight": -1}, "zr_weight=-1"),
                                    ({"horizon": 0}, "horizon=0"), ({"learning_rate": 0}, "learning_rate=0"),
                                    ({"hidden_g": 0}, "hidden_g=0"), ({"d_lr_scale": 0}, "d_lr_scale=0"),
                                    ({"reg_d": -1}, "reg_d=-1")])
def test_bad_settings_are_named(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")): CFGAN(**kw)


def test_unfitted_and_wrong_class():
    with pytest.raises(RuntimeError, match="not fitted"): CFGAN().recommend(["a"])
    with pytest.raises(FileNotFoundError): CFGAN.load("/nonexistent/cfgan")
