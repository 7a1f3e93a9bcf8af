"""Folding enumerated loop nests into VTA instructions (what TVM's FoldUopLoop and
InjectDMAIntrin do, here on concrete index arrays).

Every innermost nest arrives as index arrays over its loop grid (one array per operand, e.g.
ACC, INP and WGT entries of a GEMM). ``fold_loops`` turns them into micro-coded loops::

    for host...:                                   # one GEMM/ALU instruction each
      for i in range(iter_out): for j in range(iter_in):
        for uop in kernel: op(uop + i*factor_out + j*factor_in)

Axes along which every operand moves by a constant step are *affine*; chains of affine axes
that compose (``stride_a == stride_b * extent_b``) merge into one. The two largest mergeable
groups become ``iter_out``/``iter_in`` (their steps become the factors), the micro-op kernel
enumerates as many of the remaining axes as fit ``max_kernel``, the rest are host loops. The
callers only fold order-free nests (accumulation, element-wise ops with distinct outputs), so
axes may be permuted.

``plan_dma`` turns a copy between SRAM and DRAM into 2-D DMAs (``y_size`` rows of ``x_size``
elements, DRAM row stride ``x_stride``), with zero padding for masked-out border entries.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tiletune.backends.vta.evaluate import strides
from tiletune.errors import VTAError


@dataclass(frozen=True)
class LoopInsn:
    """One GEMM/ALU instruction: a micro-op kernel (K x operands) and its two loops."""

    uops: np.ndarray
    iter_out: int
    iter_in: int
    factor_out: tuple[int, ...]
    factor_in: tuple[int, ...]

    @property
    def iterations(self) -> int:
        return self.iter_out * self.iter_in * len(self.uops)


@dataclass(frozen=True)
class Dma:
    """One 2-D DMA: ``y_size`` rows of ``x_size`` elements, with (y0, y1, x0, x1) padding."""

    sram: int
    dram: int
    y_size: int
    x_size: int
    x_stride: int
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)


def restrict_to_box(arrays: Sequence[np.ndarray], mask: np.ndarray | None, what: str
                    ) -> list[np.ndarray] | None:
    """Slice the arrays to the box the mask selects (None: nothing selected).

    Guards from tiles that overhang the tensor select a box of the grid; anything else cannot
    be expressed with hardware loops.
    """
    if mask is None:
        return list(arrays)
    mask = np.broadcast_to(mask, arrays[0].shape)
    if mask.all():
        return list(arrays)
    if not mask.any():
        return None
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    box_t = tuple(box)
    if not mask[box_t].all() or mask.sum() != mask[box_t].size:
        raise VTAError(f"{what}: the guarded iterations do not form a box of the loop nest, "
                       "so they cannot be folded into hardware loops; use tile sizes that "
                       "divide the extents")
    return [np.ascontiguousarray(a[box_t]) for a in arrays]


@dataclass
class _Group:
    axes: list[int]
    extent: int
    stride: tuple[int, ...]


def _groups(shape: tuple[int, ...], st: list[tuple[int, ...] | None]) -> list[_Group]:
    """Merge affine axes into chains that compose (order-free: any permutation is allowed)."""
    groups = [_Group([k], shape[k], s) for k, s in enumerate(st) if s is not None and shape[k] > 1]
    merged = True
    while merged:
        merged = False
        for a, b in itertools.permutations(range(len(groups)), 2):
            ga, gb = groups[a], groups[b]
            if all(sa == sb * gb.extent for sa, sb in zip(ga.stride, gb.stride)):
                groups[a] = _Group(ga.axes + gb.axes, ga.extent * gb.extent, gb.stride)
                del groups[b]
                merged = True
                break
    return groups


def _best_kernel(axes: list[int], shape: tuple[int, ...], limit: int) -> list[int]:
    """The subset of ``axes`` with the largest product <= limit (ties: fewer host loops)."""
    if len(axes) > 12:  # greedy for absurd nests
        chosen, size = [], 1
        for k in sorted(axes, key=lambda k: shape[k]):
            if size * shape[k] <= limit:
                chosen.append(k)
                size *= shape[k]
        return sorted(chosen)
    best: tuple[int, ...] = ()
    best_size = 1
    for r in range(1, len(axes) + 1):
        for combo in itertools.combinations(axes, r):
            size = math.prod(shape[k] for k in combo)
            if best_size < size <= limit:
                best, best_size = combo, size
    return sorted(best)


def _enumerate(arrays: Sequence[np.ndarray], fixed: Sequence[int], outer: list[int],
               inner: list[int]) -> np.ndarray:
    """Stack operand arrays at index 0 of ``fixed`` axes: shape (|outer|, |inner|, operands)."""
    ndim = arrays[0].ndim
    index = tuple(0 if k in fixed else slice(None) for k in range(ndim))
    rest = [k for k in range(ndim) if k not in fixed]
    order = [rest.index(k) for k in outer + inner]
    n_out = math.prod(arrays[0].shape[k] for k in outer)
    n_in = math.prod(arrays[0].shape[k] for k in inner)
    out = np.empty((n_out, n_in, len(arrays)), np.int64)
    for o, a in enumerate(arrays):
        out[:, :, o] = np.transpose(a[index], order).reshape(n_out, n_in)
    return out


def fold_loops(arrays: Sequence[np.ndarray], *, max_iter: int, max_factor: Sequence[int],
               max_kernel: int) -> list[LoopInsn]:
    """Cover every grid point with GEMM/ALU instructions (see the module docstring)."""
    shape = arrays[0].shape
    st = strides(arrays)
    groups = [g for g in _groups(shape, st)
              if g.extent <= max_iter and all(0 <= s <= m for s, m in zip(g.stride, max_factor))]
    groups.sort(key=lambda g: -g.extent)
    loops = groups[:2]
    fixed = [k for g in loops for k in g.axes] + [k for k in range(len(shape)) if shape[k] == 1]
    rest = [k for k in range(len(shape)) if k not in fixed]
    kernel = _best_kernel(rest, shape, max_kernel)
    host = [k for k in rest if k not in kernel]
    table = _enumerate(arrays, fixed, host, kernel)
    zeros = tuple(0 for _ in arrays)
    (it_out, f_out), (it_in, f_in) = [(g.extent, g.stride) for g in loops] + [(1, zeros)] * (
        2 - len(loops))
    return [LoopInsn(table[h], it_out, it_in, f_out, f_in) for h in range(len(table))]


def plan_dma(sram: np.ndarray, dram: np.ndarray, mask: np.ndarray | None, *, max_size: int,
             max_pad: int, what: str) -> list[Dma]:
    """2-D DMAs copying ``dram[p] -> sram[p]`` for every grid point ``p``.

    Masked-out points are zeros in SRAM: they must form a rectangular border around the
    copied block of each DMA (its padding). ``mask=None`` means every point is copied.
    """
    if mask is not None:
        mask = np.broadcast_to(mask, sram.shape)
        if mask.all():
            mask = None
    keep = [k for k in range(sram.ndim) if sram.shape[k] > 1]
    sram, dram = sram.reshape([sram.shape[k] for k in keep]), dram.reshape(
        [dram.shape[k] for k in keep])
    if mask is not None:
        mask = mask.reshape(sram.shape)
        return _padded_dma(sram, dram, mask, max_size=max_size, max_pad=max_pad, what=what)
    if sram.ndim == 0:
        return [Dma(int(sram), int(dram), 1, 1, 1)]
    shape = sram.shape
    st = strides([sram, dram])
    groups = [g for g in _groups(shape, st) if g.extent <= max_size]
    x = next((g for g in sorted(groups, key=lambda g: -g.extent) if g.stride == (1, 1)), None)
    x_size = x.extent if x else 1
    rows = [g for g in groups if g is not x and g.stride[0] == x_size
            and 0 < g.stride[1] <= max_size]
    y = max(rows, key=lambda g: g.extent, default=None)
    fixed = (x.axes if x else []) + (y.axes if y else []) + [
        k for k in range(len(shape)) if shape[k] == 1]
    host = [k for k in range(len(shape)) if k not in fixed]
    table = _enumerate([sram, dram], fixed, host, [])
    y_size, x_stride = (y.extent, y.stride[1]) if y else (1, x_size)
    return [Dma(int(s), int(d), y_size, x_size, x_stride) for s, d in table[:, 0, :]]


def _padded_dma(sram: np.ndarray, dram: np.ndarray, mask: np.ndarray, *, max_size: int,
                max_pad: int, what: str) -> list[Dma]:
    shape = sram.shape
    st = strides([sram])
    x_axis = next((k for k in reversed(range(len(shape))) if st[k] == (1,)), None)
    y_axis = None
    if x_axis is not None:
        y_axis = next((k for k in range(len(shape)) if k != x_axis
                       and st[k] == (shape[x_axis],)), None)
    if x_axis is None or y_axis is None:
        raise VTAError(f"{what}: zero padding needs the padded block to be rows x columns "
                       "of contiguous SRAM entries with the padding on its border")
    dst = strides([dram])
    if dst[x_axis] != (1,) or dst[y_axis] is None or not 0 < dst[y_axis][0] <= max_size:
        raise VTAError(f"{what}: the padded copy does not read contiguous DRAM rows")
    row_stride = dst[y_axis][0]
    host = [k for k in range(len(shape)) if k not in (y_axis, x_axis)]
    order = host + [y_axis, x_axis]
    Y, X = shape[y_axis], shape[x_axis]
    m = np.transpose(mask, order).reshape(-1, Y, X)
    s = np.transpose(sram, order).reshape(-1, Y, X)
    d = np.transpose(dram, order).reshape(-1, Y, X)
    out: list[Dma] = []
    for h in range(len(m)):
        rows, cols = np.flatnonzero(m[h].any(axis=1)), np.flatnonzero(m[h].any(axis=0))
        base = int(s[h, 0, 0])
        if not len(rows):
            for y0 in range(0, Y, max_pad):  # nothing to read: zero rows only
                n = min(max_pad, Y - y0)
                out.append(Dma(base + y0 * X, 0, 0, X, X, (n, 0, 0, 0)))
            continue
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if m[h].sum() != (y1 - y0) * (x1 - x0):
            raise VTAError(f"{what}: the entries to copy do not form a rectangle (padding "
                           "must be a border around the copied block)")
        pad = (y0, Y - y1, x0, X - x1)
        if max(pad) > max_pad:
            raise VTAError(f"{what}: padding of {max(pad)} rows/columns exceeds the "
                           f"{max_pad} a LOAD's pad fields can hold")
        out.append(Dma(base, int(d[h, y0, x0]), y1 - y0, x1 - x0, row_stride, pad))
    return out
