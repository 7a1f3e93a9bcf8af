"""A sparse linear cost model (the Lasso) for the first few dozen measurements.

With 20-60 measurements gradient-boosted trees overfit; a linear model of log throughput on
standardised features, with an L1 penalty choosing the few features that matter, ranks
better and says *which* knobs matter:

    min_w  1/(2n) ||log y - b - X_std w||² + alpha ||w||_1

``alpha`` is chosen by k-fold cross-validation (``LassoCV``) unless given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .cost_model import CostModel

__all__ = ["LassoCostModel", "StagedCostModel"]


class LassoCostModel(CostModel):
    """``CostModel`` predicting log throughput with an L1-penalised linear model.

    Failed configs (y = 0) get the target ``log(min successful y) - log(2)``: below every
    success, without an infinite log. ``predict`` returns predicted log throughput (higher is
    better). ``coef_`` holds coefficients in standardised units (effect of one standard
    deviation of the feature on log throughput).
    """

    def __init__(self, alpha: float | None = None, cv: int = 5, max_iter: int = 20000,
                 seed: int = 0):
        self.alpha = alpha
        self.cv, self.max_iter, self.seed = cv, max_iter, seed
        self.fitted = False
        self.alpha_: float | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import Lasso, LassoCV  # ~1 s to import: only when fitting

        X, y = self._check(X, y)
        self._mean = X.mean(0) if len(X) else np.zeros(X.shape[1])
        std = X.std(0) if len(X) else np.ones(X.shape[1])
        self._std = np.where(std > 1e-12, std, 1.0)
        ok = y > 0
        if not ok.any():
            self.fitted = False
            self.coef_, self.intercept_ = np.zeros(X.shape[1]), 0.0
            return
        target = np.where(ok, np.log(np.where(ok, y, 1.0)), np.log(y[ok].min()) - np.log(2.0))
        xs = (X - self._mean) / self._std
        n_folds = min(self.cv, len(y))
        if self.alpha is None and n_folds >= 3 and np.ptp(target) > 0:
            model = LassoCV(cv=n_folds, max_iter=self.max_iter, random_state=self.seed)
        else:
            alpha = self.alpha if self.alpha is not None else 0.01 * max(np.std(target), 1e-3)
            model = Lasso(alpha=alpha, max_iter=self.max_iter, random_state=self.seed)
        model.fit(xs, target)
        self.alpha_ = float(model.alpha_ if isinstance(model, LassoCV) else model.alpha)
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = float(model.intercept_)
        self.fitted = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        X, _ = self._check(X)
        if self.coef_ is None:
            return np.zeros(len(X))
        return self.intercept_ + ((X - self._mean) / self._std) @ self.coef_

    def coef_report(self, feature_names: Sequence[str] | None = None,
                    tol: float = 1e-10) -> list[tuple[str, float]]:
        """Non-zero coefficients as ``(name, coef)``, largest ``|coef|`` first."""
        if self.coef_ is None:
            return []
        names = (list(feature_names) if feature_names is not None
                 else [f"f{i}" for i in range(len(self.coef_))])
        if len(names) != len(self.coef_):
            raise ValueError(f"{len(names)} feature names for {len(self.coef_)} coefficients")
        nz = [(names[i], float(c)) for i, c in enumerate(self.coef_) if abs(c) > tol]
        return sorted(nz, key=lambda t: -abs(t[1]))


class StagedCostModel(CostModel):
    """The Lasso while there are fewer than ``switch_at`` measurements, then ``later``
    (by default XGBoost with the rank loss): a sparse linear model where trees overfit,
    trees once there is enough data. Both predict "higher is better", which is all a
    tuner's plan needs."""

    def __init__(self, later: CostModel | None = None, switch_at: int = 48, seed: int = 0,
                 lasso: LassoCostModel | None = None):
        from .cost_model import make_cost_model

        self.lasso = lasso or LassoCostModel(seed=seed)
        self.later = later if later is not None else make_cost_model("xgb", seed=seed)
        self.switch_at = int(switch_at)
        self.active: CostModel = self.lasso
        self.fitted = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self._check(X, y)
        self.active = self.lasso if len(y) < self.switch_at else self.later
        self.active.fit(X, y)
        self.fitted = bool(getattr(self.active, "fitted", True))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.active.predict(X)
