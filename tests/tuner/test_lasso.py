"""LassoCostModel: sparse support recovery, ranking, failures and the coefficient report."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from tiletune.tuner.models.cost_model import CostModel
from tiletune.tuner.models.lasso import LassoCostModel


def _sparse_problem(n=60, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5, d)  # unequal column scales
    w = np.zeros(d)
    w[[2, 7, 11]] = [0.8, -0.5, 0.3]
    log_y = 1.0 + (X / X.std(0)) @ w + rng.normal(0, 0.02, n)
    return X, np.exp(log_y), w


def test_is_a_cost_model():
    assert isinstance(LassoCostModel(), CostModel)


def test_recovers_sparse_support_and_ranks():
    X_all, y_all, _ = _sparse_problem(n=360)
    X, y = X_all[:60], y_all[:60]
    model = LassoCostModel()
    model.fit(X, y)
    assert model.fitted
    support = {i for i, c in enumerate(model.coef_) if abs(c) > 0.02}
    assert support == {2, 7, 11}
    assert np.sign(model.coef_[[2, 7, 11]]).tolist() == [1, -1, 1]
    assert spearmanr(model.predict(X_all[60:]), y_all[60:])[0] > 0.95


def test_coef_report_lists_nonzero_by_magnitude():
    X, y, _ = _sparse_problem()
    model = LassoCostModel(alpha=0.05)
    model.fit(X, y)
    names = [f"knob{i}" for i in range(X.shape[1])]
    report = model.coef_report(names)
    assert [n for n, _ in report[:3]] == ["knob2", "knob7", "knob11"]
    assert all(c != 0 for _, c in report)
    assert [abs(c) for _, c in report] == sorted((abs(c) for _, c in report), reverse=True)
    with pytest.raises(ValueError):
        model.coef_report(names[:3])


def test_failures_and_degenerate_inputs():
    X, y, _ = _sparse_problem(n=30)
    y[:5] = 0.0                                   # failed configs
    model = LassoCostModel()
    model.fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    empty = LassoCostModel()
    empty.fit(X[:4], np.zeros(4))                  # nothing succeeded yet
    assert not empty.fitted and empty.coef_report() == []
    assert np.all(empty.predict(X) == 0)
    tiny = LassoCostModel()
    tiny.fit(X[:2], y[5:7])                         # too few rows for CV: fixed alpha
    assert tiny.fitted and np.isfinite(tiny.predict(X)).all()


def test_staged_model_switches_from_lasso_to_later_model():
    from tiletune.tuner.models.lasso import StagedCostModel
    from tiletune.tuner.models.numpy_model import NumpyCostModel

    X, y, _ = _sparse_problem(n=80)
    m = StagedCostModel(later=NumpyCostModel(), switch_at=50)
    assert isinstance(m, CostModel) and not m.fitted
    m.fit(X[:40], y[:40])
    assert m.active is m.lasso and m.fitted
    assert spearmanr(m.predict(X[40:]), y[40:])[0] > 0.8
    m.fit(X, y)
    assert m.active is m.later and m.fitted
    assert m.predict(X).shape == (80,)


def test_xgb_lasso_is_registered():
    from tiletune.tuner.session import TUNERS

    assert "xgb-lasso" in TUNERS
