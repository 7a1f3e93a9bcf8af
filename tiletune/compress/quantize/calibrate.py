"""Activation ranges from calibration data: min/max, percentile and KL divergence.

Statistics stream over batches (never all activations in memory): the running min/max and
a histogram of the non-zero ``|x|`` over ``[0, top)`` whose range doubles when a batch
exceeds it (pairs of bins merge, so the histogram stays exact at the coarser width). Exact
zeros (half of a ReLU output) are counted apart: they fit any threshold and would swamp
KL's distributions. From it:

* ``minmax``: the observed ``[min, max]``;
* ``percentile``: ``|x|`` clipped at the given percentile of the histogram;
* ``kl``: TensorRT's entropy calibration: for each candidate threshold ``i`` bins, the
  clipped reference distribution ``P`` (outliers folded into the last bin) and its
  quantization ``Q`` to ``levels`` bins (expanded back over P's non-empty bins); the
  threshold minimises ``KL(P || Q)``. With fewer non-zero samples than histogram bins
  (e.g. a pooled classifier input seen on a few batches) P is no distribution: min/max.

The range is then ``[max(min, -T), min(max, T)]`` (non-negative data keeps ``lo = 0``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tiletune.errors import CompressError

METHODS = ("minmax", "percentile", "kl")


@dataclass(frozen=True)
class Range:
    """A calibrated real range ``[lo, hi]`` (always contains 0)."""

    lo: float
    hi: float


class Observer:
    """Streaming statistics of one tensor over calibration batches."""

    def __init__(self, bins: int = 2048) -> None:
        if bins < 256 or bins % 2:
            raise CompressError(f"histogram bins must be an even number >= 256, got {bins}")
        self.bins = bins
        self.hist = np.zeros(bins, np.int64)
        self.top = 0.0  # histogram covers |x| in [0, top)
        self.lo, self.hi = np.inf, -np.inf
        self.count = 0
        self.zeros = 0  # exact zeros, kept out of the histogram

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise CompressError("calibration data contains NaN or infinity")
        x = x.astype(np.float64, copy=False).ravel()
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        a = np.abs(x)
        amax = float(a.max())
        if self.top == 0.0:
            self.top = amax * (1 + 1e-6) if amax > 0 else 1.0
        while amax >= self.top:  # double the range: merge bin pairs
            self.hist = np.concatenate([self.hist.reshape(-1, 2).sum(axis=1),
                                        np.zeros(self.bins // 2, np.int64)])
            self.top *= 2
        nz = a[a != 0]  # exact zeros (ReLU outputs, padding) fit any threshold: not in P
        idx = np.minimum((nz * (self.bins / self.top)).astype(np.int64), self.bins - 1)
        self.hist += np.bincount(idx, minlength=self.bins)
        self.count += x.size
        self.zeros += x.size - nz.size

    @property
    def bin_width(self) -> float:
        return self.top / self.bins

    def _check(self) -> None:
        if self.count == 0:
            raise CompressError("the calibration set is empty: give at least one input batch")

    def threshold(self, method: str, percentile: float = 99.99, levels: int = 128) -> float:
        """The clipping threshold T of ``|x|`` for ``method``."""
        self._check()
        if method == "minmax":
            return max(abs(self.lo), abs(self.hi))
        if method == "percentile":
            if not 0 < percentile <= 100:
                raise CompressError(f"percentile must be in (0, 100], got {percentile}")
            cdf = (self.zeros + np.cumsum(self.hist)) / self.count
            i = int(np.searchsorted(cdf, percentile / 100.0))
            return min((i + 1) * self.bin_width, max(abs(self.lo), abs(self.hi)))
        if method == "kl":
            if self.zeros == self.count:
                return 0.0
            if self.count - self.zeros < self.bins:  # too few samples for a distribution
                return max(abs(self.lo), abs(self.hi))
            return kl_threshold(self.hist, levels) * self.bin_width
        raise CompressError(f"unknown calibration method {method!r}; use one of {METHODS}")

    def range(self, method: str = "kl", percentile: float = 99.99, levels: int = 128) -> Range:
        t = self.threshold(method, percentile, levels)
        lo = 0.0 if self.lo >= 0 else max(self.lo, -t)
        hi = max(min(self.hi, t), 0.0)
        if hi - lo <= 0:
            hi = lo + 1e-8
        return Range(min(lo, 0.0), hi)


def kl_threshold(hist: np.ndarray, levels: int = 128) -> float:
    """The threshold (in bins) minimising ``KL(P || Q)`` (TensorRT entropy calibration)."""
    hist = np.asarray(hist, np.float64)
    nz = np.nonzero(hist)[0]
    if nz.size == 0:
        raise CompressError("the calibration histogram is empty")
    last = int(nz[-1]) + 1
    if last <= levels:  # every value fits the levels exactly: no clipping needed
        return float(last)
    best, best_i = np.inf, last
    tail = np.cumsum(hist[::-1])[::-1]  # tail[i] = sum(hist[i:])
    for i in range(levels, last + 1):
        kl = kl_divergence_at(hist, i, levels, tail)
        if kl < best:
            best, best_i = kl, i
    return float(best_i)


def kl_divergence_at(hist: np.ndarray, i: int, levels: int = 128,
                     tail: np.ndarray | None = None) -> float:
    """``KL(P || Q)`` of clipping ``hist`` at ``i`` bins and quantizing to ``levels``."""
    hist = np.asarray(hist, np.float64)
    p = hist[:i].copy()
    if i < len(hist):
        p[-1] += (tail[i] if tail is not None else hist[i:].sum())
    edges = np.linspace(0, i, levels + 1).astype(np.int64)
    src = hist[:i]
    nonzero = src != 0
    group = np.repeat(np.arange(levels), np.diff(edges))
    sums = np.bincount(group, weights=src, minlength=levels)
    counts = np.bincount(group, weights=nonzero, minlength=levels)
    q = np.where(nonzero, sums[group] / np.maximum(counts[group], 1), 0.0)
    if q.sum() == 0:
        return float("inf")
    pn, qn = p / p.sum(), q / q.sum()
    mask = pn > 0
    qn = np.where(mask & (qn == 0), 1e-12, qn)
    return float(np.sum(pn[mask] * np.log(pn[mask] / qn[mask])))


def calibrate(batches: Iterable[np.ndarray], method: str = "kl", *, percentile: float = 99.99,
              levels: int = 128, bins: int = 2048) -> Range:
    """The range of one tensor over calibration ``batches`` by ``method``."""
    if method not in METHODS:
        raise CompressError(f"unknown calibration method {method!r}; use one of {METHODS}")
    obs = Observer(bins)
    for b in batches:
        obs.update(b)
    return obs.range(method, percentile, levels)
