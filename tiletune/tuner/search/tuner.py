"""The tuner base class and the measure loop (:meth:`Tuner.tune`).

A tuner proposes config indices (``next_batch``) and learns from their measurements
(``update``). ``tune`` drives the loop and owns every stopping rule: trial budget, early
stopping, time budget, an exhausted space and runs of consecutive failures.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...errors import TuningError
from ..measure.result import MeasureResult, TuneSummary

if TYPE_CHECKING:
    from ..space.config_space import ConfigSpace

Featurize = Callable[[Sequence[int]], np.ndarray]
Measure = Callable[[list[int]], list[MeasureResult]]
Callback = Callable[["Tuner", list[int], list[MeasureResult]], None]


class Tuner(abc.ABC):
    """Base class: proposes configs of ``space`` and tracks what was measured.

    Subclasses implement :meth:`next_batch` and may extend :meth:`update` (calling
    ``super().update`` first). Every random choice must come from ``self.rng`` (or a generator
    derived from ``self.seed``) so that the same seed gives the same proposals.

    State kept for subclasses: ``visited`` (set of measured indices), ``xs`` / ``ys``
    (measured indices and their throughput, 0 for failures, in measurement order),
    ``results`` (the matching :class:`MeasureResult` list). A result cut short by the
    harness's cutoff (``MeasureResult.cut``) is never the best; its ``ys`` entry is its
    throughput bound (the config is at least that slow); the cost models learn from
    :meth:`training_targets`, which treats it as censored.
    """

    def __init__(self, space: ConfigSpace, featurize: Featurize | None = None,
                 seed: int = 0) -> None:
        self.space = space
        self.featurize: Featurize = featurize if featurize is not None else space.knob_features
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.visited: set[int] = set()
        self.xs: list[int] = []
        self.ys: list[float] = []
        self.results: list[MeasureResult] = []
        self.best_index: int | None = None
        self.best_cost: float = math.inf
        self.best_flops: float = 0.0
        self.stop_reason: str = ""
        self._stop_request: str | None = None

    # -- the interface --------------------------------------------------------------------
    @abc.abstractmethod
    def next_batch(self, n: int) -> list[int]:
        """Up to ``n`` distinct, valid, not yet visited indices to measure next."""

    def update(self, indices: Sequence[int], results: Sequence[MeasureResult],
               flops: float = 0.0) -> None:
        """Record measurements. ``flops`` is the workload's flop count (0 if unknown)."""
        if len(indices) != len(results):
            raise TuningError(f"update got {len(indices)} indices but {len(results)} results")
        for index, res in zip(indices, results):
            index = int(index)
            self.visited.add(index)
            self.xs.append(index)
            self.ys.append(res.throughput(flops))
            self.results.append(res)
            if res.usable and res.mean < self.best_cost:
                self.best_index, self.best_cost = index, res.mean
                self.best_flops = flops / res.mean if flops > 0 else 0.0

    def censored(self) -> np.ndarray:
        """Boolean mask over ``ys``: True where the throughput is only an upper bound (a
        cut measurement) rather than a measured value."""
        return np.fromiter((r.cut for r in self.results), dtype=bool, count=len(self.results))

    def training_targets(self) -> np.ndarray:
        """``ys`` as the cost models should learn them: a cut result's throughput is only an
        upper bound (the config is at least that slow), so it is replaced by the median
        throughput of the fully measured configs below that bound (what a config known to
        be that slow typically achieves), or kept when none is."""
        y = np.asarray(self.ys, dtype=np.float64)
        cut = self.censored()
        if not cut.any():
            return y
        full = y[~cut & (y > 0)]
        out = y.copy()
        for k in np.flatnonzero(cut):
            below = full[full <= y[k]]
            if len(below):
                out[k] = float(np.median(below))
        return out

    def has_next(self) -> bool:
        """False once every valid config has been measured."""
        return len(self.visited) < self.space.num_valid()

    def stop(self, reason: str) -> None:
        """Ask :meth:`tune` to stop after the current batch (for callbacks)."""
        self._stop_request = reason

    # -- the driver -----------------------------------------------------------------------
    def tune(self, measure: Measure, n_trial: int, *, flop: float = 0.0, batch_size: int = 8,
             early_stopping: int | None = None, time_budget: float | None = None,
             callbacks: Iterable[Callback] = (),
             resume_from: Mapping[int, MeasureResult] | None = None,
             max_consecutive_failures: int = 50) -> TuneSummary:
        """Measure up to ``n_trial`` configs (resumed ones included) and return a summary.

        Stops early, setting ``self.stop_reason``, when: ``early_stopping`` trials passed
        without a new best; ``time_budget`` seconds elapsed (checked between batches); the
        space is exhausted; ``max_consecutive_failures`` measurements in a row failed; or a
        callback called :meth:`stop`. Never raises for failed measurements.
        ``resume_from`` maps already-measured indices to their results: they are fed to
        :meth:`update` first and never measured again.
        """
        if n_trial < 0 or batch_size < 1:
            raise TuningError(f"need n_trial >= 0 and batch_size >= 1, got {n_trial}, "
                              f"{batch_size}")
        callbacks = list(callbacks)
        start = time.monotonic()
        self._stop_request = None
        if resume_from:
            fresh = [i for i in resume_from if int(i) not in self.visited]
            self.update(fresh, [resume_from[i] for i in fresh], flop)
        n_done = len(self.visited)
        best_at, best_cost = n_done, self.best_cost  # early stopping counts from here
        failures_in_row = 0
        n_failed = sum(1 for r in self.results if not r.ok)
        reason = f"trial budget of {n_trial} reached"
        while True:
            if n_done >= n_trial:
                break
            if time_budget is not None and time.monotonic() - start >= time_budget:
                reason = f"time budget of {time_budget:g} s reached"
                break
            batch = self._fresh(self.next_batch(min(batch_size, n_trial - n_done))
                                if self.has_next() else [])
            if not batch:
                reason = f"search space exhausted after {len(self.visited)} configs"
                break
            results = list(measure(batch))
            if len(results) != len(batch):
                raise TuningError(f"measure returned {len(results)} results for a batch of "
                                  f"{len(batch)} configs")
            self.update(batch, results, flop)
            for res in results:
                n_done += 1
                failures_in_row = 0 if res.ok else failures_in_row + 1
                n_failed += not res.ok
                if res.usable and res.mean < best_cost:
                    best_at, best_cost = n_done, res.mean
            for cb in callbacks:
                cb(self, batch, results)
            if failures_in_row >= max_consecutive_failures:
                last = next(r for r in reversed(results) if not r.ok)
                reason = f"{failures_in_row} consecutive failures: last error {last.describe()}"
                break
            if early_stopping is not None and n_done - best_at >= early_stopping:
                reason = f"early stopping: no improvement in the last {n_done - best_at} trials"
                break
            if self._stop_request is not None:
                reason = self._stop_request
                break
        self.stop_reason = reason
        return TuneSummary(self.best_index, self.best_cost, self.best_flops,
                           n_measured=len(self.visited), n_failed=n_failed,
                           stop_reason=reason, elapsed=time.monotonic() - start)

    def _fresh(self, batch: Iterable[int]) -> list[int]:
        """Drop visited and repeated indices: a config is never measured twice."""
        out: list[int] = []
        seen: set[int] = set()
        for i in batch:
            i = int(i)
            if i not in self.visited and i not in seen:
                seen.add(i)
                out.append(i)
        return out
