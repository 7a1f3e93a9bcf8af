"""Transfer learning: tune a new workload faster using records of other workloads.

The history is a list of ``(features, throughputs)`` pairs, one per earlier workload of the
*same template*, with features that mean the same thing across shapes (e.g. loop-nest
features, or knob features whose split columns are the inner tile sizes) and throughputs
normalised per workload (``y / max(y)``; done again here, harmlessly).

Two methods, both on :class:`XGBTuner`'s loop (so ``tune`` works the same):

* ``"xgb"`` (AutoTVM's ``load_history``): a base XGBoost model on the pooled history (one
  ranking group per workload); the first plan is the base model's top configs; afterwards a new
  model is boosted on top of the base model's margin, discounted by ``2^(-n / 64)`` and
  dropped below 0.05 (n = new measurements), i.e. residual boosting with forgetting.
* ``"gp"`` (a reconstruction of Sun et al., ICCV 2021): a :class:`DeepKernelGP` pretrained on
  the history; the *tuning set* (first ``n_tune`` trials) is chosen by BTED in the learned
  feature space among the pool configs the history rates highest; afterwards the GP is
  MAP-adapted to all new measurements after every batch and the plan maximises expected
  improvement (or UCB).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import TuningError
from ..models.cost_model import CostModel
from ..models.deep_gp import DeepKernelGP, expected_improvement
from ..space.config_space import ConfigSpace
from .active import bted_select
from .tuner import Featurize
from .xgb_tuner import XGBTuner

__all__ = ["DeepGPCostModel", "History", "TransferTuner", "TransferXGBModel", "check_history"]

History = Sequence[tuple[np.ndarray, np.ndarray]]


def check_history(history: History, n_features: int | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validated ``[(X_t, y_t / max(y_t))]``; workloads without a success are dropped."""
    out = []
    for t, (x, y) in enumerate(history):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or len(x) != len(y):
            raise TuningError(f"history workload {t}: need a 2-D feature array with one row "
                              f"per throughput, got {x.shape} and {y.shape}")
        if n_features is not None and x.shape[1] != n_features:
            raise TuningError(f"history workload {t} has {x.shape[1]} features but the new "
                              f"task has {n_features}: transfer needs the same feature space")
        y = np.where(np.isfinite(y) & (y > 0), y, 0.0)
        if y.max(initial=0.0) > 0:
            out.append((x, y / y.max()))
    if not out:
        raise TuningError("transfer needs at least one history workload with a successful "
                          "measurement")
    return out


# --------------------------------------------------------------------------- AutoTVM-style


