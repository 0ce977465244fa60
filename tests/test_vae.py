"""seqrec_nb.vae as a user meets it: the losses against their formulas, annealing during training, the
recommenders end to end with saving, and the strong-generalisation protocol.

Backend-neutral: CI runs this file on TensorFlow, JAX and PyTorch.
"""
import numpy as np
import pandas as pd
import pytest
from keras import ops

from seqrec_nb.data import BagBatches, bag_of_items, leave_one_out, synthetic_log
from seqrec_nb.evaluate import Popularity, evaluate
from seqrec_nb.train import seed_everything
from seqrec_nb.variational import gaussian_kl
from seqrec_nb.heldout import HeldOutValidation, evaluate_heldout, heldout_metrics, strong_generalization_split
from seqrec_nb.vae import MultVAE, MultVAENet, SeqVAE, SeqVAENet


def np_(x): return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def log(): return synthetic_log(n_users=400, n_items=40, seed=3)[0]


def test_gaussian_kl_matches_the_one_dimensional_formula():
    r = np.random.default_rng(0)
    mq, lq, mp, lp = (r.normal(size=(3, 4)).astype("float32") for _ in range(4))
    one_d = np.log(np.exp(lp / 2) / np.exp(lq / 2)) + (np.exp(lq) + (mq - mp) ** 2) / (2 * np.exp(lp)) - 0.5
    np.testing.assert_allclose(np_(gaussian_kl(mq, lq, mp, lp)), one_d.sum(-1), rtol=1e-5)
    np.testing.assert_allclose(np_(gaussian_kl(mq, lq)), (0.5 * (np.exp(lq) + mq**2 - 1 - lq)).sum(-1), rtol=1e-5)


def test_multvae_trains_anneals_and_round_trips(log, tmp_path):
    split = leave_one_out(log)
    seed_everything(0)
    rec = MultVAE(hidden=32, latent=8, batch_size=100, epochs=4, patience=4, beta_max=0.3, anneal_steps=100).fit(split, verbose=0)
    steps_per_epoch = len(rec.batches(split))
    best_epoch = int(np.argmax(rec.history["val_NDCG@10"])) + 1
    # one count per update on every backend; early stopping restores it with the best epoch's weights
    assert float(np_(rec.net.steps)) == best_epoch * steps_per_epoch
    assert steps_per_epoch == 4          # so beta after each epoch is 0.04, 0.08, 0.12, 0.16: below the cap, rising
    np.testing.assert_allclose(rec.history["beta"], [0.04, 0.08, 0.12, 0.16], rtol=1e-6)
    assert evaluate(rec, split)["NDCG@10"] > 0
    again = MultVAE.load(rec.save(tmp_path / "vae"))
    np.testing.assert_allclose(again.score(split.histories()[:30])[:, 1:], rec.score(split.histories()[:30])[:, 1:], atol=1e-5)
    assert again.embed(split.histories()[:5]).shape == (5, 8)
    with pytest.raises(ValueError, match="holds a saved MultVAE, not a SeqVAE"): SeqVAE.load(tmp_path / "vae")


def test_multvae_loss_is_the_negative_beta_elbo():
    net = MultVAENet(n_items=5, hidden=6, latent=2, beta_max=1.0, anneal_steps=4); net.build()
    x = bag_of_items([[1, 2], [3, 4, 5]], 5)
    mu, lv = (np_(a) for a in net.encode(ops.convert_to_tensor(x)))
    logits = np_(net.decode(ops.convert_to_tensor(mu)))
    net.steps.assign(3.0)
    y_pred = np.concatenate([logits, mu, lv], 1)
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    kl = 0.5 * (np.exp(lv) + mu**2 - 1 - lv).sum(1)
    expected = -(x * log_softmax).sum(1).mean() + 0.75 * kl.mean()
    np.testing.assert_allclose(float(np_(net.compute_loss(x, None, ops.convert_to_tensor(y_pred)))), expected, rtol=1e-4)
    dae = MultVAENet(n_items=5, hidden=6, latent=2, variational=False); dae.build()
    assert float(dae.beta()) == 0.0


