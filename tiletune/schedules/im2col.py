"""conv2d as im2col + GEMM: patches unfolded into column panels, then a register-tiled GEMM.

With ``q = (c, kh, kw)`` (``Q = C*R*S``) and ``p = oh*OW + ow`` (``P = OH*OW``), the
convolution of one image is ``out[k, p] = sum_q W[k, q] * cols[q, p]``. The columns are
packed in ``nr``-wide panels (zero past ``P``) so each step's vector is contiguous, and the
weight in ``mr``-row panels so the ``mr`` broadcasts of a step share a cache line (packed once
per weight by :func:`pack_weight`); the output is NCHW directly (no unpack)::

    cols[n, jo, q, jj] = pad(data)[n, c, oh*s + kh, ow*s + kw]  at p = jo*nr + jj   # root
    for n, ko, po in parallel:                                  # or po outside ko ("order")
      acc[mr, nr] = 0                                            # registers
      for q in range(Q):                                        # unroll_q knob
        for i in unrolled(mr): for j in vectorized(nr):
          acc[i, j] += w_pack[ko, q, i] * cols[n, po, q, j]
      out[n, ko*mr + i, p = po*nr + j] = epilogue(acc[i, j])

Knobs: mr, nr, unroll_q, order, parallel. Applies to every (ungrouped) convolution; it wins
where the direct kernels vectorize badly (1x1 strided, few channels, odd widths).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.conv2d import Conv2dWorkload
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import divisors, host_machine

LAYOUTS = ("NCHW", "NCHWc")


def applicable(w: Conv2dWorkload) -> bool:
    return True


def space(w: Conv2dWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    P = w.OH * w.OW
    return {
        "mr": [d for d in divisors(w.K) if d <= 16],
        "nr": [n for n in (lanes, 2 * lanes, 3 * lanes, 4 * lanes) if n <= max(P, lanes)],
        "unroll_q": [1, 2, 4],
        "order": ["k_p", "p_k"],
        "parallel": [True, False],
    }


def is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """mr x (nr / lanes) accumulators fit the registers; unroll_q divides Q."""
    m = host_machine()
    Q = w.C * w.R * w.S
    return (cfg["mr"] * (cfg["nr"] // m.vector_lanes) <= m.accumulator_budget
            and Q % cfg["unroll_q"] == 0)


def default_config(w: Conv2dWorkload) -> dict[str, Any]:
    """Dense's register tile: up to 4 vectors of pixels x the most output rows that fit."""
    m = host_machine()
    lanes = m.vector_lanes
    P, Q = w.OH * w.OW, w.C * w.R * w.S
    nr = next(n for n in (3 * lanes, 2 * lanes, lanes) if P >= n or n == lanes)
    mr = max(d for d in space(w)["mr"] if d * (nr // lanes) <= m.accumulator_budget)
    return {"mr": mr, "nr": nr, "unroll_q": 4 if Q % 4 == 0 else 1, "order": "k_p",
            "parallel": True}


def _check(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> None:
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"im2col knob {knob}={cfg.get(knob)!r} is not one of {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"im2col config {dict(cfg)}: mr x nr exceeds the "
                            f"{host_machine().accumulator_budget} accumulator registers or "
                            "unroll_q does not divide C*R*S")


def compute(w: Conv2dWorkload, cfg: Mapping[str, Any], epilogue: Epilogue | None = None,
            layout_in: str = "NCHW", layout_out: str = "NCHW", ic_bn: int = 0, oc_bn: int = 0):
    """``(data, weight_packed, extras, cols, conv, out)``.

    ``layout_in="NCHWc"`` reads the data in NCHW[ic_bn]c; ``layout_out="NCHWc"`` stores
    NCHW[oc_bn]c (``mr`` must divide ``oc_bn``) with the epilogue (residual in that layout)."""
    if layout_in not in LAYOUTS or layout_out not in LAYOUTS:
        raise ScheduleError(f"im2col layouts must be in {LAYOUTS}: {layout_in}, {layout_out}")
    mr, nr = cfg["mr"], cfg["nr"]
    if layout_in == "NCHWc" and (ic_bn <= 0 or w.C % ic_bn):
        raise ScheduleError(f"im2col NCHWc input needs a block ic_bn dividing C={w.C}: {ic_bn}")
    if layout_out == "NCHWc" and (oc_bn <= 0 or w.K % oc_bn or oc_bn % mr):
        raise ScheduleError(f"im2col NCHWc output needs a block oc_bn dividing K={w.K} and "
                            f"divisible by mr={mr}: {oc_bn}")
    P, Q, RS = w.OH * w.OW, w.C * w.R * w.S, w.R * w.S
    s, pad = w.stride, w.pad
    if layout_in == "NCHW":
        data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    else:
        data = tt.placeholder((w.N, w.C // ic_bn, w.H, w.W, ic_bn), w.dtype, name="data")
    weight = tt.placeholder((w.K // mr, Q, mr), w.dtype, name="weight_packed")

    def read(n, c, h, x):
        return data[n, c, h, x] if layout_in == "NCHW" else data[n, c // ic_bn, h, x, c % ic_bn]

    def cols_body(n, jo, q, jj):
        p = tt.min(jo * nr + jj, P - 1)
        c, kh, kw = q // RS, (q // w.S) % w.R, q % w.S
        h, x = (p // w.OW) * s + kh - pad, (p % w.OW) * s + kw - pad
        inside = tt.all(h >= 0, h < w.H, x >= 0, x < w.W, jo * nr + jj < P)
        return tt.if_then_else(inside, read(n, c, tt.max(tt.min(h, w.H - 1), 0),
                                            tt.max(tt.min(x, w.W - 1), 0)), tt.const(0, w.dtype))

    cols = tt.compute((w.N, -(-P // nr), Q, nr), cols_body, name="cols")
    q = tt.reduce_axis(Q, "q")
    # accumulators in the column panels' tiling, so a tile's (mr x nr) block is exactly one
    # panel step (bounds of a fused (oh, ow) tile would cover whole rows)
    conv = tt.compute((w.N, w.K, -(-P // nr), nr), lambda n, k, jo, jj: tt.sum(
        weight[k // mr, q, k % mr] * cols[n, jo, q, jj], axis=q), name="conv")

    def acc(n, k, h, x):
        p = h * w.OW + x
        return conv[n, k, p // nr, p % nr]

    epi = epilogue or Epilogue()
    bias = tt.placeholder((w.K,), w.dtype, name="bias") if epi.has_bias else None
    if layout_out == "NCHWc":
        shape = (w.N, w.K // oc_bn, w.OH, w.OW, oc_bn)
        res = tt.placeholder(shape, w.dtype, name="residual") if epi.has_residual else None
        out = tt.compute(shape, lambda n, kc, h, x, k: epi.apply(
            acc(n, kc * oc_bn + k, h, x), kc * oc_bn + k, bias, lambda: res[n, kc, h, x, k]),
            name="output")
    else:
        res = (tt.placeholder((w.N, w.K, w.OH, w.OW), w.dtype, name="residual")
               if epi.has_residual else None)
        out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: epi.apply(
            acc(n, k, h, x), k, bias, lambda: res[n, k, h, x]), name="output")
    return data, weight, [t for t in (bias, res) if t is not None], cols, conv, out


def schedule(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue | None = None, layout_in: str = "NCHW",
             layout_out: str = "NCHW", ic_bn: int = 0, oc_bn: int = 0):
    """The schedule and kernel arguments ``[data, weight_packed, *extras, output]`` (layouts
    and blocks as in :func:`compute`)."""
    cfg = dispatch.lookup(key(w), default_config(w), w) if cfg is None else cfg
    cfg = dict(cfg)
    _check(w, cfg)
    lanes = host_machine().vector_lanes
    mr, nr, par = cfg["mr"], cfg["nr"], cfg["parallel"]
    data, weight, extras, cols, conv, out = compute(w, cfg, epilogue, layout_in, layout_out,
                                                    ic_bn, oc_bn)
    s = tt.create_schedule(out)

    n, jo, q, jj = s[cols].axis
    if par:
        s[cols].parallel(s[cols].fuse(n, jo))
    s[cols].vectorize(s[cols].split(jj, factor=lanes)[1])

    s[conv].set_scope("local")
    if layout_out == "NCHWc":
        # NCHW[oc_bn]c out: the (mr x nr) accumulator tile is stored transposed, pixel by
        # pixel, each pixel's mr channels contiguous
        on, okc, oh, ow, okb = s[out].axis
        p = s[out].fuse(oh, ow)
        kbo, ki = s[out].split(okb, factor=mr)
        po, pi = s[out].split(p, factor=nr)
        s[out].reorder(on, okc, kbo, po, pi, ki)
        outer = [on, s[out].fuse(okc, kbo), po]
        if cfg["order"] == "p_k":
            s[out].reorder(on, po, outer[1], pi, ki)
            outer = [on, po, outer[1]]
        if par:
            s[out].parallel(s[out].fuse(outer[0], outer[1]))
        s[out].unroll(pi)
        if mr >= lanes:
            s[out].vectorize(s[out].split(ki, factor=lanes)[1])
        else:
            s[out].unroll(ki)
    else:
        on, ok, oh, ow = s[out].axis
        p = s[out].fuse(oh, ow)
        ko, ki = s[out].split(ok, factor=mr)
        po, pi = s[out].split(p, factor=nr)
        outer = [on, ko, po] if cfg["order"] == "k_p" else [on, po, ko]
        s[out].reorder(*outer, ki, pi)
        if par:
            s[out].parallel(s[out].fuse(outer[0], outer[1]))
        s[out].unroll(ki)
        s[out].vectorize(s[out].split(pi, factor=lanes)[1])
    s[conv].compute_at(s[out], outer[2])
    ln, lk, ljo, ljj = s[conv].axis
    (rq,) = s[conv].reduce_axis
    lpo, lpi = s[conv].split(ljj, factor=lanes)
    qo, qi = s[conv].split(rq, factor=cfg["unroll_q"])
    s[conv].reorder(ln, ljo, qo, qi, lk, lpo, lpi)
    s[conv].unroll(qi)
    s[conv].unroll(lk)
    s[conv].unroll(lpo)
    s[conv].vectorize(lpi)
    return s, [data, weight, *extras, out]


@dataclass(frozen=True)
class Im2colWorkload(Conv2dWorkload):
    """A conv2d workload whose dispatch key names this template (a tuner library entry)."""

    def key(self) -> str:
        return "im2col_" + Conv2dWorkload.key(self)


def key(w: Conv2dWorkload) -> str:
    """The dispatch key of this template (apart from the direct templates' ``w.key()``)."""
    return Im2colWorkload.key(w)  # type: ignore[arg-type]


def build(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "im2col",
          epilogue: Epilogue | None = None, opt_level: int = 3, layout_in: str = "NCHW",
          layout_out: str = "NCHW", ic_bn: int = 0, oc_bn: int = 0):
    """Compile; call as ``f(data, pack_weight(weight, cfg), [bias], [residual], out)``."""
    s, args = schedule(w, cfg, epilogue, layout_in, layout_out, ic_bn, oc_bn)
    return tt.build(s, args, name=name, opt_level=opt_level)


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW ``[K, C, R, S]`` -> ``[K/mr, C*R*S, mr]`` row panels."""
    K = weight.shape[0]
    mr = cfg["mr"]
    if K % mr:
        raise ScheduleError(f"im2col pack_weight: mr={mr} does not divide K={K}")
    return np.ascontiguousarray(weight.reshape(K // mr, mr, -1).transpose(0, 2, 1))
