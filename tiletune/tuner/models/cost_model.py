"""The cost-model interface and :func:`make_cost_model`.

A cost model learns ``features -> throughput`` from measured configs and scores unmeasured
ones. Only the *order* of the scores matters to the search: higher is better.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ...errors import TuningError


class CostModel(ABC):
    """Learns to rank configs from their feature vectors.

    ``fit(X, y)``: ``X`` is ``(n, d)`` float features, ``y`` is ``(n,)`` throughput
    (flop/s or 1/cost; 0 for failed configs). Every call refits from scratch on all the data.
    ``predict(X)``: ``(n,)`` scores, higher is better; only their order is meaningful.
    """

    #: True once :meth:`fit` has seen at least one successful (y > 0) sample.
    fitted: bool = False

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Train on all observations so far."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Score configs; higher is better."""

    @staticmethod
    def _check(X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise TuningError(f"cost-model features must be a 2-D array, got shape {X.shape}")
        if y is not None:
            y = np.asarray(y, dtype=np.float64).reshape(-1)
            if len(y) != len(X):
                raise TuningError(f"cost model got {len(X)} feature rows but {len(y)} targets")
            y = np.where(np.isfinite(y) & (y > 0), y, 0.0)
        return X, y


def xgboost_available() -> bool:
    """True when ``import xgboost`` works."""
    try:
        import xgboost  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install raises more than ImportError
        return False
    return True


def make_cost_model(kind: str = "xgb", *, seed: int = 0, **kwargs: Any) -> CostModel:
    """Build a cost model by name.

    ``"xgb"`` (rank loss), ``"xgb-rank"``, ``"xgb-reg"``: :class:`XGBoostCostModel`, or the
    NumPy model (default options) with a warning when xgboost cannot be imported. ``"numpy"``:
    :class:`NumpyCostModel`.
    """
    if kind in ("xgb", "xgb-rank", "xgb-reg"):
        if xgboost_available():
            from .xgb_model import XGBoostCostModel

            if kind != "xgb":
                kwargs.setdefault("objective", kind.split("-")[1])
            return XGBoostCostModel(seed=seed, **kwargs)
        warnings.warn("xgboost is not importable; using the NumPy cost model instead",
                      stacklevel=2)
        kwargs = {}  # the options were XGBoost's
        kind = "numpy"
    if kind == "numpy":
        from .numpy_model import NumpyCostModel

        return NumpyCostModel(seed=seed, **kwargs)
    raise TuningError(f"unknown cost model {kind!r}; choose 'xgb', 'xgb-rank', 'xgb-reg' "
                      "or 'numpy'")
