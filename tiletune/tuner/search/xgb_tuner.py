"""XGBTuner: AutoTVM's model-based tuner (cost model + search over the model).

Loop: the first ``n_initial`` trials are random; after that every measured batch refits the
cost model on all data and re-plans: the ``plan_size`` unvisited configs the model scores
highest (found exhaustively in small spaces, by simulated annealing in large ones). Each
batch slot is taken from the plan, or with probability ``epsilon`` is a random unvisited
config (exploration). A config is never measured twice.

Choosing options: ``feature="knob"`` (the default) is fast and fine within one workload;
pass a featurize function (e.g. loop-nest features from the measurement harness) for
features that transfer across shapes. ``loss="rank"`` optimises the order, which is all the
search needs; ``"reg"`` fits throughput directly and is a little faster to train.

Extension points for subclasses (active / transfer learning): :meth:`initial_batch`,
:meth:`fit_model`, :meth:`score`, :meth:`make_plan`, and the ``plan`` list itself (a
transfer-learning tuner may fill it before the first batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import TuningError
from ..measure.result import MeasureResult
from ..models.cost_model import CostModel, make_cost_model
from ..space.config_space import ENUMERATE_LIMIT, ConfigSpace
from .sa import SimulatedAnnealing
from .tuner import Featurize, Tuner


class XGBTuner(Tuner):
    """Model-based tuner; see the module docstring for the loop and the options."""

    def __init__(self, space: ConfigSpace, featurize: Featurize | None = None, seed: int = 0,
                 *, plan_size: int = 64, feature: str | Featurize = "knob",
                 loss: str = "rank", epsilon: float = 0.05, n_initial: int | None = None,
                 cost_model: CostModel | None = None, exhaustive_limit: int = 20_000,
                 sa_options: dict | None = None) -> None:
        if callable(feature):
            featurize = feature
        elif feature != "knob":
            raise TuningError(f"feature {feature!r} needs a featurize function; pass "
                              "feature=<callable> or use feature='knob'")
        super().__init__(space, featurize, seed)
        if not 0.0 <= epsilon <= 1.0:
            raise TuningError(f"epsilon must be in [0, 1], got {epsilon}")
        self.plan_size, self.epsilon = plan_size, epsilon
        self.n_initial = plan_size if n_initial is None else n_initial
        self.model = cost_model if cost_model is not None else make_cost_model(
            "xgb", seed=seed, objective=loss, plan_size=plan_size)
        self.exhaustive_limit = exhaustive_limit
        self.sa = SimulatedAnnealing(space, rng=np.random.default_rng([seed, 1]),
                                     **(sa_options or {}))
        self.plan: list[int] = []
        self.n_fits = 0
        self._train_X: list[np.ndarray] = []
        self._feature_cache: dict[int, np.ndarray] = {}

    # -- proposing --------------------------------------------------------------------------
    def next_batch(self, n: int) -> list[int]:
        if not self.plan and not self.model.fitted:
            return self.initial_batch(n)
        out: list[int] = []
        taken = set(self.visited)
        while len(out) < n:
            pick = None
            if self.rng.random() >= self.epsilon:
                while self.plan and pick is None:
                    i = self.plan.pop(0)
                    pick = i if i not in taken else None
            if pick is None:
                found = self.space.sample(1, self.rng, exclude=taken)
                if not found:
                    break
                pick = found[0]
            out.append(pick)
            taken.add(pick)
        return out

    def initial_batch(self, n: int) -> list[int]:
        """Configs to measure before the model is trained: uniformly random."""
        return self.space.sample(n, self.rng, exclude=self.visited)

    # -- learning ---------------------------------------------------------------------------
    def update(self, indices: Sequence[int], results: Sequence[MeasureResult],
               flops: float = 0.0) -> None:
        super().update(indices, results, flops)
        if len(indices):
            self._train_X.append(self.features(list(indices)))
        if len(self.xs) >= self.n_initial and max(self.ys, default=0.0) > 0:
            self.fit_model()
            self.plan = self.make_plan()

    def fit_model(self) -> None:
        """Refit the cost model on every observation (cut ones as censored samples, see
        :meth:`Tuner.training_targets`)."""
        self.model.fit(np.vstack(self._train_X), self.training_targets())
        self.n_fits += 1

    def score(self, indices: Sequence[int]) -> np.ndarray:
        """Model scores of configs, higher is better (an acquisition function hook)."""
        return self.model.predict(self.features(indices))

    def make_plan(self) -> list[int]:
        """The ``plan_size`` unvisited configs with the best :meth:`score`, best first."""
        n_valid = self.space.num_valid()
        if len(self.space) <= ENUMERATE_LIMIT and n_valid <= self.exhaustive_limit:
            cand = self.space.valid_indices()
            if self.visited:
                cand = cand[~np.isin(cand, np.fromiter(self.visited, np.int64,
                                                       count=len(self.visited)))]
            if len(cand) == 0:
                return []
            scores = self.score([int(i) for i in cand])
            order = np.lexsort((self.rng.random(len(cand)), -scores))  # random tie-break
            return [int(i) for i in cand[order[:self.plan_size]]]
        return self.sa.optimize(self.score, self.plan_size, exclude=self.visited)

    def features(self, indices: Sequence[int]) -> np.ndarray:
        """Feature rows of ``indices``; rows of a custom featurize are cached per index."""
        if self.featurize == self.space.knob_features:
            return self.space.knob_features(indices)
        if len(self._feature_cache) > 100_000:
            self._feature_cache.clear()
        miss = list(dict.fromkeys(int(i) for i in indices if int(i) not in self._feature_cache))
        if miss:
            rows = np.asarray(self.featurize(miss), dtype=np.float64)
            self._feature_cache.update(zip(miss, rows))
        return np.array([self._feature_cache[int(i)] for i in indices], dtype=np.float64)
