"""Magnitude pruning of weight arrays at several granularities.

A weight's axis 0 is its output channels (conv OIHW, dense ``[out, in]``); the *matrix view*
is ``W.reshape(out, -1)`` with the columns in ``(in_channel, kh, kw)`` order. Units scored by
their mean ``|w|`` and removed smallest first:

    element   single weights
    block     ``block=(rows, cols)`` tiles of the matrix view (``(16, 1)``: 16 output
              channels of one input element, what the BSR kernels vectorise; ``(1, 16)``:
              16 consecutive columns of one output channel)
    kernel    the ``kh x kw`` kernel of one (output, input) channel pair (conv only)
    filter    a whole output channel (the layer's output shrinks: ``shrink_filters``)
    channel   a whole input channel
    bank      bank-balanced: every row of the matrix view is cut into banks of ``bank``
              consecutive weights and each bank keeps the same number of its largest ones,
              so every row has the same non-zero count (no load imbalance, no CSR padding)

The requested sparsity is reached exactly in units of the granularity (rounded to whole
units). ``prune`` takes ``{name: array}`` and a sparsity (one for all, or per name).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tiletune.errors import CompressError

GRANULARITIES = ("element", "block", "kernel", "filter", "channel", "bank")


@dataclass
class Pruned:
    """Pruned weights, their keep-masks, and the sparsity reached per weight."""

    weights: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    sparsity: dict[str, float] = field(default_factory=dict)


def _check_sparsity(s: float, name: str) -> float:
    s = float(s)
    if not 0.0 <= s < 1.0:
        raise CompressError(f"sparsity of {name} must be in [0, 1), got {s}")
    return s


def _drop_smallest(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep-mask of ``scores``' shape without the ``round(sparsity * n)`` smallest units."""
    flat = scores.ravel()
    n_drop = int(round(sparsity * flat.size))
    keep = np.ones(flat.size, bool)
    if n_drop:
        keep[np.argsort(flat, kind="stable")[:n_drop]] = False
    return keep.reshape(scores.shape)


def magnitude_mask(w: np.ndarray, sparsity: float, granularity: str = "element", *,
                   block: tuple[int, int] = (16, 1), bank: int | None = None,
                   name: str = "weight") -> np.ndarray:
    """The keep-mask (``w``'s shape) of magnitude pruning at ``granularity``."""
    s = _check_sparsity(sparsity, name)
    w = np.asarray(w)
    if w.ndim < 1 or w.size == 0:
        raise CompressError(f"cannot prune the empty weight {name}")
    if granularity not in GRANULARITIES:
        raise CompressError(f"unknown granularity {granularity!r}; use one of {GRANULARITIES}")
    a = np.abs(w.astype(np.float64))
    rows = a.reshape(a.shape[0], -1)
    if granularity == "element":
        return _drop_smallest(a, s)
    if granularity == "filter":
        keep = _drop_smallest(rows.mean(axis=1), s)
        return np.broadcast_to(keep.reshape((-1,) + (1,) * (w.ndim - 1)), w.shape).copy()
    if granularity == "channel":
        if w.ndim < 2:
            raise CompressError(f"channel pruning of {name} needs a weight with input channels")
        per_in = a.reshape(a.shape[0], a.shape[1], -1).mean(axis=(0, 2))
        keep = _drop_smallest(per_in, s)
        return np.broadcast_to(keep.reshape((1, -1) + (1,) * (w.ndim - 2)), w.shape).copy()
    if granularity == "kernel":
        if w.ndim != 4:
            raise CompressError(f"kernel pruning needs a 4-D conv weight; {name} is {w.shape}")
        keep = _drop_smallest(a.mean(axis=(2, 3)), s)
        return np.broadcast_to(keep[:, :, None, None], w.shape).copy()
    if granularity == "block":
        br, bc = block
        R, C = rows.shape
        if br < 1 or bc < 1 or R % br or C % bc:
            raise CompressError(f"block {block} does not tile the {R} x {C} matrix of {name}")
        tiles = rows.reshape(R // br, br, C // bc, bc).mean(axis=(1, 3))
        keep = _drop_smallest(tiles, s)
        return np.repeat(np.repeat(keep, br, axis=0), bc, axis=1).reshape(w.shape)
    R, C = rows.shape  # bank
    size = C if bank is None else int(bank)
    if size < 1 or C % size:
        raise CompressError(f"bank size {size} does not divide the {C} columns of {name}")
    banks = rows.reshape(R, C // size, size)
    n_keep = size - int(round(s * size))
    order = np.argsort(-banks, axis=2, kind="stable")
    keep = np.zeros(banks.shape, bool)
    np.put_along_axis(keep, order[:, :, :n_keep], True, axis=2)
    return keep.reshape(w.shape)


def prune(weights: Mapping[str, np.ndarray], sparsity: float | Mapping[str, float],
          granularity: str = "element", *, block: tuple[int, int] = (16, 1),
          bank: int | None = None, skip: Sequence[str] = ()) -> Pruned:
    """Magnitude-prune every weight of ``weights`` (names in ``skip`` stay dense).

    ``sparsity``: one fraction for all, or ``{name: fraction}`` (missing names stay dense).
    """
    if not weights:
        raise CompressError("prune: no weights given")
    out = Pruned()
    for name, w in weights.items():
        s = (sparsity.get(name, 0.0) if isinstance(sparsity, Mapping) else sparsity)
        if name in skip:
            s = 0.0
        mask = magnitude_mask(w, s, granularity, block=block, bank=bank, name=name)
        out.weights[name] = np.where(mask, w, 0).astype(np.asarray(w).dtype)
        out.masks[name] = mask
        out.sparsity[name] = 1.0 - float(mask.mean())
    return out


def shrink_filters(weight: np.ndarray, bias: np.ndarray | None, consumer: np.ndarray,
                   sparsity: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray,
                                             np.ndarray]:
    """Filter pruning that removes channels instead of storing zeros: the producer loses its
    weakest output channels and the consumer the matching input channels.

    Returns ``(weight, bias, consumer, kept_channel_indices)`` with smaller shapes.
    """
    keep = magnitude_mask(weight, sparsity, "filter").reshape(weight.shape[0], -1)[:, 0]
    if consumer.ndim < 2 or consumer.shape[1] != weight.shape[0]:
        raise CompressError(f"consumer weight {consumer.shape} does not read the "
                            f"{weight.shape[0]} channels of the pruned layer")
    idx = np.nonzero(keep)[0]
    return (weight[idx].copy(), None if bias is None else bias[idx].copy(),
            consumer[:, idx].copy(), idx)
