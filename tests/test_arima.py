"""seqrec_nb.arma and seqrec_nb.arima as a user imports them: AR fits on simulated series, demand tables, per-item forecasts in worker processes, the recommender."""
import numpy as np
import pandas as pd
import pytest

from seqrec_nb.arima import ARIMAPopularity, backtest, forecast_items, mase, seasonal_naive_forecast, smape
from seqrec_nb.arma import demand, fit_ar_ls, simulate_arma, yule_walker
from seqrec_nb.data import synthetic_log, temporal_split
from seqrec_nb.evaluate import evaluate

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only


def weekly_demand(n_days=140, n_hot=3, seed=0):
    rng = np.random.default_rng(seed)
    week = np.tile([5, 6, 7, 8, 9, 0, 4], n_days // 7 + 1)[:n_days].astype(float)
    cols = {f"hot{i}": rng.poisson(week * (i + 1)) for i in range(n_hot)} | {"tail": rng.poisson(0.2, n_days)}
    return pd.DataFrame(cols, index=pd.date_range("2024-01-01", periods=n_days, freq="D")).astype(float)


def test_estimators_recover_an_ar2():
    y = simulate_arma(phi=[0.5, -0.2], n=4000, seed=3)
    np.testing.assert_allclose(fit_ar_ls(y, 2)[1], [0.5, -0.2], atol=0.05)
    np.testing.assert_allclose(yule_walker(y, 2)[0], [0.5, -0.2], atol=0.05)
    with pytest.raises(ValueError, match="not stationary"): simulate_arma(phi=[1.0])


def test_forecast_items_in_worker_processes():
    "The parallel path pickles fit_item into fresh processes: it must work from the installed module, on every worker."
    t = weekly_demand(n_hot=8)
    forecast_items(t, 14, top_n=8, n_jobs=2, progress=False)                      # starts the worker pool
    par = forecast_items(t, 14, top_n=8, n_jobs=2, progress=False)
    ser = forecast_items(t, 14, top_n=8, n_jobs=1, progress=False)
    np.testing.assert_allclose(par.forecast.to_numpy(), ser.forecast.to_numpy(), atol=1e-8)
    assert par.report.model.tolist() == ["SARIMA"] * 8 + ["seasonal_naive"]
    assert (par.forecast.to_numpy() <= t.max().to_numpy() + 1e-9).all()          # never above the item's best day
    assert (par.processes, ser.processes) == (2, 1)                               # two worker processes did the fits


@pytest.mark.parametrize("kw, msg", [({"horizon": 0}, "horizon"), ({"horizon": 7, "fallback": "zero"}, "fallback"),
                                     ({"horizon": 7, "top_n": -1}, "top_n")])
def test_forecast_items_rejects_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg): forecast_items(weekly_demand(), progress=False, **kw)


def test_forecast_items_rejects_short_or_incomplete_tables():
    with pytest.raises(ValueError, match="too short"): forecast_items(weekly_demand(n_days=14), 7, progress=False)
    with pytest.raises(ValueError, match=r"missing values for items \['tail'\]"):
        forecast_items(weekly_demand().assign(tail=np.nan), 7, progress=False)
    with pytest.raises(ValueError, match="holdout=0"): backtest(weekly_demand(), 0, progress=False)
    with pytest.raises(ValueError, match="m=7"): mase([1], [1], [1, 2, 3], m=7)


def test_demand_errors_name_the_column():
    log = pd.DataFrame({"item_id": ["a"], "timestamp": pd.to_datetime(["2024-01-01"])})
    with pytest.raises(ValueError, match="'quantity'"): demand(log)
    with pytest.raises(ValueError, match="item_col"): demand(log, value="rows", item_col="sku")
    assert demand(log, value="rows")["a"].tolist() == [1.0]


def test_metrics_and_backtest():
    assert smape([0, 0], [0, 0]) == 0.0 and mase([1, 2], [1, 2], [0, 1, 2, 3], m=1) == 0.0
    t = weekly_demand()
    bt, fc = backtest(t, 14, top_n=3, n_jobs=1, progress=False)
    assert set(bt.method) == {"SARIMA", "naive", "seasonal naive", "mean (28 days)"} and len(bt) == 12
    med = bt.groupby("method").MASE.median()
    assert med["SARIMA"] < med["naive"]                    # the weekly pattern is learnt
    np.testing.assert_array_equal(seasonal_naive_forecast([1, 2, 3], 4, m=3), [1, 2, 3, 1])


def test_arima_popularity_follows_the_model_protocol():
    log, _ = synthetic_log(n_users=150, n_items=30, seed=2)
    split = temporal_split(log, log.timestamp.quantile(0.8))
    model = ARIMAPopularity(horizon=7, top_n=5, n_jobs=1, progress=False).fit(split)
    s = model.score(split.histories("test")[:4])
    assert s.shape == (4, split.n_items + 1) and np.isneginf(s[:, 0]).all()
    np.testing.assert_array_equal(s[0], s[3])                                     # one list for everyone
    assert model.forecasts.report.model.eq("SARIMA").sum() == 5
    res = evaluate(model, split, "full", k=10, progress=False)
    assert 0 <= res["NDCG@10"] <= 1 and res["users"] == len(split.test)
