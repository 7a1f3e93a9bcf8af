"""Depthwise conv2d (NCHW, one filter per channel) with a vectorized width tile.

    pad[n, c, h, w] = data with zeros around                      # computed at the channel
    for n, c in parallel:
      for oh in range(OH):
        for owo in range(OW / tile):
          out.local[tile] = 0
          for kh, kw (kw unrolled):
            for ow in vectorized(tile):   out.local[ow] += pad[.., oh*s+kh, ow*s+kw] * w[c, kh, kw]
          out[n, c, oh, owo*tile + ow] = out.local[ow]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
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

    @property
    def OH(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def OW(self) -> int:
        return (self.W + 2 * self.pad - self.R) // self.stride + 1

    @property
    def flop(self) -> int:
        return 2 * self.N * self.C * self.OH * self.OW * self.R * self.R

    def key(self) -> str:
        return (f"depthwise_{self.N}x{self.C}x{self.H}x{self.W}_{self.R}x{self.R}"
                f"_s{self.stride}_p{self.pad}_{self.dtype}")


def compute(w: DepthwiseWorkload):
    data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    weight = tt.placeholder((w.C, w.R, w.R), w.dtype, name="weight")
    p = w.pad
    padded = tt.compute(
        (w.N, w.C, w.H + 2 * p, w.W + 2 * p),
        lambda n, c, h, x: tt.if_then_else(
            tt.all(h >= p, h < w.H + p, x >= p, x < w.W + p), data[n, c, h - p, x - p], 0.0),
        name="pad")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.R, "kw")
    out = tt.compute((w.N, w.C, w.OH, w.OW), lambda n, c, h, x: tt.sum(
        padded[n, c, h * w.stride + kh, x * w.stride + kw] * weight[c, kh, kw],
        axis=[kh, kw]), name="depthwise")
    return data, weight, padded, out


def space(w: DepthwiseWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    return {"tile": [t for t in (lanes // 2, lanes, 2 * lanes, 4 * lanes) if t <= max(w.OW, 8)],
            "unroll_kw": [True, False], "pad_at": ["channel", "inline"]}


def is_valid(w: DepthwiseWorkload, cfg: Mapping[str, Any]) -> bool:
    return cfg["tile"] // host_machine().vector_lanes <= host_machine().accumulator_budget


def default_config(w: DepthwiseWorkload) -> dict[str, Any]:
    lanes = host_machine().vector_lanes
    tile = 2 * lanes if w.OW >= 2 * lanes else lanes if w.OW >= lanes else lanes // 2
    return {"tile": tile, "unroll_kw": True, "pad_at": "channel"}


def schedule(w: DepthwiseWorkload, cfg: Mapping[str, Any] | None = None):
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = default_config(w) if cfg is None else dict(cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"depthwise knob {knob}={cfg.get(knob)!r} not in {choices}")
    lanes = host_machine().vector_lanes
    data, weight, padded, out = compute(w)
    s = tt.create_schedule(out)
    OL = s.cache_write(out, "local")
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
    s[OL].compute_at(s[out], owo)
    ln, lc, lh, lw = s[OL].axis
    kh, kw = s[OL].reduce_axis
    lwo, lwi = s[OL].split(lw, factor=min(lanes, cfg["tile"]))
    s[OL].reorder(ln, lc, lh, kh, kw, lwo, lwi)
    if cfg["unroll_kw"]:
        s[OL].unroll(kw)
    s[OL].unroll(lwo)
    s[OL].vectorize(lwi)
    return s, [data, weight, out]


def build(w: DepthwiseWorkload, cfg: Mapping[str, Any] | None = None, name: str = "depthwise"):
    """Compile the template (``cfg`` None: tuned inside ``apply_history_best``, else the
    heuristic default); ``f.config`` is the config used."""
    cfg = dispatch.resolve(w, cfg, default_config)
    s, args = schedule(w, cfg)
    return dispatch.with_config(tt.build(s, args, name=name), cfg)


def reference(data: np.ndarray, weight: np.ndarray, stride: int, pad: int) -> np.ndarray:
    N, C, H, W = data.shape
    R = weight.shape[1]
    ap = np.pad(data.astype("float64"), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - R) // stride + 1
    out = np.zeros((N, C, OH, OW))
    for r in range(R):
        for q in range(R):
            out += ap[:, :, r:r + stride * OH:stride, q:q + stride * OW:stride] * \
                weight[None, :, r, q, None, None]
    return out