def test_seqvae_trains_is_causal_and_round_trips(log, tmp_path):
    split = leave_one_out(log)
    seed_everything(0)
    rec = SeqVAE(dim=16, latent=8, maxlen=10, epochs=2, patience=2, horizon=2).fit(split, verbose=0)
    assert np.isfinite(rec.history["loss"]).all() and len(rec.history["val_NDCG@10"]) == 2
    best_epoch = int(np.argmax(rec.history["val_NDCG@10"])) + 1
    assert float(np_(rec.net.steps)) == best_epoch * len(rec.batches(split))
    hist = np.array([[0, 3, 8, 1, 5]]); changed = hist.copy(); changed[0, -1] = 9
    np.testing.assert_allclose(np_(rec.net(changed))[:, :-1], np_(rec.net(hist))[:, :-1], atol=1e-6)
    again = SeqVAE.load(rec.save(tmp_path / "seq"))
    np.testing.assert_allclose(again.score(split.histories()[:30])[:, 1:], rec.score(split.histories()[:30])[:, 1:], atol=1e-5)
    with pytest.raises(ValueError, match="horizon=0"): SeqVAENet(10, horizon=0)


def test_strong_generalization_protocol(log):
    sg = strong_generalization_split(log, n_heldout=30, seed=1)
    held = set(sg.valid_users) | set(sg.test_users)
    assert len(held) == 60 and not held & set(sg.train.train.user_id)
    rec = MultVAE(hidden=32, latent=8, batch_size=100, epochs=3, patience=3)
    rec.fit(sg.train, validation=HeldOutValidation(rec, sg), verbose=0)
    assert len(rec.history["val_NDCG@100"]) == 3
    res = evaluate_heldout(rec, sg, k=(5, 20))
    assert res["users"] == len(sg.test_users) and 0 <= res["NDCG@5"] <= 1
    pop = evaluate_heldout(Popularity().fit(sg.train), sg, k=(5, 20))
    assert set(pop) == set(res)
    with pytest.raises(ValueError, match="order='shuffled'"): strong_generalization_split(log, 10, order="shuffled")
    with pytest.raises(ValueError, match="metric='HR@10'"): HeldOutValidation(rec, sg, metric="HR@10")


def test_unseen_items_leave_the_protocol(log):
    """An item only a held-out user has is neither in the user's lists nor ranked."""
    sg0 = strong_generalization_split(log, n_heldout=30, seed=1)
    u = sg0.test_users[0]
    extra = log[log.user_id == u].head(1).assign(item_id=10_000)
    sg = strong_generalization_split(pd.concat([log, extra]), n_heldout=30, seed=1)
    lonely = sg.train.index.encode([10_000])[0]
    assert not sg.known[lonely] and list(sg.test_users) == list(sg0.test_users)
    assert all(lonely not in set(f) | set(h) for f, h in zip(*sg.users("test")))


def test_heldout_metrics_perfect_and_worst_rankings():
    scores = np.array([[0, 1, 5, 4, 3, 2.0]])              # ranking 2, 3, 4, 5, 1
    best = heldout_metrics(scores, [[]], [[2, 3]], k=(2, 5))
    assert best["NDCG@2"] == pytest.approx(1.0) and best["Recall@2"] == pytest.approx(1.0)
    worst = heldout_metrics(scores, [[2]], [[1]], k=(3,))   # item 1 ranks last among the remaining four
    assert worst["Recall@3"] == 0.0 and worst["NDCG@3"] == 0.0
    with pytest.raises(ValueError, match="n_users"): heldout_metrics(scores, [[], []], [[1]])
    tied = heldout_metrics(np.array([[0, 2.0, 2.0, 2.0]]), [[]], [[3]], k=(1, 3))    # ties count against the target
    assert tied["Recall@1"] == 0.0 and tied["NDCG@3"] == pytest.approx(0.5)          # ranked third: 1 / log2(4)
    with pytest.raises(ValueError, match="NaN"): heldout_metrics(np.array([[0, np.nan, 1.0]]), [[]], [[1]])
    with pytest.raises(ValueError, match="k=0"): heldout_metrics(scores, [[]], [[1]], k=0)


def test_bag_batches_cover_every_user_once():
    seqs = [[1, 2], [3], [2, 4, 4], [1]]
    bb = BagBatches(seqs, n_items=4, batch_size=3, seed=0)
    rows = np.concatenate([bb[i][0] for i in range(len(bb))])
    assert rows.shape == (4, 5) and rows.sum() == 6                # binary: the repeated 4 counts once
    with pytest.raises(ValueError, match="batch_size=0"): BagBatches(seqs, 4, batch_size=0)
