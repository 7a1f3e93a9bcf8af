"""Cost models rank a synthetic throughput function; the NumPy fallback works without xgboost."""

import sys

import numpy as np
import pytest
from scipy.stats import spearmanr

from tiletune.errors import TuningError
from tiletune.tuner import CostModel, NumpyCostModel, make_cost_model
from tiletune.tuner.models.xgb_model import XGBoostCostModel, average_recall


def synthetic(n, seed, d=8):
    """Throughput with a peak, an interaction, a plateau of failures (y = 0)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    y = np.exp(-3 * ((X - 0.6) ** 2).sum(1)) + 0.3 * np.sin(3 * X[:, 0]) * X[:, 1]
    y[X[:, 2] > 0.9] = 0.0
    return X, y


@pytest.mark.parametrize("make", [
    lambda: XGBoostCostModel("rank", seed=0),
    lambda: XGBoostCostModel("reg", seed=0),
    lambda: NumpyCostModel(seed=0),
], ids=["xgb-rank", "xgb-reg", "numpy"])
def test_model_ranks_unseen_configs(make):
    X, y = synthetic(300, 0)
    Xt, yt = synthetic(500, 1)
    model = make()
    assert isinstance(model, CostModel) and not model.fitted
    model.fit(X, y)
    assert model.fitted
    pred = model.predict(Xt)
    assert pred.shape == (500,)
    assert spearmanr(pred, yt)[0] > 0.8
    top = set(np.argsort(-yt)[:50])
    assert len(top & set(np.argsort(-pred)[:50])) >= 25


def test_models_are_deterministic():
    X, y = synthetic(200, 2)
    for make in (lambda: XGBoostCostModel(seed=4), lambda: NumpyCostModel(seed=4)):
        a, b = make(), make()
        a.fit(X, y)
        b.fit(X, y)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("model", [XGBoostCostModel(), NumpyCostModel()],
                         ids=["xgb", "numpy"])
def test_all_failures_leave_the_model_unfitted(model):
    model.fit(np.ones((5, 3)), np.zeros(5))
    assert not model.fitted
    assert model.predict(np.ones((2, 3))).tolist() == [0.0, 0.0]


def test_bad_shapes_raise():
    with pytest.raises(TuningError, match="2-D"):
        XGBoostCostModel().fit(np.ones(4), np.ones(4))
    with pytest.raises(TuningError, match="targets"):
        NumpyCostModel().fit(np.ones((4, 2)), np.ones(3))


def test_make_cost_model_picks_and_falls_back(monkeypatch):
    assert isinstance(make_cost_model("xgb"), XGBoostCostModel)
    assert make_cost_model("xgb-reg").objective == "reg"
    assert isinstance(make_cost_model("numpy", seed=1), NumpyCostModel)
    with pytest.raises(TuningError, match="unknown cost model"):
        make_cost_model("gp")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # "import xgboost" now fails
    with pytest.warns(UserWarning, match="NumPy cost model"):
        model = make_cost_model("xgb", seed=0, objective="rank", plan_size=32)
    assert isinstance(model, NumpyCostModel)


def test_average_recall():
    y = np.array([4.0, 3.0, 2.0, 1.0])
    assert average_recall(y, y, 4) == 1.0
    # predicted order 1, 0, 3, 2: recall@1 = 0, @2 = 1, @3 = 2/3, @4 = 1
    assert average_recall(np.array([3.0, 4.0, 1.0, 2.0]), y, 4) == pytest.approx(
        (0 + 1 + 2 / 3 + 1) / 4)


def test_nthread_from_environment(monkeypatch):
    monkeypatch.setenv("TILETUNE_NUM_THREADS", "3")
    assert XGBoostCostModel().params["nthread"] == 3
