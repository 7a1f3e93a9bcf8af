"""Simulated annealing over a cost model's scores (AutoTVM's model optimizer).

Many chains walk the space in parallel; each step proposes a one-knob random walk for every
chain, scores the whole batch with one ``score_fn`` call, and accepts a worse proposal with
probability ``exp(Δ / T)`` (Δ in units of the score spread, T cooling linearly). The best
distinct points seen by any chain, excluding ``exclude``, are the result.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from ..space.config_space import ConfigSpace, RngLike, as_rng

ScoreFn = Callable[[Sequence[int]], np.ndarray]


class SimulatedAnnealing:
    """A reusable optimizer; with ``persistent=True`` chains resume where the last call
    left them (AutoTVM's default), so successive plans keep exploring."""

    def __init__(self, space: ConfigSpace, *, n_chains: int = 128, n_iter: int = 500,
                 temp: tuple[float, float] = (1.0, 0.0), early_stop: int = 50,
                 persistent: bool = True, rng: RngLike = None) -> None:
        self.space = space
        self.n_chains, self.n_iter, self.temp = n_chains, n_iter, temp
        self.early_stop, self.persistent = early_stop, persistent
        self.rng = as_rng(rng)
        self.points: np.ndarray | None = None
        self.n_steps = 0  # iterations run by the last call (for diagnostics)

    def _start(self) -> np.ndarray:
        if self.persistent and self.points is not None:
            return self.points
        pts = np.array(self.space.sample(self.n_chains, self.rng), dtype=np.int64)
        if 0 < len(pts) < self.n_chains:  # tiny space: chains may share a start
            pts = self.rng.choice(pts, size=self.n_chains, replace=True)
        return pts

    def optimize(self, score_fn: ScoreFn, n_results: int,
                 exclude: Collection[int] = ()) -> list[int]:
        """The ``n_results`` best-scoring distinct valid indices not in ``exclude``, best
        first (fewer if the chains found fewer)."""
        points = self._start()
        if len(points) == 0 or n_results <= 0:
            return []
        excl = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
        scores = np.asarray(score_fn([int(i) for i in points]), dtype=np.float64)
        spread = float(np.std(scores)) or 1.0
        top_idx, top_s = self._merge(np.empty(0, np.int64), np.empty(0), points, scores,
                                     excl, n_results)[:2]
        t0, t1 = self.temp
        last_change = 0
        self.n_steps = 0
        for it in range(self.n_iter):
            self.n_steps = it + 1
            t = t0 + (t1 - t0) * it / max(1, self.n_iter)
            new = self.space.random_walk_batch(points, self.rng)
            new_s = np.asarray(score_fn([int(i) for i in new]), dtype=np.float64)
            delta = (new_s - scores) / spread
            accept = self.rng.random(len(points)) < np.exp(np.clip(delta / (t + 1e-5), -50, 0))
            points = np.where(accept, new, points)
            scores = np.where(accept, new_s, scores)
            top_idx, top_s, changed = self._merge(top_idx, top_s, new, new_s, excl, n_results)
            if changed:
                last_change = it
            elif it - last_change >= self.early_stop:
                break
        self.points = points
        return [int(i) for i in top_idx]

    @staticmethod
    def _merge(top_idx: np.ndarray, top_s: np.ndarray, cand: np.ndarray, cand_s: np.ndarray,
               excl: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Keep the ``n`` best distinct points of top ∪ candidates (sorted, best first)."""
        keep = ~np.isin(cand, excl) & ~np.isin(cand, top_idx)
        u, first = np.unique(cand[keep], return_index=True)
        if len(u) == 0:
            return top_idx, top_s, False
        all_idx = np.concatenate([top_idx, u])
        all_s = np.concatenate([top_s, cand_s[keep][first]])
        order = np.lexsort((all_idx, -all_s))[:n]  # by score, ties by index: deterministic
        changed = bool(np.any(order >= len(top_idx)))
        return all_idx[order], all_s[order], changed


def sa_optimize(space: ConfigSpace, score_fn: ScoreFn, n_results: int,
                exclude: Collection[int] = (), rng: RngLike = None, *, n_chains: int = 128,
                n_iter: int = 500, temp: tuple[float, float] = (1.0, 0.0),
                early_stop: int = 50) -> list[int]:
    """One-shot simulated annealing: the top ``n_results`` valid indices by ``score_fn``
    (higher is better) outside ``exclude``, best first. Seeded by ``rng``."""
    sa = SimulatedAnnealing(space, n_chains=n_chains, n_iter=n_iter, temp=temp,
                            early_stop=early_stop, persistent=False, rng=rng)
    return sa.optimize(score_fn, n_results, exclude)
