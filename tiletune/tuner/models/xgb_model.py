"""XGBoost cost model (AutoTVM's), using only ``xgb.train`` and ``xgb.DMatrix``.

Works with xgboost 2.x and 3.x: no ``feval``/``ntree_limit``/function callbacks; ranking
labels are integers (the dense rank of the throughput), which every ranking objective
accepts; pair sampling is set explicitly (``mean``, 8 pairs per sample), since the 2.x
default ``topk`` ranks clearly worse on tuning data. Every DMatrix gets ``nthread``
explicitly: with the default (all cores) building a small DMatrix on a busy machine took
~45 ms instead of 0.25 ms, which dominated simulated annealing.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xgboost as xgb

from ...errors import TuningError
from .cost_model import CostModel

#: AutoTVM's tree parameters (python/tvm/autotvm/tuner/xgboost_cost_model.py).
AUTOTVM_PARAMS: dict[str, Any] = {
    "max_depth": 3, "gamma": 1e-4, "min_child_weight": 1, "subsample": 1.0, "eta": 0.3,
    "lambda": 1.0, "alpha": 0.0, "verbosity": 0,
}


def default_nthread() -> int:
    """``TILETUNE_NUM_THREADS``, else ``OMP_NUM_THREADS``, else 1 (the data are small, and
    measurement workers need the cores)."""
    for var in ("TILETUNE_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def average_recall(pred: np.ndarray, y: np.ndarray, k: int) -> float:
    """AutoTVM's ``a-recall@k``: mean over n = 1..k of |predicted top-n ∩ true top-n| / n."""
    k = min(k, len(y))
    if k == 0:
        return 0.0
    true_rank = np.empty(len(y), dtype=np.int64)
    true_rank[np.argsort(-y, kind="stable")] = np.arange(len(y))
    picked = true_rank[np.argsort(-pred, kind="stable")[:k]]  # true ranks of predicted top-k
    n = np.arange(1, k + 1)
    hits = np.tril(picked[None, :] < n[:, None]).sum(axis=1)
    return float(np.mean(hits / n))


class _RecallEarlyStop(xgb.callback.TrainingCallback):
    """Stop when the training-set a-recall@k has not improved for ``rounds`` rounds
    (checked every other round, as AutoTVM does)."""

    def __init__(self, dtrain: xgb.DMatrix, y: np.ndarray, k: int, rounds: int) -> None:
        super().__init__()
        self.dtrain, self.y, self.k, self.rounds = dtrain, y, k, rounds
        self.best_score, self.best_iteration = -1.0, 0

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        if epoch % 2:
            return False
        score = average_recall(model.predict(self.dtrain), self.y, self.k)
        if score > self.best_score:
            self.best_score, self.best_iteration = score, epoch
        return epoch - self.best_iteration >= self.rounds


class XGBoostCostModel(CostModel):
    """Gradient-boosted trees over config features.

    ``objective``: ``"rank"`` (``rank:pairwise`` over one query group; labels are the dense
    rank of the throughput) or ``"reg"`` (``reg:squarederror`` on throughput / max).
    Training stops at ``num_boost_round`` or, with ``early_stopping`` > 0, once the
    training-set a-recall@``plan_size`` stalls for that many rounds (the model keeps the
    trees up to the best round).
    """

    def __init__(self, objective: str = "rank", seed: int = 0, *, num_boost_round: int = 200,
                 early_stopping: int | None = 20, plan_size: int = 64,
                 nthread: int | None = None, params: dict[str, Any] | None = None) -> None:
        if objective not in ("rank", "reg"):
            raise TuningError(f"unknown XGBoost objective {objective!r}; choose 'rank' or 'reg'")
        self.objective, self.seed = objective, seed
        self.num_boost_round, self.early_stopping = num_boost_round, early_stopping
        self.plan_size = plan_size
        self.params: dict[str, Any] = AUTOTVM_PARAMS | {
            "nthread": nthread or default_nthread(), "seed": seed}
        if objective == "rank":
            self.params |= {"objective": "rank:pairwise", "lambdarank_pair_method": "mean",
                            "lambdarank_num_pair_per_sample": 8}
        else:
            self.params["objective"] = "reg:squarederror"
        self.params |= params or {}
        self.booster: xgb.Booster | None = None
        self.n_trees = 0
        self.fitted = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self._check(X, y)
        assert y is not None
        if len(y) == 0 or y.max() <= 0:  # nothing succeeded yet: no signal to learn
            self.booster, self.n_trees, self.fitted = None, 0, False
            return
        y = y / y.max()
        if self.objective == "rank":
            labels = np.unique(y, return_inverse=True)[1].astype(np.float64)
        else:
            labels = y
        dtrain = xgb.DMatrix(X, label=labels, nthread=self.params["nthread"])
        if self.objective == "rank":
            dtrain.set_group([len(y)])
        callbacks = []
        if self.early_stopping:
            stop = _RecallEarlyStop(dtrain, y, self.plan_size, self.early_stopping)
            callbacks.append(stop)
        self.booster = xgb.train(self.params, dtrain, num_boost_round=self.num_boost_round,
                                 callbacks=callbacks, verbose_eval=False)
        n_rounds = self.booster.num_boosted_rounds()
        self.n_trees = stop.best_iteration + 1 if self.early_stopping else n_rounds
        self.n_trees = min(self.n_trees, n_rounds)
        self.fitted = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        X, _ = self._check(X)
        if self.booster is None:
            return np.zeros(len(X))
        dmat = xgb.DMatrix(X, nthread=self.params["nthread"])
        return self.booster.predict(dmat, iteration_range=(0, self.n_trees))
