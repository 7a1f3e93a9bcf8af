"""Winograd minimal-filtering matrices F(m, r), generated from interpolation points.

Toom-Cook (Lavin & Gray's construction): the linear convolution ``w = u * g`` of a length-m
signal and a length-r filter is a polynomial product of degree ``alpha - 1`` (``alpha = m +
r - 1``), fixed by its values at ``alpha`` points: ``alpha - 1`` finite points ``a_i`` and the
point at infinity (the leading coefficient). With ``E_n`` the ``alpha x n`` evaluation matrix
of degree-(n-1) polynomials at those points and ``V = E_alpha``::

    w = V^-1 [(E_m u) . (E_r g)]               # evaluate, multiply pointwise, interpolate

The correlation a convolution layer computes, ``y_k = sum_j d_{k+j} g_j``, is the transpose
of ``u -> w``, so ``y = E_m^T [(E_r g) . (V^-T d)]``, i.e. Lavin's ``Y = A^T[(G g).(B^T d)]``
with ``A = E_m``, ``G = E_r`` and ``B^T = V^-T``. Row ``i`` of ``V^-T`` holds the coefficients
of the Lagrange basis polynomial ``L_i(x) = prod_{j!=i}(x - a_j) / f_i``; scaling it by
``f_i`` (and row ``i`` of ``G`` by ``1 / f_i``) leaves the product unchanged and keeps ``B^T``
integral for integer points, as in Lavin's published matrices. Everything is computed in
exact rational arithmetic; the 2-D transform is the 1-D one applied along both axes:
``Y = A^T [(G g G^T) . (B^T d B)] A``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tiletune.errors import ScheduleError

#: Interpolation points of each output tile size m (for r = 3); infinity is implied.
#: Small integers first, then +-1/2 (the usual choice: keeps the error growth modest).
POINTS: dict[int, tuple[Fraction, ...]] = {
    2: (Fraction(0), Fraction(1), Fraction(-1)),
    4: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2)),
    6: (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2),
        Fraction(-1, 2)),
}

Matrix = tuple[tuple[Fraction, ...], ...]


@dataclass(frozen=True)
class WinogradMatrices:
    """``A^T`` (m x alpha), ``G`` (alpha x r) and ``B^T`` (alpha x alpha), exact rationals."""

    m: int
    r: int
    AT: Matrix
    G: Matrix
    BT: Matrix

    @property
    def alpha(self) -> int:
        return self.m + self.r - 1

    def as_float64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A^T, G, B^T)`` as float64 arrays."""
        return tuple(np.array([[float(x) for x in row] for row in mat])  # type: ignore
                     for mat in (self.AT, self.G, self.BT))


def _poly_mul_linear(coeffs: list[Fraction], root: Fraction) -> list[Fraction]:
    """Coefficients (lowest degree first) of ``p(x) * (x - root)``."""
    out = [Fraction(0)] * (len(coeffs) + 1)
    for i, c in enumerate(coeffs):
        out[i + 1] += c
        out[i] -= c * root
    return out


def _evaluation(points: tuple[Fraction, ...], n: int) -> list[list[Fraction]]:
    """``alpha x n``: row i evaluates a degree-(n-1) polynomial at point i; the last row is
    the point at infinity (the leading coefficient)."""
    rows = [[p ** j for j in range(n)] for p in points]
    rows.append([Fraction(0)] * (n - 1) + [Fraction(1)])
    return rows


def _freeze(rows: list[list[Fraction]]) -> Matrix:
    return tuple(tuple(r) for r in rows)


@functools.cache
def winograd_matrices(m: int, r: int = 3, points: tuple[Fraction, ...] | None = None
                      ) -> WinogradMatrices:
    """The F(m, r) matrices from ``points`` (``m + r - 2`` distinct finite points; default
    :data:`POINTS`)."""
    alpha = m + r - 1
    if points is None:
        if r != 3 or m not in POINTS:
            raise ScheduleError(f"no default interpolation points for F({m}, {r}); "
                                f"known: F(m, 3) with m in {sorted(POINTS)}")
        points = POINTS[m]
    points = tuple(Fraction(p) for p in points)
    if len(points) != alpha - 1 or len(set(points)) != len(points):
        raise ScheduleError(f"F({m}, {r}) needs {alpha - 1} distinct finite points, got "
                            f"{points}")
    AT = [list(col) for col in zip(*_evaluation(points, m))]  # A = E_m
    G = _evaluation(points, r)
    BT = []
    for i, a in enumerate(points):
        basis = [Fraction(1)]
        f = Fraction(1)
        for j, b in enumerate(points):
            if j != i:
                basis = _poly_mul_linear(basis, b)
                f *= a - b
        BT.append(basis + [Fraction(0)])  # f_i * L_i(x): degree alpha - 2
        G[i] = [g / f for g in G[i]]
    monic = [Fraction(1)]
    for b in points:
        monic = _poly_mul_linear(monic, b)
    BT.append(monic)  # the point at infinity: prod_j (x - a_j)
    return WinogradMatrices(m, r, _freeze(AT), _freeze(G), _freeze(BT))


def filtering_error(mats: WinogradMatrices) -> list[tuple[int, int, int, Fraction]]:
    """Entries where the trilinear identity ``sum_i AT[k,i] G[i,j] BT[i,l] = [l == k + j]``
    fails (empty when the matrices compute F(m, r) exactly), in exact arithmetic."""
    bad = []
    for k in range(mats.m):
        for j in range(mats.r):
            for ll in range(mats.alpha):
                v = sum(mats.AT[k][i] * mats.G[i][j] * mats.BT[i][ll] for i in range(mats.alpha))
                if v != (1 if ll == k + j else 0):
                    bad.append((k, j, ll, v))
    return bad
