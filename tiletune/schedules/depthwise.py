"""Depthwise conv2d (NCHW, ``multiplier`` filters per channel) with a vectorized width tile.

Output channel ``k`` reads input channel ``k // multiplier`` (ONNX/PyTorch ``groups = C``,
``K = C * multiplier``); stride, dilation ``d`` and asymmetric padding ``pads = (top, left,
bottom, right)`` are fields of the workload::

    pad[n, c, h, w] = data with zeros around                      # computed at the channel
    for n, k in parallel:
      for oh in range(OH):
        for owo in range(OW / tile):
          out.local[tile] = 0
          for kh, kw (kw unrolled):
            for ow in vectorized(tile):
              out.local[ow] += pad[.., k // mult, oh*s + kh*d, ow*s + kw*d] * w[k, kh, kw]
          out[n, k, oh, owo*tile + ow] = epilogue(out.local[ow])

``rows="flat"`` (stride 1; for narrow maps, where a width tile is mostly tail) treats the
padded plane of width ``Wp`` as one flat row: the output at ``q = oh*Wp + ow`` reads
``padf[q + kh*d*Wp + kw*d]``, so whole vectors run across row ends (the ``Wp - OW`` extra
columns per row are computed and dropped by the store)::

    for n, k in parallel:
      padf[i] = padded plane of channel k // mult, flattened (zeros past its end)
      for qo in range(ceil(OH*Wp / tile)):
        acc[tile] = sum_{kh, kw} padf[qo*tile + q + kh*d*Wp + kw*d] * w[k, kh, kw]
      out[n, k, oh, ow] = epilogue(acc[oh*Wp + ow])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import host_machine


@dataclass(frozen=True)
class DepthwiseWorkload:
    N: int
    C: int
    H: int
    W: int
    R: int
    stride: int = 1
    pad: int = 0
    dtype: str = "float32"
    multiplier: int = 1
    dilation: int = 1
    pads: tuple[int, int, int, int] | None = None  # (top, left, bottom, right); None: pad

    def __post_init__(self) -> None:
        if self.pads is not None:
            object.__setattr__(self, "pads", tuple(int(p) for p in self.pads))
        if min(self.N, self.C, self.H, self.W, self.R, self.stride, self.multiplier,
               self.dilation) < 1 or min(self.padding) < 0:
            raise ScheduleError(f"depthwise workload has a non-positive size or a negative "
                                f"pad: {self}")
        if self.OH < 1 or self.OW < 1:
            raise ScheduleError(f"depthwise workload {self} has an empty output")

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)``."""
        return self.pads if self.pads is not None else (self.pad,) * 4

    @property
    def K(self) -> int:
        return self.C * self.multiplier

    @property
    def extent(self) -> int:
        """The dilated kernel's extent."""
        return (self.R - 1) * self.dilation + 1

    @property
    def OH(self) -> int:
        t, _, b, _ = self.padding
        return (self.H + t + b - self.extent) // self.stride + 1

    @property
    def OW(self) -> int:
        _, left, _, r = self.padding
        return (self.W + left + r - self.extent) // self.stride + 1

    @property
    def flop(self) -> int:
        return 2 * self.N * self.K * self.OH * self.OW * self.R * self.R

    def key(self) -> str:
        extra = (f"_m{self.multiplier}" if self.multiplier != 1 else "") + (
            f"_d{self.dilation}" if self.dilation != 1 else "") + (
            "_p" + "x".join(map(str, self.pads)) if self.pads is not None else "")
        return (f"depthwise_{self.N}x{self.C}x{self.H}x{self.W}_{self.R}x{self.R}"
                f"_s{self.stride}_p{self.pad}{extra}_{self.dtype}")