def _recall_stop(dtrain: Any, y: np.ndarray, k: int, rounds: int) -> Any:
    """An xgboost callback stopping when the training-set a-recall@k has not improved for
    ``rounds`` rounds (AutoTVM's criterion). xgboost is imported lazily: the GP method and
    the rest of this module work without it."""
    import xgboost as xgb

    from ..models.xgb_model import average_recall

    class TrainRecallStop(xgb.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_epoch = -1.0, 0

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            score = average_recall(model.predict(dtrain), y, k)
            if score > self.best:
                self.best, self.best_epoch = score, epoch
            return epoch - self.best_epoch >= rounds

    return TrainRecallStop()


class TransferXGBModel(CostModel):
    """XGBoost boosted on top of a base model trained on other workloads.

    ``margin(x) = d * base(x) + new(x)``, ``d = 2^(-n / half_life)`` (0 once below
    ``min_discount``): the new-task trees fit what the history gets wrong, and the history
    fades as new measurements accumulate. Before :meth:`fit`, :meth:`predict` is the base
    model (so a tuner can plan its first batch from the history).
    """

    def __init__(self, history: History, seed: int = 0, objective: str = "rank", *,
                 base_rounds: int = 400, num_boost_round: int = 200, early_stopping: int = 20,
                 plan_size: int = 64, half_life: float = 64.0, min_discount: float = 0.05,
                 nthread: int | None = None) -> None:
        if objective not in ("rank", "reg"):
            raise TuningError(f"unknown objective {objective!r}; choose 'rank' or 'reg'")
        import xgboost as xgb

        from ..models.xgb_model import AUTOTVM_PARAMS, default_nthread

        self.objective, self.seed = objective, seed
        self.num_boost_round, self.early_stopping = num_boost_round, early_stopping
        self.plan_size, self.half_life, self.min_discount = plan_size, half_life, min_discount
        self.params: dict[str, Any] = AUTOTVM_PARAMS | {
            "nthread": nthread or default_nthread(), "seed": seed}
        self.params |= ({"objective": "rank:pairwise", "lambdarank_pair_method": "mean",
                         "lambdarank_num_pair_per_sample": 8} if objective == "rank"
                        else {"objective": "reg:squarederror"})
        self.history = check_history(history)
        self.n_features = self.history[0][0].shape[1]
        check_history(self.history, self.n_features)
        x = np.vstack([h[0] for h in self.history])
        y = np.concatenate([h[1] for h in self.history])
        dtrain = self._dmatrix(x, y, [len(h[1]) for h in self.history])
        self.base = xgb.train(self.params, dtrain, num_boost_round=base_rounds,
                              callbacks=self._stopper(dtrain, y, 2 * plan_size, 100))
        self.booster: Any = None
        self.discount = 1.0
        self.fitted = False

    def _labels(self, y: np.ndarray, groups: Sequence[int]) -> np.ndarray:
        if self.objective == "reg":
            return y
        out, start = np.empty(len(y)), 0
        for g in groups:  # dense rank per workload: integer relevance labels
            out[start:start + g] = np.unique(y[start:start + g], return_inverse=True)[1]
            start += g
        return out

    def _dmatrix(self, x: np.ndarray, y: np.ndarray | None = None,
                 groups: Sequence[int] | None = None, margin: np.ndarray | None = None
                 ) -> Any:
        import xgboost as xgb

        nthread = self.params["nthread"]
        if y is None:
            dm = xgb.DMatrix(x, nthread=nthread)
        else:
            groups = list(groups or [len(y)])
            dm = xgb.DMatrix(x, label=self._labels(y, groups), nthread=nthread)
            if self.objective == "rank":
                dm.set_group(groups)
        if margin is not None:
            dm.set_base_margin(margin)
        return dm

    @staticmethod
    def _stopper(dtrain: Any, y: np.ndarray, k: int, rounds: int) -> list[Any]:
        return [_recall_stop(dtrain, y, k, rounds)] if rounds else []

    def base_margin(self, X: np.ndarray) -> np.ndarray:
        """The base (history) model's raw scores."""
        return self.base.predict(self._dmatrix(X), output_margin=True)

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self._check(X, y)
        if X.shape[1] != self.n_features:
            raise TuningError(f"the history has {self.n_features} features, the new task "
                              f"{X.shape[1]}: transfer needs the same feature space")
        if len(y) == 0 or y.max() <= 0:
            self.booster, self.fitted = None, False
            return
        y = y / y.max()
        d = 2.0 ** (-len(y) / self.half_life)
        self.discount = d if d >= self.min_discount else 0.0
        dtrain = self._dmatrix(X, y, margin=self.discount * self.base_margin(X))
        import xgboost as xgb

        self.booster = xgb.train(self.params, dtrain, num_boost_round=self.num_boost_round,
                                 callbacks=self._stopper(dtrain, y, self.plan_size,
                                                         self.early_stopping))
        self.fitted = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        X, _ = self._check(X)
        if self.booster is None:
            return self.base_margin(X)
        margin = self.discount * self.base_margin(X) if self.discount else None
        return self.booster.predict(self._dmatrix(X, margin=margin), output_margin=True)


# --------------------------------------------------------------------------- deep-kernel GP


class DeepGPCostModel(CostModel):
    """A :class:`DeepKernelGP` pretrained on the history, MAP-adapted by :meth:`fit`.

    Targets are ``y / max(y)``; failed configs (y = 0) are left out of the regression (a
    failure is not a smooth function of the config, and a zero among throughputs would bend
    the GP around it; the tuner never measures a config twice anyway). The prediction is a
    GP on top of the history:

        f(x) = a + b h(x) + g(x),   g ~ GP(0, k_phi) MAP-adapted to the residuals

    with ``h`` the :meth:`history_score` and ``a``, ``b >= 0`` fitted by least squares on the
    new measurements (``b = 1, a = 0`` with fewer than 3): the history supplies the trend, the
    adapted kernel the corrections. Before :meth:`fit`, :meth:`predict` is ``h``.
    """

    def __init__(self, history: History, seed: int = 0, **gp_options: Any) -> None:
        self.history = check_history(history)
        self.n_features = self.history[0][0].shape[1]
        check_history(self.history, self.n_features)
        self.gp = DeepKernelGP(seed=seed, **gp_options).pretrain(self.history)
        self._per_task = [self.gp.condition(x, y) for x, y in self.history]
        self.trend = (0.0, 1.0)
        self.fitted = False

    def history_score(self, X: np.ndarray) -> np.ndarray:
        """Mean over history workloads of the GP posterior mean at ``X`` (each workload
        conditioned on its own records, in its ``y / max`` units): what the earlier
        workloads say these configs achieve."""
        X, _ = self._check(X)
        return np.mean([m.predict(X) for m in self._per_task], axis=0)

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self._check(X, y)
        if X.shape[1] != self.n_features:
            raise TuningError(f"the history has {self.n_features} features, the new task "
                              f"{X.shape[1]}: transfer needs the same feature space")
        if len(y) == 0 or y.max() <= 0:
            self.fitted = False
            return
        ok = y > 0            # failures are not a smooth function of the config: left out
        X, y = X[ok], y[ok] / y.max()
        h = self.history_score(X)
        a, b = 0.0, 1.0
        if len(y) >= 3 and np.var(h) > 1e-12:
            b = max(0.0, float(np.cov(h, y, bias=True)[0, 1] / np.var(h)))
            a = float(y.mean() - b * h.mean())
        self.trend = (a, b)
        self.gp.fit(X, y - a - b * h, warm_start=self.fitted)
        self.fitted = True

    def predict_mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, _ = self._check(X)
        a, b = self.trend
        mean, std = self.gp.predict(X, return_std=True)
        return a + b * self.history_score(X) + mean, std

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not self.fitted:
            return self.history_score(X)
        return self.predict_mean_std(X)[0]


# --------------------------------------------------------------------------- the tuner


class TransferTuner(XGBTuner):
    """A model-based tuner that starts from the history (see the module docstring).

    ``method="xgb"``: first plan from the base model, then residual boosting on every batch.
    ``method="gp"``: a tuning set of ``n_tune`` configs (default ``plan_size // 4``, at least
    8) by BTED on the learned features of the ``guide_fraction`` best-rated configs of a
    ``pool_size`` random pool, then ``mean + kappa * std`` (``acquisition="ucb"``) or
    expected improvement (``"ei"``) over the MAP-adapted GP.

    ``model``: an already built :class:`TransferXGBModel` / :class:`DeepGPCostModel` (e.g.
    pretrained once per template); the tuner works on a copy. Otherwise it is built from
    ``history`` with ``model_options``. ``featurize`` must map this space into the history's
    feature space.
    """

    def __init__(self, space: ConfigSpace, history: History,
                 featurize: Featurize | None = None, seed: int = 0, *, method: str = "gp",
                 plan_size: int = 64, n_tune: int | None = None, pool_size: int = 2000,
                 guide_fraction: float = 0.25, acquisition: str = "ucb", kappa: float = 1.0,
                 model: CostModel | None = None, model_options: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if method not in ("gp", "xgb"):
            raise TuningError(f"unknown transfer method {method!r}; choose 'gp' or 'xgb'")
        if acquisition not in ("ei", "ucb"):
            raise TuningError(f"unknown acquisition {acquisition!r}; choose 'ei' or 'ucb'")
        options = dict(model_options or {})
        expected = TransferXGBModel if method == "xgb" else DeepGPCostModel
        if model is not None:
            if not isinstance(model, expected):
                raise TuningError(f"method {method!r} needs a {expected.__name__}, got "
                                  f"{type(model).__name__}")
            model = copy.deepcopy(model)   # pretrained once, reused fresh by every tuner
        elif method == "xgb":
            model = TransferXGBModel(history, seed=seed, plan_size=plan_size, **options)
        else:
            model = DeepGPCostModel(history, seed=seed, **options)
        if method == "xgb":
            kwargs.setdefault("n_initial", 1)
        else:
            n_tune = max(8, plan_size // 4) if n_tune is None else n_tune
            kwargs.setdefault("n_initial", n_tune)
        super().__init__(space, featurize, seed, plan_size=plan_size, cost_model=model,
                         **kwargs)
        probe = self.features(space.sample(1, np.random.default_rng(0)))
        if probe.shape[1] != model.n_features:
            raise TuningError(f"featurize gives {probe.shape[1]} features but the history has "
                              f"{model.n_features}: transfer needs the same feature space")
        self.method, self.n_tune, self.pool_size = method, n_tune, pool_size
        self.guide_fraction, self.acquisition, self.kappa = guide_fraction, acquisition, kappa
        self._queue: list[int] | None = None

    def initial_batch(self, n: int) -> list[int]:
        if self._queue is None:
            self._queue = self.tuning_set() if self.method == "gp" else self.make_plan()
        out = [i for i in self._queue if i not in self.visited][:n]
        self._queue = [i for i in self._queue if i not in self.visited and i not in out]
        if len(out) < n:
            out += self.space.sample(n - len(out), self.rng, exclude=self.visited | set(out))
        return out

    def tuning_set(self) -> list[int]:
        """``n_tune`` configs: BTED in the GP's learned feature space over the pool configs
        the history rates in its top ``guide_fraction``."""
        pool_rng = np.random.default_rng([self.seed, 3])
        pool = self.space.sample(self.pool_size, pool_rng, exclude=self.visited)
        if len(pool) <= self.n_tune:
            return pool
        feats = self.features(pool)
        rated = self.model.history_score(feats)
        keep = max(self.n_tune, int(round(self.guide_fraction * len(pool))))
        top = np.argsort(-rated, kind="stable")[:keep]
        picks = bted_select(self.model.gp.embed(feats[top]), self.n_tune, seed=self.seed)
        return [pool[int(top[p])] for p in picks]

    def score(self, indices: Sequence[int]) -> np.ndarray:
        if self.method == "xgb" or not self.model.fitted:
            return super().score(indices)
        mean, std = self.model.predict_mean_std(self.features(indices))
        if self.acquisition == "ucb":
            return mean + self.kappa * std
        return expected_improvement(mean, std, best=1.0)  # targets are y / max(y)


# --------------------------------------------------------------------------- shape descriptors


def workload_descriptor(task: Any) -> np.ndarray:
    """``log2(1 + a)`` of a task's numeric arguments (for conv2d: N, C, H, W, K, R, S,
    stride, padding): appended to the knob features, it lets a history model tell the
    workloads apart and condition on the shape. Same length for every task of a template."""
    return np.array([np.log2(1.0 + float(a)) for a in task.args
                     if isinstance(a, (int, float)) and not isinstance(a, bool)])


def with_descriptor(featurize: Featurize, task: Any) -> Featurize:
    """``featurize`` with :func:`workload_descriptor` columns appended to every row."""
    d = workload_descriptor(task)

    def f(indices: Sequence[int]) -> np.ndarray:
        x = np.asarray(featurize(indices), dtype=np.float64)
        return np.hstack([x, np.tile(d, (len(x), 1))])

    return f


def transfer_data(ctx: Any, descriptors: bool = False
                  ) -> tuple[Featurize, list[tuple[np.ndarray, np.ndarray]]]:
    """:func:`tiletune.tuner.search.history.transfer_history` (knob features of the history's
    other workloads of the task's template), optionally with shape descriptors appended."""
    from ..models.features import make_featurizer
    from .history import transfer_history

    if not descriptors:
        return transfer_history(ctx)
    return transfer_history(
        ctx, featurizer=lambda task: with_descriptor(make_featurizer(task, "knob"), task))
