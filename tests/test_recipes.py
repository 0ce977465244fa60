"""Every model's recipe, as the benchmark uses it: fit, choose what to do with seen items, score, recommend, save and
load, on a small synthetic log; the benchmark's model list comes from the registered recipes and nothing else."""
import numpy as np
import pytest

from seqrec_nb.benchmark import load_recommender, model_recipes, run_benchmark, save_recommender
from seqrec_nb.data import leave_one_out, synthetic_log
from seqrec_nb.evaluate import RECIPES, Recipe, evaluate, register, seen_label
from seqrec_nb.layers import FMCRec
from seqrec_nb.train import seed_everything

FAST = {"arima": {"top_n": 2, "n_jobs": 1, "progress": False}}     # two SARIMA fits instead of twenty


@pytest.fixture(scope="module")
def split():
    log, _ = synthetic_log(n_users=80, n_items=30, seed=7)
    return leave_one_out(log)


# a model that does not train in epochs runs no Keras model (the baselines, ARIMA): one backend is enough
@pytest.mark.parametrize("key", [r.key if r.trains_in_epochs else pytest.param(r.key, marks=pytest.mark.backend_free)
                                 for r in model_recipes()])
def test_every_recipe_fits_scores_recommends_saves_and_loads(key, split, tmp_path):
    seed_everything(0)
    recipe = RECIPES[key]
    model = recipe.build(split, "quick", max_epochs=1, **FAST.get(key, {}))
    model = model.fit(split, verbose=0) if recipe.trains_in_epochs else model.fit(split)
    model.choose_seen(split)
    rules = model.seen_rules()
    assert (model.recent_window, model.recent_offset, model.seen_offset) in rules
    assert list(model.seen_choice) == [seen_label(*r) for r in rules]
    assert model.seen_choice[model.seen_rule] == max(model.seen_choice.values())
    # the choice's own number is what the evaluator gives the model as it now scores
    assert evaluate(model, split, "full", on="valid")["NDCG@10"] == pytest.approx(model.seen_choice[model.seen_rule], abs=1e-9)
    histories = split.histories("test")[:7]
    scores = model.score(histories)
    assert scores.shape == (7, split.n_items + 1) and np.isneginf(scores[:, 0]).all()
    raw = split.index.decode(histories[0])
    recs = model.recommend(raw, k=5)
    assert len(recs) == 5 and len(set(recs)) == 5 and set(recs) <= set(split.index.raw)
    chosen = model.recent_window, model.recent_offset, model.seen_offset
    model.drop_seen = True                      # the saved choice is the one that comes back, whichever it is
    assert not set(model.recommend(raw, k=5)) & set(raw)
    back, _ = load_recommender(save_recommender(model, tmp_path / key))
    assert type(back) is type(model) and back.drop_seen is True
    if model.score_scale is not None:           # finite offsets and a recent window are saved too
        model.recent_window, model.recent_offset, model.seen_offset = 3, -np.inf, -1.0
        back, _ = load_recommender(save_recommender(model, tmp_path / f"{key}-offset"))
        assert (back.recent_window, back.recent_offset, back.seen_offset) == (3, -np.inf, -1.0)
    model.recent_window, model.recent_offset, model.seen_offset = chosen
    back.recent_window, back.recent_offset, back.seen_offset = chosen
    again = back.score(histories)
    finite = np.isfinite(scores)
    np.testing.assert_array_equal(np.isfinite(again), finite)
    np.testing.assert_allclose(again[finite], scores[finite], rtol=1e-4, atol=1e-5)
    assert abs(evaluate(back, split, "unseen")["NDCG@10"] - evaluate(model, split, "unseen")["NDCG@10"]) < 1e-6


def test_the_benchmark_runs_whatever_is_registered(split, capsys):
    "A model added by one recipe in its own module joins the default list (for any log) and the leaderboard; nothing else names it."
    recipe = register(Recipe("fmc", "FMCRec", FMCRec, settings={"dim": 8, "maxlen": 10, "n_negatives": 5},
                             quick={"epochs": 1}, order=45))
    try:
        log, _ = synthetic_log(n_users=60, n_items=20, seed=2)
        assert "fmc" in [r.key for r in model_recipes(log=log)]
        board = run_benchmark("tiny", models=["pop", "fmc"], log=log, serving=False, progress=False)
        assert list(board.table.index) == ["Popularity", "FMCRec"]
        assert board.meta["settings"]["FMCRec"]["dim"] == 8 and board.table.loc["FMCRec", "epochs"] == 1
        assert set(board.table.columns) >= {"full NDCG@10", "unseen NDCG@10", "pop overlap@10", "seen offset"}
        # 20 items cannot give each user 100 distinct negatives: the sampled protocol is left out, and said so
        assert board.meta["protocols"] == ["full", "unseen"] and "sampled NDCG@10" not in board.table
        assert "sampled protocol left out" in capsys.readouterr().err
    finally:
        del RECIPES[recipe.key]
    assert "fmc" not in [r.key for r in model_recipes()]