def _flat_compute(w: DepthwiseWorkload, tile: int, data: tt.Tensor, weight: tt.Tensor):
    top, left, bottom, _ = w.padding
    wp = w.W + left + w.padding[3]
    qt = -(-(w.OH * wp) // tile) * tile
    span = (w.R - 1) * w.dilation * (wp + 1)
    mult, dil = w.multiplier, w.dilation

    def pad_body(n, c, i):
        h, x = i // wp - top, i % wp - left
        inside = tt.all(h >= 0, h < w.H, x >= 0, x < w.W)
        return tt.if_then_else(inside, data[n, c, tt.max(tt.min(h, w.H - 1), 0),
                                            tt.max(tt.min(x, w.W - 1), 0)], tt.const(0, w.dtype))

    padf = tt.compute((w.N, w.C, qt + span), pad_body, name="pad")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.R, "kw")
    acc = tt.compute((w.N, w.K, qt), lambda n, k, q: tt.sum(
        padf[n, k // mult if mult > 1 else k, q + kh * dil * wp + kw * dil]
        * weight[k, kh, kw], axis=[kh, kw]), name="depthwise_flat")
    return padf, acc, lambda n, k, h, x: acc[n, k, h * wp + x]


def compute(w: DepthwiseWorkload, epilogue: Epilogue | None = None, rows: str = "tiled",
            tile: int = 8):
    """``(data, weight, extras, padded, conv, out)``; ``out`` applies the epilogue (with
    ``rows="flat"``, ``conv`` is the flat accumulator and ``out`` always a separate stage)."""
    data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    weight = tt.placeholder((w.K, w.R, w.R), w.dtype, name="weight")
    epi = epilogue or Epilogue()
    bias = tt.placeholder((w.K,), w.dtype, name="bias") if epi.has_bias else None
    res = (tt.placeholder((w.N, w.K, w.OH, w.OW), w.dtype, name="residual")
           if epi.has_residual else None)
    extras = [t for t in (bias, res) if t is not None]
    if rows == "flat":
        padf, acc, read = _flat_compute(w, tile, data, weight)
        out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: epi.apply(
            read(n, k, h, x), k, bias, lambda: res[n, k, h, x]), name="output")
        return data, weight, extras, padf, acc, out
    top, left, bottom, right = w.padding
    mult, st, dil = w.multiplier, w.stride, w.dilation
    padded = tt.compute(
        (w.N, w.C, w.H + top + bottom, w.W + left + right),
        lambda n, c, h, x: tt.if_then_else(
            tt.all(h >= top, h < w.H + top, x >= left, x < w.W + left),
            data[n, c, tt.max(tt.min(h - top, w.H - 1), 0), tt.max(tt.min(x - left, w.W - 1), 0)],
            tt.const(0, w.dtype)),
        name="pad")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.R, "kw")
    conv = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: tt.sum(
        padded[n, k // mult if mult > 1 else k, h * st + kh * dil, x * st + kw * dil]
        * weight[k, kh, kw], axis=[kh, kw]), name="depthwise")
    if not epi:
        return data, weight, [], padded, conv, conv
    out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: epi.apply(
        conv[n, k, h, x], k, bias, lambda: res[n, k, h, x]), name="output")
    return data, weight, extras, padded, conv, out


