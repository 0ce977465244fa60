"The evaluator and the baselines as a user calls them: bad input, determinism, and the protocol's rules."
import json

import numpy as np
import pytest

from seqrec_nb.data import leave_one_out, synthetic_log
from seqrec_nb.evaluate import (EASE, MarkovChain, Popularity, Recommender, evaluate, metrics_at_k, ranks_against,
                                ease_weights, sample_negatives)

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic_log(n_users=150, n_items=40, seed=2)[0])


class Constant(Recommender):
    "Scores every item the same: must get no credit under 'ties against the target'."
    def fit(self, split): self.index = split.index; return self
    def _score(self, histories): return np.zeros((len(histories), self.n_items + 1))


class WrongShape(Constant):
    def _score(self, histories): return np.zeros((len(histories), 3))


class Oracle(Constant):
    "Knows the answer: the target scores highest."
    def __init__(self, targets): self.targets, self.i = targets, 0
    def _score(self, histories):
        s = np.zeros((len(histories), self.n_items + 1))
        s[np.arange(len(histories)), self.targets[self.i:self.i + len(histories)]] = 1
        self.i += len(histories)
        return s


def test_bad_arguments(split):
    m = Popularity().fit(split)
    with pytest.raises(ValueError, match="protocol='ranked'"): evaluate(m, split, protocol="ranked")
    with pytest.raises(ValueError, match="exclude_seen applies to protocol='full'"): evaluate(m, split, "sampled", exclude_seen=True)
    with pytest.raises(ValueError, match="on='train'"): evaluate(m, split, on="train")
    with pytest.raises(ValueError, match="k=0"): evaluate(m, split, k=0)
    with pytest.raises(ValueError, match="n_negatives=0"): evaluate(m, split, "sampled", n_negatives=0)
    with pytest.raises(ValueError, match="alpha=0"): MarkovChain(alpha=0)


def test_model_contract_is_checked(split):
    with pytest.raises(ValueError, match=r"WrongShape.score returned shape \(.*, 3\), expected"):
        evaluate(WrongShape().fit(split), split)
    with pytest.raises(RuntimeError, match="Popularity is not fitted"): Popularity().recommend(["a"])


def test_ties_count_against_the_target(split):
    assert evaluate(Constant().fit(split), split)["HR@10"] == 0
    assert evaluate(Constant().fit(split), split, "sampled", n_negatives=10)["HR@10"] == 0


def test_perfect_model_scores_one(split):
    for protocol in ("full", "sampled"):
        res = evaluate(Oracle(split.test.item.to_numpy()).fit(split), split, protocol, batch_size=32, n_negatives=10)
        assert res["HR@10"] == res["NDCG@10"] == res["MRR@10"] == 1.0


def test_seeded_and_batch_size_invariant(split):
    m = MarkovChain().fit(split)
    a = evaluate(m, split, "sampled", seed=3, batch_size=7, n_negatives=10)
    assert a == evaluate(m, split, "sampled", seed=3, batch_size=1000, n_negatives=10)
    assert a != evaluate(m, split, "sampled", seed=4, n_negatives=10)
    assert np.array_equal(sample_negatives(split, n=10, seed=1), sample_negatives(split, n=10, seed=1))


def test_exclude_seen_makes_repeat_targets_misses(split):
    class Repeat(Constant):
        "Scores the items of the history: a model that only ever recommends repeats."
        def _score(self, histories):
            s = np.zeros((len(histories), self.n_items + 1))
            for r, h in enumerate(histories): s[r, h] = 1 + np.arange(len(h))
            return s
    m = Repeat().fit(split)
    seen = evaluate(m, split, k=[1, 5, 20], return_ranks=True)
    unseen = evaluate(m, split, k=[1, 5, 20], exclude_seen=True, return_ranks=True)
    repeat = np.array([t in set(h) for t, h in zip(split.test.item, split.histories("test"))])
    assert repeat.any() and (~repeat).any()
    assert (unseen["ranks"][repeat] >= split.n_items - 1).all()          # a repeat target is a miss
    assert seen["HR@1"] > 0 and unseen["HR@1"] == 0                      # top-1 of a repeats-only model: gone
    assert set(seen) >= {"HR@1", "NDCG@5", "MRR@20", "Recall@20", "users"}


def test_metrics_match_brute_force_sorting():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 5, (200, 30)).astype(float)    # heavy ties
    target = rng.integers(0, 30, 200)
    ranks = ranks_against(scores[np.arange(200), target], np.where(np.eye(30)[target] == 1, -np.inf, scores))
    brute = []
    for row, t in zip(scores, target):
        order = sorted(range(30), key=lambda j: (-row[j], j == t))   # target after its ties
        brute.append(order.index(t))
    assert ranks.tolist() == brute
    m = metrics_at_k(ranks, 10)
    assert m["NDCG@10"] == pytest.approx(np.mean([1 / np.log2(r + 2) if r < 10 else 0 for r in brute]))


def test_ease_closed_form_is_the_constrained_least_squares_optimum():
    "Perturbing the closed form's off-diagonal weights can only raise the EASE objective."
    rng = np.random.default_rng(4)
    x = (rng.random((80, 12)) < 0.3).astype("float64")
    lam = 5.0
    b = ease_weights(x.T @ x, lam)
    loss = lambda w: ((x - x @ w) ** 2).sum() + lam * (w ** 2).sum()
    off = ~np.eye(12, dtype=bool)
    for _ in range(20):
        d = rng.normal(scale=1e-3, size=(12, 12)) * off
        assert loss(b + d) > loss(b)
    assert np.allclose(np.diag(b), 0)


def test_ease_tunes_lambda_on_validation_and_beats_popularity(split):
    ease = EASE(grid=(1, 30, 1000)).fit(split)
    assert set(ease.validation) == {1, 30, 1000} and ease.chosen == max(ease.validation, key=ease.validation.get)
    assert evaluate(ease, split)["NDCG@10"] > evaluate(Popularity().fit(split), split)["NDCG@10"]
    fixed = EASE(lam=30).fit(split)
    assert fixed.chosen == 30 and fixed.validation == {}
    np.testing.assert_allclose(fixed.B, EASE(lam=30, dtype="float64").fit(split).B, atol=1e-4)
    with pytest.raises(ValueError, match="lam=0"): EASE(lam=0)
    with pytest.raises(ValueError, match="grid"): EASE(grid=(0, 1))
    with pytest.raises(ValueError, match="validation_protocol"): EASE(validation_protocol="oracle")


def test_a_folder_saved_before_recent_windows_loads_with_one_offset(split, tmp_path):
    "Format 1 (one offset for every seen item) still loads: no recent window, the same scores."
    mc = MarkovChain().fit(split)
    mc.seen_offset = 0.5
    folder = mc.save(tmp_path / "mc")
    meta = json.loads((folder / "recommender.json").read_text())
    meta["format"] = 1
    meta["attributes"] = {k: v for k, v in meta["attributes"].items() if k not in ("recent_window", "recent_offset")}
    (folder / "recommender.json").write_text(json.dumps(meta))
    back = MarkovChain.load(folder)
    assert (back.recent_window, back.seen_offset) == (0, 0.5)
    histories = split.histories("test")[:20]
    np.testing.assert_array_equal(back.score(histories), mc.score(histories))


def test_choose_seen_refuses_nan_scores(split):
    class Broken(MarkovChain):
        def _score(self, histories):
            s = super()._score(histories)
            s[:, 3] = np.nan
            return s
    with pytest.raises(ValueError, match="NaN"):
        Broken().fit(split).choose_seen(split)
