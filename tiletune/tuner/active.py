"""Active learning for the autotuner: BTED initialisation and BAO search.

Reconstruction of Sun et al., "Deep Neural Network Hardware Deployment Optimization via
Advanced Active Learning" (DATE 2021); only the abstract is public, so the exact equations
here are ours (see notes/tuning.md §4.1).

* **BTED** (batch transductive experimental design, Yu et al. ICML 2006) picks the first batch
  so that a kernel-ridge model fitted on it has the least total predictive variance over a
  candidate pool.
* **BAO** (bootstrap-guided adaptive optimisation) fits an ensemble of cost models on bootstrap
  resamples of the measurements and measures the candidates maximising ``mean + kappa * std``,
  with ``kappa`` adapted to the progress of the search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .cost_model import CostModel, make_cost_model

__all__ = [
    "BootstrapEnsemble",
    "KappaSchedule",
    "bted_select",
    "default_model_factory",
    "median_bandwidth",
    "rbf_kernel",
    "standardize",
]


# --------------------------------------------------------------------------- kernels


def standardize(features: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance; constant columns become 0."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {x.shape}")
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def rbf_kernel(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """k(u, v) = exp(-||u - v||² / (2 sigma²))."""
    return np.exp(-_sq_dists(a, b) / (2.0 * sigma * sigma))


def median_bandwidth(x: np.ndarray, rng: np.random.Generator, max_points: int = 500) -> float:
    """Median heuristic: sigma = median pairwise distance (over <= max_points random rows)."""
    if len(x) > max_points:
        x = x[rng.choice(len(x), max_points, replace=False)]
    d = _sq_dists(x, x)[np.triu_indices(len(x), k=1)]
    d = d[d > 1e-12]
    return float(np.sqrt(np.median(d))) if d.size else 1.0


# --------------------------------------------------------------------------- BTED


def bted_select(
    features: np.ndarray,
    n: int,
    seed: int | None = 0,
    mu: float = 0.1,
    subset: int = 500,
    reference: int = 1000,
    sigma: float | None = None,
) -> list[int]:
    """Pick ``n`` diverse, representative rows of a candidate pool by greedy TED.

    Features are standardised column-wise and compared with an RBF kernel whose bandwidth is
    the median pairwise distance (or ``sigma``). With ``K`` the pool kernel, TED picks, one at a
    time, the candidate ``x`` maximising the reduction of the pool's total posterior variance

        score(x) = ||K[T, x]||² / (K[x, x] + mu)

    then deflates ``K <- K - K[:, x] K[x, :] / (K[x, x] + mu)``, i.e. conditions a GP with noise
    ``mu`` on ``x``. The deflated kernel is kept in low-rank form ``K - L Lᵀ`` (one column of
    ``L`` per pick), so a pick costs O(|T| |C| m) for ``m`` picks so far.

    Scaling (stochastic greedy): the variance is measured on a fixed random reference set ``T``
    of ``reference`` pool rows, and each pick scores a fresh random subset ``C`` of ``subset``
    not-yet-picked rows. With a pool no larger than both, this is exact sequential TED.

    Returns positions into ``features`` (no duplicates, at most ``len(features)``); seeded.
    """
    x = standardize(features)
    n_pool = len(x)
    n = min(int(n), n_pool)
    if n <= 0:
        return []
    rng = np.random.default_rng(seed)
    if sigma is None:
        sigma = median_bandwidth(x, rng)
    ref = np.arange(n_pool) if n_pool <= reference else np.sort(
        rng.choice(n_pool, reference, replace=False))
    k_ref = rbf_kernel(x[ref], x, sigma)            # K[T, :], kept for the whole selection
    low_rank = np.zeros((n_pool, n))                # L: K_deflated = K - L Lᵀ (k(x,x) = 1)
    picked: list[int] = []
    free = np.ones(n_pool, dtype=bool)
    for m in range(n):
        cand = np.flatnonzero(free)
        if len(cand) > subset:
            cand = np.sort(rng.choice(cand, subset, replace=False))
        lr = low_rank[:, :m]
        cols = k_ref[:, cand] - lr[ref] @ lr[cand].T      # deflated K[T, C]
        diag = 1.0 - (lr[cand] ** 2).sum(1)                # deflated K[C, C] diagonal
        score = (cols**2).sum(0) / (np.maximum(diag, 0.0) + mu)
        best = int(cand[int(np.argmax(score))])
        # new column of L: deflated K[:, best] / sqrt(K[best, best] + mu), over the whole pool
        col = rbf_kernel(x, x[best : best + 1], sigma)[:, 0] - lr @ lr[best]
        low_rank[:, m] = col / np.sqrt(max(col[best], 0.0) + mu)
        picked.append(best)
        free[best] = False
    return picked


# --------------------------------------------------------------------------- bootstrap ensemble


class BootstrapEnsemble(CostModel):
    """``n_models`` cost models, each fitted on a bootstrap resample of the data.

    ``model_factory(seed)`` returns a fresh :class:`CostModel`. Each replica ``r`` is fitted on
    ``n`` rows drawn with replacement, then *calibrated*: its raw scores ``s_r(x)`` (whose scale
    is arbitrary, e.g. a rank loss or a per-resample ``y / max``) are mapped by least squares
    on all the training rows to ``a_r s_r(x) + b_r ≈ y / max(y)`` (``a_r >= 0``). Then

        mean(x) = 1/M sum_r p_r(x),   std(x) = sqrt(1/(M-1) sum_r (p_r(x) - mean(x))²)

    with ``p_r`` the calibrated predictions: replicas agree where the data pin the function
    down and disagree away from it, which is BAO's estimate of the model's uncertainty.
    """

    def __init__(self, model_factory: Callable[[int], CostModel] | None = None,
                 n_models: int = 5, seed: int = 0):
        if n_models < 2:
            raise ValueError("a bootstrap ensemble needs n_models >= 2")
        self.model_factory = model_factory or default_model_factory
        self.n_models = int(n_models)
        self.seed = seed
        self.models: list[CostModel] = []
        self.calibration: list[tuple[float, float]] = []
        self.fitted = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X, y = self._check(X, y)
        if len(X) == 0:
            raise ValueError("fit needs at least one row")
        self.models, self.calibration = [], []
        self.fitted = bool(y.max() > 0)
        if not self.fitted:
            return
        target = y / y.max()
        rng = np.random.default_rng(self.seed)
        for m in range(self.n_models):
            idx = rng.integers(0, len(X), len(X))
            if y[idx].max() <= 0:  # a resample without one success: keep the best row
                idx[0] = int(np.argmax(y))
            model = self.model_factory(int(self.seed) if m == 0 else int(rng.integers(2**31)))
            model.fit(X[idx], y[idx])
            self.models.append(model)
            self.calibration.append(_calibrate(np.asarray(model.predict(X), float), target))

    def predict_all(self, X: np.ndarray) -> np.ndarray:
        """Calibrated predictions of every replica, shape ``(n_models, len(X))``."""
        X, _ = self._check(X)
        if not self.models:
            return np.zeros((self.n_models, len(X)))
        return np.stack([a * np.asarray(m.predict(X), dtype=np.float64) + b
                         for m, (a, b) in zip(self.models, self.calibration)])

    def predict_mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.predict_all(X)
        return p.mean(0), p.std(0, ddof=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_mean_std(X)[0]


def _calibrate(score: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a, b`` with ``a score + b ≈ target`` and ``a >= 0``."""
    var = float(np.var(score))
    a = float(np.cov(score, target, bias=True)[0, 1] / var) if var > 1e-18 else 0.0
    a = max(a, 0.0)
    return a, float(target.mean() - a * score.mean())