def space(w: DepthwiseWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    flat_q = w.OH * (w.W + w.padding[1] + w.padding[3]) if w.stride == 1 else 0
    return {"tile": [t for t in (lanes // 2, lanes, 2 * lanes, 4 * lanes)
                     if t <= max(w.OW, 8, flat_q)],
            "unroll_kw": [True, False], "pad_at": ["channel", "inline"],
            "rows": ["tiled", "flat"] if w.stride == 1 else ["tiled"]}


def is_valid(w: DepthwiseWorkload, cfg: Mapping[str, Any]) -> bool:
    """Accumulators fit the registers; a width tile no wider than the row (or one vector)."""
    m = host_machine()
    if cfg["rows"] == "tiled" and cfg["tile"] > max(w.OW, m.vector_lanes):
        return False
    return cfg["tile"] // m.vector_lanes <= m.accumulator_budget


def default_config(w: DepthwiseWorkload) -> dict[str, Any]:
    lanes = host_machine().vector_lanes
    tile = 2 * lanes if w.OW >= 2 * lanes else lanes if w.OW >= lanes else lanes // 2
    flat = w.stride == 1 and w.OW % lanes != 0 and w.OW < 4 * lanes
    if flat:
        tile = 2 * lanes if w.OH * (w.W + w.padding[1] + w.padding[3]) >= 2 * lanes else lanes
    return {"tile": tile, "unroll_kw": True, "pad_at": "channel",
            "rows": "flat" if flat else "tiled"}


def schedule(w: DepthwiseWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue | None = None):
    """The schedule and arguments ``[data, weight, *extras, output]``."""
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = default_config(w) if cfg is None else dict(cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"depthwise knob {knob}={cfg.get(knob)!r} not in {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"depthwise config {cfg}: a tiled width tile wider than the row, "
                            "or more accumulators than registers")
    lanes = host_machine().vector_lanes
    data, weight, extras, padded, conv, out = compute(w, epilogue, cfg["rows"], cfg["tile"])
    s = tt.create_schedule(out)
    if cfg["rows"] == "flat":
        _schedule_flat(s, cfg, padded, conv, out, lanes)
        return s, [data, weight, *extras, out]
    OL = s.cache_write(conv, "local")
    n, c, oh, ow = s[out].axis
    owo, owi = s[out].split(ow, factor=cfg["tile"])
    f = s[out].fuse(n, c)
    s[out].parallel(f)
    s[out].vectorize(owi)
    if cfg["pad_at"] == "inline":
        s[padded].compute_inline()
    else:
        s[padded].compute_at(s[out], f)
        pn, pc, ph, pw = s[padded].axis
        s[padded].vectorize(s[padded].split(pw, factor=lanes)[1])
    if out is not conv:  # the epilogue stage stores; the accumulator copy sits in its tile
        s[conv].compute_at(s[out], owo)
        cw = s[conv].axis[3]
        s[conv].vectorize(s[conv].split(cw, factor=min(lanes, cfg["tile"]))[1])
    s[OL].compute_at(s[out], owo)
    ln, lc, lh, lw = s[OL].axis
    kh, kw = s[OL].reduce_axis
    lwo, lwi = s[OL].split(lw, factor=min(lanes, cfg["tile"]))
    s[OL].reorder(ln, lc, lh, kh, kw, lwo, lwi)
    if cfg["unroll_kw"]:
        s[OL].unroll(kw)
    s[OL].unroll(lwo)
    s[OL].vectorize(lwi)
    return s, [data, weight, *extras, out]


def _schedule_flat(s, cfg: Mapping[str, Any], padf, acc, out, lanes: int) -> None:
    """Per channel: the flat padded plane, the accumulator plane in tiles, the store."""
    n, k, oh, ow = s[out].axis
    f = s[out].fuse(n, k)
    s[out].parallel(f)
    s[out].vectorize(s[out].split(ow, factor=lanes)[1])
    s[acc].compute_at(s[out], f)
    s[padf].compute_at(s[out], f) if cfg["pad_at"] == "channel" else s[padf].compute_inline()
    if cfg["pad_at"] == "channel":
        s[padf].vectorize(s[padf].split(s[padf].axis[2], factor=lanes)[1])
    # accumulate in the plane itself (LLVM keeps each tile in registers across kh, kw)
    kh, kw = s[acc].reduce_axis
    qo, qi = s[acc].split(s[acc].axis[2], factor=cfg["tile"])
    qio, qii = s[acc].split(qi, factor=min(lanes, cfg["tile"]))
    s[acc].reorder(qo, kh, kw, qio, qii)
    if cfg["unroll_kw"]:
        s[acc].unroll(kw)
    s[acc].unroll(qio)
    s[acc].vectorize(qii)


def build(w: DepthwiseWorkload, cfg: Mapping[str, Any] | None = None, name: str = "depthwise",
          epilogue: Epilogue | None = None, opt_level: int = 3):
    """Compile; call as ``f(data, weight[K, R, R], [bias], [residual], out)`` (``cfg`` None:
    tuned inside ``apply_history_best``, else the heuristic default); ``f.config`` is the
    config used."""
    cfg = dispatch.resolve(w, cfg, default_config)
    s, args = schedule(w, cfg, epilogue)
    return dispatch.with_config(tt.build(s, args, name=name, opt_level=opt_level), cfg)


def reference(data: np.ndarray, weight: np.ndarray, stride: int, pad: int, dilation: int = 1,
              pads: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """float64 depthwise convolution; ``weight`` is ``[C * multiplier, R, R]``."""
    N, C, H, W = data.shape
    K, R = weight.shape[0], weight.shape[1]
    mult = K // C
    top, left, bottom, right = pads if pads is not None else (pad,) * 4
    ap = np.pad(data.astype("float64"), ((0, 0), (0, 0), (top, bottom), (left, right)))
    ap = np.repeat(ap, mult, axis=1)
    ext = (R - 1) * dilation + 1
    OH, OW = (H + top + bottom - ext) // stride + 1, (W + left + right - ext) // stride + 1
    out = np.zeros((N, K, OH, OW))
    for r in range(R):
        for q in range(R):
            a, b = r * dilation, q * dilation
            out += ap[:, :, a:a + stride * OH:stride, b:b + stride * OW:stride] * \
                weight[None, :, r, q, None, None].astype("float64")
    return out
