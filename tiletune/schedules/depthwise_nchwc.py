"""Depthwise conv2d in the blocked NCHW[b]c layout (input and output), with an epilogue.

One filter per channel (multiplier 1); any strides, dilations and (asymmetric) pads. The
channel block ``b`` is the vector; ``reg_n`` output columns are accumulated in registers::

    pad[n, cc, h, w, cb] = data with zeros around                  # root stage, parallel
    for n, cc, oh in parallel:
      for owo in range(OW / reg_n):
        acc[reg_n, b] = 0                                           # registers
        for kh, kw:
          for ow in unrolled(reg_n):
            for cb in vectorized(b):
              acc[ow, cb] += pad[n, cc, oh*sh + kh*dh, (owo*reg_n+ow)*sw + kw*dw, cb]
                             * weight[cc, kh, kw, cb]
        out[n, cc, oh, owo*reg_n + ow, cb] = epilogue(acc[ow, cb])

Weights are packed once, ``OIHW (C, 1, R, S) -> [C/b, R, S, b]`` (``pack_weight``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import divisors, host_machine


@dataclass(frozen=True)
class DepthwiseNCHWcWorkload:
    N: int
    C: int
    H: int
    W: int
    R: int
    S: int
    block: int
    stride_h: int = 1
    stride_w: int = 1
    pad_t: int = 0
    pad_l: int = 0
    pad_b: int = 0
    pad_r: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    dtype: str = "float32"

    @property
    def OH(self) -> int:
        return (self.H + self.pad_t + self.pad_b - (self.R - 1) * self.dilation_h - 1) \
            // self.stride_h + 1

    @property
    def OW(self) -> int:
        return (self.W + self.pad_l + self.pad_r - (self.S - 1) * self.dilation_w - 1) \
            // self.stride_w + 1

    @property
    def flop(self) -> int:
        return 2 * self.N * self.C * self.OH * self.OW * self.R * self.S

    def key(self) -> str:
        return (f"depthwise_nchwc_{self.N}x{self.C}x{self.H}x{self.W}_{self.R}x{self.S}"
                f"_b{self.block}_s{self.stride_h}x{self.stride_w}_p{self.pad_t}x{self.pad_l}x"
                f"{self.pad_b}x{self.pad_r}_d{self.dilation_h}x{self.dilation_w}_{self.dtype}")


def space(w: DepthwiseNCHWcWorkload) -> dict[str, list[Any]]:
    budget = host_machine().accumulator_budget
    vecs = -(-w.block // host_machine().vector_lanes)
    return {"reg_n": [r for r in sorted(set(divisors(w.OW)) | {4, 7, 8})
                      if r <= w.OW and r * vecs <= budget],
            "parallel": [True, False]}


def is_valid(w: DepthwiseNCHWcWorkload, cfg: Mapping[str, Any]) -> bool:
    return cfg["reg_n"] in space(w)["reg_n"]


def default_config(w: DepthwiseNCHWcWorkload) -> dict[str, Any]:
    choices = space(w)["reg_n"]
    fitting = [r for r in choices if w.OW % r == 0 and r <= 8]
    return {"reg_n": max(fitting) if fitting else max(r for r in choices if r <= 8),
            "parallel": True}


def compute(w: DepthwiseNCHWcWorkload, epilogue: Epilogue = Epilogue()):
    b = w.block
    if w.C % b:
        raise ScheduleError(f"depthwise_nchwc: block {b} does not divide {w.C} channels")
    data = tt.placeholder((w.N, w.C // b, w.H, w.W, b), w.dtype, name="data")
    weight = tt.placeholder((w.C // b, w.R, w.S, b), w.dtype, name="weight_packed")
    pt, pl, pb, pr = w.pad_t, w.pad_l, w.pad_b, w.pad_r
    if pt or pl or pb or pr:
        H, W = w.H, w.W
        src = tt.compute((w.N, w.C // b, H + pt + pb, W + pl + pr, b), lambda n, c, h, x, cb: (
            tt.if_then_else(tt.all(h >= pt, h < H + pt, x >= pl, x < W + pl),
                            data[n, c, tt.max(tt.min(h - pt, H - 1), 0),
                                 tt.max(tt.min(x - pl, W - 1), 0), cb],
                            tt.const(0, w.dtype))), name="pad")
    else:
        src = data
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.S, "kw")
    shape = (w.N, w.C // b, w.OH, w.OW, b)
    conv = tt.compute(shape, lambda n, c, oh, ow, cb: tt.sum(
        src[n, c, oh * w.stride_h + kh * w.dilation_h, ow * w.stride_w + kw * w.dilation_w, cb]
        * weight[c, kh, kw, cb], axis=[kh, kw]), name="depthwise")
    bias = tt.placeholder((w.C,), w.dtype, name="bias") if epilogue.has_bias else None
    residual = tt.placeholder(shape, w.dtype, name="residual") if epilogue.has_residual \
        else None
    out = tt.compute(shape, lambda n, c, oh, ow, cb: epilogue.apply(
        conv[n, c, oh, ow, cb], c * b + cb, bias, lambda: residual[n, c, oh, ow, cb]),
        name="output")
    args = [data, weight] + [t for t in (bias, residual) if t is not None] + [out]
    return args, (src if src is not data else None), conv, out


def schedule(w: DepthwiseNCHWcWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue = Epilogue()):
    """The schedule and arguments ``[data, weight_packed, (bias), (residual), output]``."""
    if cfg is None:
        cfg = dispatch.lookup(w.key() + (f"_{epilogue.key()}" if epilogue else ""),
                              default_config(w), w)
    cfg = dict(cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"depthwise_nchwc knob {knob}={cfg.get(knob)!r} not in "
                                f"{choices}")
    lanes = host_machine().vector_lanes
    args, pad, conv, out = compute(w, epilogue)
    s = tt.create_schedule(out)
    if pad is not None:
        pn, pc, ph, pw, pcb = s[pad].axis
        if cfg["parallel"]:
            s[pad].parallel(s[pad].fuse(pn, pc))
        s[pad].vectorize(pcb)
    s[conv].set_scope("local")
    n, c, oh, ow, cb = s[out].axis
    owo, owi = s[out].split(ow, factor=cfg["reg_n"])
    s[out].reorder(n, c, oh, owo, owi, cb)
    if cfg["parallel"]:
        s[out].parallel(s[out].fuse(n, c, oh))
    s[out].unroll(owi)
    bo, bi = s[out].split(cb, factor=min(lanes, w.block))
    s[out].unroll(bo)
    s[out].vectorize(bi)
    s[conv].compute_at(s[out], owo)
    ln, lc, lh, lw, lcb = s[conv].axis
    rkh, rkw = s[conv].reduce_axis
    vo, vi = s[conv].split(lcb, factor=min(lanes, w.block))
    s[conv].reorder(ln, lc, lh, rkh, rkw, lw, vo, vi)
    s[conv].unroll(rkw)
    s[conv].unroll(lw)
    s[conv].unroll(vo)
    s[conv].vectorize(vi)
    return s, args


def build(w: DepthwiseNCHWcWorkload, cfg: Mapping[str, Any] | None = None,
          epilogue: Epilogue = Epilogue(), name: str = "depthwise_nchwc", **options: Any):
    s, args = schedule(w, cfg, epilogue)
    return tt.build(s, args, name=name, **options)


def pack_weight(weight: np.ndarray, block: int) -> np.ndarray:
    """``(C, 1, R, S)`` -> ``[C/b, R, S, b]``."""
    C, _, R, S = weight.shape
    return np.ascontiguousarray(weight.reshape(C // block, block, R, S).transpose(0, 2, 3, 1))
