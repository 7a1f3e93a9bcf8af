"""A NumPy-only cost model: ridge regression on random Fourier features.

Used when xgboost is not importable. Approximates kernel ridge regression with an RBF
kernel: features are standardised, mapped through ``D`` random cosines (bandwidth and ridge
strength chosen by generalised cross-validation), plus the raw linear terms.
"""

from __future__ import annotations

import numpy as np

from tiletune.runtime.threads import one_blas_thread

from .cost_model import CostModel


class NumpyCostModel(CostModel):
    """RBF ridge regression on throughput / max via random Fourier features."""

    def __init__(self, seed: int = 0, *, n_features: int = 256,
                 bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0),
                 alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)) -> None:
        self.seed, self.n_features = seed, n_features
        self.bandwidths, self.alphas = bandwidths, alphas
        self.fitted = False
        self._mu = self._sd = self._W = self._b = self._coef = None

    def _phi(self, Z: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        rff = np.sqrt(2.0 / W.shape[1]) * np.cos(Z @ W + b)
        return np.hstack([np.ones((len(Z), 1)), Z, rff])

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        with one_blas_thread():
            self._fit(*self._check(X, y))

    def _fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None
        if len(y) == 0 or y.max() <= 0:
            self.fitted, self._coef = False, None
            return
        y = y / y.max()
        self._mu, sd = X.mean(axis=0), X.std(axis=0)
        self._sd = np.where(sd > 1e-12, sd, 1.0)
        Z = (X - self._mu) / self._sd
        rng = np.random.default_rng(self.seed)
        sub = Z[rng.choice(len(Z), size=min(len(Z), 256), replace=False)]
        dist = np.sqrt(((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1))
        median = float(np.median(dist[dist > 0])) if np.any(dist > 0) else 1.0
        G = rng.standard_normal((Z.shape[1], self.n_features))
        b = rng.uniform(0, 2 * np.pi, self.n_features)
        best = (np.inf, None)
        for scale in self.bandwidths:
            W = G / (scale * median)
            P = self._phi(Z, W, b)
            lam, V = np.linalg.eigh(P.T @ P)  # ridge path from one eigendecomposition
            lam = np.clip(lam, 0.0, None)
            Vty = V.T @ (P.T @ y)
            for alpha in self.alphas:
                coef = V @ (Vty / (lam + alpha))
                resid = y - P @ coef
                dof = len(y) - float(np.sum(lam / (lam + alpha)))
                gcv = len(y) * float(resid @ resid) / max(dof, 1e-3) ** 2
                if gcv < best[0]:
                    best = (gcv, (W, coef))
        assert best[1] is not None
        self._W, self._coef = best[1]
        self._b = b
        self.fitted = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        X, _ = self._check(X)
        if self._coef is None:
            return np.zeros(len(X))
        with one_blas_thread():
            Z = (X - self._mu) / self._sd
            return self._phi(Z, self._W, self._b) @ self._coef