def default_model_factory(seed: int) -> CostModel:
    """XGBoost regression (falls back to the NumPy model without xgboost)."""
    return make_cost_model("xgb-reg", seed=seed)


# --------------------------------------------------------------------------- adaptive kappa


class KappaSchedule:
    """Exploration weight of the BAO acquisition ``mean + kappa * std``.

        kappa = clip(kappa0 * 2^(-n / half_life) * (1 + boost * stall), kappa_min, kappa_max)

    ``n`` is the number of measurements so far (kappa halves every ``half_life`` trials:
    explore early, exploit late) and ``stall`` the number of consecutive batches that did not
    raise the best measured throughput (each adds ``boost * kappa0`` back, so a search stuck
    near a local optimum explores again; the first improvement resets it).
    """

    def __init__(self, kappa0: float = 2.0, half_life: float = 128.0, boost: float = 0.5,
                 kappa_min: float = 0.05, kappa_max: float = 4.0):
        self.kappa0, self.half_life, self.boost = kappa0, half_life, boost
        self.kappa_min, self.kappa_max = kappa_min, kappa_max
        self.stall = 0
        self.best = -np.inf

    def observe(self, batch_best: float) -> None:
        """Record the best throughput of the latest batch."""
        if batch_best > self.best * (1 + 1e-9) or self.best == -np.inf:
            self.best = max(self.best, batch_best)
            self.stall = 0
        else:
            self.stall += 1

    def __call__(self, n_measured: int) -> float:
        k = self.kappa0 * 2.0 ** (-n_measured / self.half_life) * (1 + self.boost * self.stall)
        return float(np.clip(k, self.kappa_min, self.kappa_max))


def ucb_pick(mean: np.ndarray, std: np.ndarray, kappa: float, n: int) -> list[int]:
    """Positions of the ``n`` largest ``mean + kappa * std`` (ties broken by position)."""
    acq = np.asarray(mean) + kappa * np.asarray(std)
    order = np.argsort(-acq, kind="stable")
    return [int(i) for i in order[:n]]


def _dedup(seq: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(int(s) for s in seq))
