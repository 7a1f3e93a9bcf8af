"""Direct conv2d on NCHW, vectorized along the output width, plus its 1x1 specialisation.

The register tile is ``kb`` output channels x ``tw`` output columns (vectors along the
width), so the output is stored in NCHW directly (no unpack) and the input is read in place
(a padding stage only when ``pad > 0``; it is widened so tiles never read past it). The
weight is taken packed as ``[K/kb, C, R, S, kb]`` so the ``kb`` broadcasts of one step share a
cache line. The accumulators live in the output rows; LLVM's LICM (pipeline O2/O3) keeps
them in registers across the reduction::

    for n, ko, oh in parallel:                       # fused
      for owo in range(OW / tw):
        out[.., ko*kb + ki, oh, owo*tw + ow] = 0
        for c, kh, kw:                                # kw unrolled knob
          for ki in unrolled(kb):                     # weight broadcast
            for ow in vectorized(tw):                 # input row, contiguous when stride 1
              out[.., ki, oh, ow] += pad[.., c, oh*s + kh, ow*s + kw] * w[ko, c, kh, kw, ki]

The 1x1 specialisation (``tiling="flat"``, stride 1, no padding) fuses the output rows into one
spatial axis ``p = oh*OW + ow``: the convolution is then exactly a matrix product
``out[k, p] = sum_c w[k, c] * data[c, p]`` over contiguous rows of length H*W.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.conv2d import Conv2dWorkload, reference  # noqa: F401
from tiletune.schedules.machine import divisors, host_machine

__all__ = ["Conv2dWorkload", "build", "choose", "default_config", "is_valid", "pack_weight",
           "reference", "schedule", "space"]


def _flat_ok(w: Conv2dWorkload) -> bool:
    return w.is_1x1 and w.stride == 1 and w.pad == 0


def _width_tiles(w: Conv2dWorkload, tiling: str) -> list[int]:
    lanes = host_machine().vector_lanes
    n = w.OH * w.OW if tiling == "flat" else w.OW
    return [t for t in divisors(n) if t <= 4 * lanes and (t <= lanes or t % lanes == 0)]


def space(w: Conv2dWorkload) -> dict[str, list[Any]]:
    tilings = ["row"] + (["flat"] if _flat_ok(w) else [])
    tiles = sorted(set(_width_tiles(w, "row")) | (set(_width_tiles(w, "flat"))
                                                   if _flat_ok(w) else set()))
    return {
        "tiling": tilings,
        "kb": [d for d in divisors(w.K) if d <= 28],
        "tw": tiles,
        "unroll_kw": [False, True] if w.S > 1 else [False],
        "parallel": [True, False],
    }


def is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """The tile must divide its axis, and kb x vectors must fit the accumulator registers."""
    m = host_machine()
    if cfg["tw"] not in _width_tiles(w, cfg["tiling"]):
        return False
    vectors = -(-cfg["tw"] // m.vector_lanes)
    return cfg["kb"] * vectors <= m.accumulator_budget


def default_config(w: Conv2dWorkload) -> dict[str, Any]:
    m = host_machine()
    tiling = "flat" if _flat_ok(w) else "row"
    tiles = _width_tiles(w, tiling)
    full = [t for t in tiles if t % m.vector_lanes == 0] or tiles
    tw = max(t for t in full if t <= 2 * m.vector_lanes) if any(
        t <= 2 * m.vector_lanes for t in full) else min(full)
    vectors = -(-tw // m.vector_lanes)
    kb = max(d for d in divisors(w.K) if d * vectors <= m.accumulator_budget)
    return {"tiling": tiling, "kb": kb, "tw": tw, "unroll_kw": False, "parallel": True}


def compute(w: Conv2dWorkload, cfg: Mapping[str, Any]):
    kb, tw, s, p = cfg["kb"], cfg["tw"], w.stride, w.pad
    data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    weight = tt.placeholder((w.K // kb, w.C, w.R, w.S, kb), w.dtype, name="weight_packed")
    if p:
        # widen the padded input so the last width tile reads zeros, never past the buffer
        pw = max(w.W + 2 * p, (-(-w.OW // tw) * tw - 1) * s + w.S)
        ph = w.H + 2 * p
        src = tt.compute((w.N, w.C, ph, pw), lambda n, c, h, x: tt.if_then_else(
            tt.all(h >= p, h < w.H + p, x >= p, x < w.W + p),
            data[n, c, tt.min(tt.max(h - p, 0), w.H - 1), tt.min(tt.max(x - p, 0), w.W - 1)],
            tt.const(0, w.dtype)), name="pad")
    else:
        src = data
    c = tt.reduce_axis(w.C, "c")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.S, "kw")
    out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, oh, ow: tt.sum(
        src[n, c, oh * s + kh, ow * s + kw] * weight[k // kb, c, kh, kw, k % kb],
        axis=[c, kh, kw]), name="output")
    return data, weight, (src if p else None), out


def schedule(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None):
    """The schedule and arguments ``[data, weight_packed, output]``."""
    cfg = default_config(w) if cfg is None else dict(cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"conv2d_nchw knob {knob}={cfg.get(knob)!r} not in {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"conv2d_nchw config {cfg}: tile {cfg['tw']} must divide the "
                            f"{cfg['tiling']} axis and fit the accumulator registers")
    lanes = host_machine().vector_lanes
    data, weight, pad, out = compute(w, cfg)
    s = tt.create_schedule(out)
    if pad is not None:
        pn, pc, ph, pwx = s[pad].axis
        if cfg["parallel"]:
            s[pad].parallel(s[pad].fuse(pn, pc))
        if pad.shape[3] >= lanes:
            s[pad].vectorize(s[pad].split(pwx, factor=lanes)[1])
    n, k, oh, ow = s[out].axis
    c, kh, kw = s[out].reduce_axis
    ko, ki = s[out].split(k, factor=cfg["kb"])
    if cfg["tiling"] == "flat":
        sp = s[out].fuse(oh, ow)
        spo, spi = s[out].split(sp, factor=cfg["tw"])
        outer = [n, ko, spo]
    else:
        spo, spi = s[out].split(ow, factor=cfg["tw"])
        outer = [n, ko, oh, spo]
    vo, vi = s[out].split(spi, factor=min(lanes, cfg["tw"]))
    if cfg["unroll_kw"]:
        s[out].reorder(*outer, c, kh, kw, ki, vo, vi)
        s[out].unroll(kw)
    else:
        s[out].reorder(*outer, c, kh, kw, ki, vo, vi)
    s[out].unroll(ki)
    s[out].unroll(vo)
    s[out].vectorize(vi)
    if cfg["parallel"]:
        s[out].parallel(s[out].fuse(*outer[:-1]))
    return s, [data, weight, out]


def choose(w: Conv2dWorkload):
    """The heuristic pick between the library's conv2d algorithms: ``(module, config)``.

    A 1x1, stride-1, unpadded convolution is a GEMM over the pixels: this module's flat
    tiling needs no layout change. Everything else goes to the register-blocked NCHW[x]c
    template.
    """
    from tiletune.schedules import conv2d
    if _flat_ok(w) and (w.OH * w.OW) % host_machine().vector_lanes == 0:
        return sys.modules[__name__], default_config(w)
    return conv2d, conv2d.default_config(w)


def build(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "conv2d_nchw"):
    """Compile; call as ``f(data, pack_weight(weight, f.config), out)``."""
    cfg = default_config(w) if cfg is None else dict(cfg)
    s, args = schedule(w, cfg)
    return dispatch.with_config(tt.build(s, args, name=name), cfg)


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW -> [K/kb, C, R, S, kb]."""
    K, C, R, S = weight.shape
    kb = cfg["kb"]
    return np.ascontiguousarray(weight.reshape(K // kb, kb, C, R, S).transpose(0, 2, 3, 4, 1))
