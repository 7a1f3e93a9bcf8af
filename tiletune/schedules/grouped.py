"""Grouped conv2d (ResNeXt, ShuffleNet), NCHW in and out, through NCHW[x]c blocks per group.

``groups`` splits the C input and K output channels into groups convolved independently
(OIHW weight ``[K, C / groups, R, S]``); stride, dilation ``d`` and asymmetric padding
``pads = (top, left, bottom, right)`` are workload fields. Channel blocks never straddle a
group (``ic_bn | C/groups``, ``oc_bn | K/groups``), so output block ``occ`` reads the input
blocks of its group ``g = occ // (K/groups/oc_bn)`` only::

    dp[n, icc, h, w, icb] = pad(data)[n, icc*ic_bn + icb, h, w]                # root, parallel
    for n, occ, oh in parallel:
      for owo in range(OW / reg_n):
        acc[reg_n, oc_bn] = 0                                                  # registers
        for icc in range(C/groups/ic_bn), kh, kw, icb:
          for ow in unrolled(reg_n): for ocb in vectorized(oc_bn):
            acc[ow, ocb] += dp[n, g*(C/groups/ic_bn) + icc, oh*s + kh*d, (owo*reg_n+ow)*s + kw*d,
                               icb] * weight_pack[occ, icc, kh, kw, icb, ocb]
        Oc[n, occ, oh, owo*reg_n + ow, ocb] = acc[ow, ocb]
    out[n, k, h, w] = epilogue(Oc[n, k // oc_bn, h, w, k % oc_bn])            # unpack, blocked

Knobs as the dense NCHWc template: ic_bn, oc_bn, reg_n, unroll_kw, parallel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.layout import pack_weight_numpy
from tiletune.schedules.machine import divisors, host_machine

PARALLEL_CHOICES = ("n_occ_oh", "n_occ", "none")


@dataclass(frozen=True)
class GroupedConv2dWorkload:
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    dilation: int = 1
    dtype: str = "float32"
    pads: tuple[int, int, int, int] | None = None  # (top, left, bottom, right); None: pad

    def __post_init__(self) -> None:
        if self.pads is not None:
            object.__setattr__(self, "pads", tuple(int(p) for p in self.pads))
        if min(self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.stride,
               self.groups, self.dilation) < 1 or min(self.padding) < 0:
            raise ScheduleError(f"grouped conv2d has a non-positive size or a negative pad: "
                                f"{self}")
        if self.C % self.groups or self.K % self.groups:
            raise ScheduleError(f"groups={self.groups} must divide C={self.C} and K={self.K}")
        if self.OH < 1 or self.OW < 1:
            raise ScheduleError(f"grouped conv2d {self} has an empty output")

    @property
    def padding(self) -> tuple[int, int, int, int]:
        return self.pads if self.pads is not None else (self.pad,) * 4

    @property
    def Cg(self) -> int:
        return self.C // self.groups

    @property
    def Kg(self) -> int:
        return self.K // self.groups

    @property
    def OH(self) -> int:
        t, _, b, _ = self.padding
        return (self.H + t + b - (self.R - 1) * self.dilation - 1) // self.stride + 1

    @property
    def OW(self) -> int:
        _, left, _, r = self.padding
        return (self.W + left + r - (self.S - 1) * self.dilation - 1) // self.stride + 1

    @property
    def flop(self) -> int:
        return 2 * self.N * self.K * self.OH * self.OW * self.Cg * self.R * self.S

    def key(self) -> str:
        extra = (f"_d{self.dilation}" if self.dilation != 1 else "") + (
            "_p" + "x".join(map(str, self.pads)) if self.pads is not None else "")
        return (f"grouped_conv2d_{self.N}x{self.C}x{self.H}x{self.W}_k{self.K}_{self.R}x"
                f"{self.S}_s{self.stride}_p{self.pad}_g{self.groups}{extra}_{self.dtype}")


def _vectors(oc_bn: int) -> int:
    return -(-oc_bn // host_machine().vector_lanes)


def space(w: GroupedConv2dWorkload) -> dict[str, list[Any]]:
    tiles = sorted(set(d for d in divisors(w.OW) if d <= 32) | {8, 16})
    return {
        "ic_bn": [d for d in divisors(w.Cg) if d <= 64],
        "oc_bn": [d for d in divisors(w.Kg) if d <= 64],
        "reg_n": [r for r in tiles if r <= w.OW],
        "unroll_kw": [False, True] if w.S > 1 else [False],
        "parallel": list(PARALLEL_CHOICES),
    }


def is_valid(w: GroupedConv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """reg_n x (oc_bn / lanes) accumulators must fit the vector registers."""
    return cfg["reg_n"] * _vectors(cfg["oc_bn"]) <= host_machine().accumulator_budget


def default_config(w: GroupedConv2dWorkload) -> dict[str, Any]:
    """The widest output block up to two vectors (whole vectors preferred), the widest
    input block up to two vectors, the widest width tile that fits the registers."""
    m = host_machine()
    lanes = m.vector_lanes
    oc_choices = [d for d in divisors(w.Kg) if d <= 2 * lanes]
    multiples = sorted((d for d in oc_choices if d % lanes == 0), reverse=True)
    ic_bn = max(d for d in divisors(w.Cg) if d <= 2 * lanes)
    tiles = space(w)["reg_n"]
    best = None
    for oc_bn in multiples or [max(oc_choices)]:  # two vectors unless the tile gets narrow
        budget = m.accumulator_budget // _vectors(oc_bn)
        fitting = [r for r in tiles if r <= budget and w.OW % r == 0]
        reg_n = max(fitting) if fitting and max(fitting) >= 4 else max(
            r for r in tiles if r <= budget)
        best = best or (oc_bn, reg_n)
        if reg_n >= 4:
            best = (oc_bn, reg_n)
            break
    oc_bn, reg_n = best
    return {"ic_bn": ic_bn, "oc_bn": oc_bn, "reg_n": reg_n, "unroll_kw": False,
            "parallel": "n_occ_oh"}


def _check(w: GroupedConv2dWorkload, cfg: Mapping[str, Any]) -> None:
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"grouped conv2d knob {knob}={cfg.get(knob)!r} is not one of "
                                f"{choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"grouped conv2d config {dict(cfg)} needs more than "
                            f"{host_machine().accumulator_budget} accumulator registers")


def compute(w: GroupedConv2dWorkload, cfg: Mapping[str, Any], epilogue: Epilogue | None = None):
    """``(data, weight_packed, extras, data_pack, conv, out)``."""
    ic_bn, oc_bn = cfg["ic_bn"], cfg["oc_bn"]
    top, left, bottom, right = w.padding
    s, d = w.stride, w.dilation
    data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    weight = tt.placeholder((w.K // oc_bn, w.Cg // ic_bn, w.R, w.S, ic_bn, oc_bn), w.dtype,
                            name="weight_packed")

    def pack_body(n, cc, h, x, cb):
        hh, xx = h - top, x - left
        inside = tt.all(hh >= 0, hh < w.H, xx >= 0, xx < w.W)
        return tt.if_then_else(inside, data[n, cc * ic_bn + cb, tt.max(tt.min(hh, w.H - 1), 0),
                                            tt.max(tt.min(xx, w.W - 1), 0)],
                               tt.const(0, w.dtype))

    dp = tt.compute((w.N, w.C // ic_bn, w.H + top + bottom, w.W + left + right, ic_bn),
                    pack_body, name="data_pack")
    icc, icb = tt.reduce_axis(w.Cg // ic_bn, "icc"), tt.reduce_axis(ic_bn, "icb")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.S, "kw")
    blocks_in, blocks_out = w.Cg // ic_bn, w.Kg // oc_bn

    def conv_body(n, occ, oh, ow, ocb):
        base = (occ // blocks_out) * blocks_in if w.groups > 1 else 0
        return tt.sum(dp[n, base + icc, oh * s + kh * d, ow * s + kw * d, icb]
                      * weight[occ, icc, kh, kw, icb, ocb], axis=[icc, kh, kw, icb])

    conv = tt.compute((w.N, w.K // oc_bn, w.OH, w.OW, oc_bn), conv_body, name="conv")
    epi = epilogue or Epilogue()
    bias = tt.placeholder((w.K,), w.dtype, name="bias") if epi.has_bias else None
    res = (tt.placeholder((w.N, w.K, w.OH, w.OW), w.dtype, name="residual")
           if epi.has_residual else None)
    out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: epi.apply(
        conv[n, k // oc_bn, h, x, k % oc_bn], k, bias, lambda: res[n, k, h, x]), name="output")
    return data, weight, [t for t in (bias, res) if t is not None], dp, conv, out


def schedule(w: GroupedConv2dWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue | None = None):
    """The schedule and kernel arguments ``[data, weight_packed, *extras, output]``."""
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = dict(cfg)
    _check(w, cfg)
    lanes = host_machine().vector_lanes
    oc_bn, reg_n, par = cfg["oc_bn"], cfg["reg_n"], cfg["parallel"]
    data, weight, extras, dp, conv, out = compute(w, cfg, epilogue)
    s = tt.create_schedule(out)

    n, cc, ph, pw, cb = s[dp].axis
    s[dp].reorder(cc, n, ph, pw, cb)
    if par != "none":
        s[dp].parallel(cc)
    if cfg["ic_bn"] >= 4:
        s[dp].vectorize(cb)

    cl = s.cache_write(conv, "local")
    cn, cocc, coh, cow, cocb = s[conv].axis
    owo, owi = s[conv].split(cow, factor=reg_n)
    s[conv].reorder(cn, cocc, coh, owo, owi, cocb)
    fused = {"n_occ": [cn, cocc], "n_occ_oh": [cn, cocc, coh]}.get(par)
    if fused:
        s[conv].parallel(s[conv].fuse(*fused))
    s[conv].unroll(owi)
    bo, bi = s[conv].split(cocb, factor=min(lanes, oc_bn))
    s[conv].unroll(bo)
    s[conv].vectorize(bi)
    s[cl].compute_at(s[conv], owo)
    ln, locc, loh, low, locb = s[cl].axis
    ricc, rkh, rkw, ricb = s[cl].reduce_axis
    vo, vi = s[cl].split(locb, factor=min(lanes, oc_bn))
    if cfg["unroll_kw"]:
        s[cl].reorder(ln, locc, loh, ricc, rkh, ricb, rkw, low, vo, vi)
        s[cl].unroll(rkw)
    else:
        s[cl].reorder(ln, locc, loh, ricc, rkh, rkw, ricb, low, vo, vi)
    s[cl].unroll(low)
    s[cl].unroll(vo)
    s[cl].vectorize(vi)

    on, ok, oh, ow = s[out].axis
    kco, kci = s[out].split(ok, factor=oc_bn)
    owo, owi = s[out].split(ow, factor=min(lanes, w.OW))
    kio, kii = s[out].split(kci, factor=min(lanes, oc_bn))
    s[out].reorder(on, kco, oh, owo, kio, kii, owi)
    if par != "none":
        s[out].parallel(s[out].fuse(on, kco, oh))
    s[out].unroll(kii)
    s[out].vectorize(owi)
    return s, [data, weight, *extras, out]


def build(w: GroupedConv2dWorkload, cfg: Mapping[str, Any] | None = None,
          name: str = "grouped_conv2d", epilogue: Epilogue | None = None, opt_level: int = 3):
    """Compile; call as ``f(data, pack_weight(weight, cfg), [bias], [residual], out)``."""
    s, args = schedule(w, cfg, epilogue)
    return tt.build(s, args, name=name, opt_level=opt_level)


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW ``[K, C/groups, R, S]`` -> ``[K/oc_bn, C/groups/ic_bn, R, S, ic_bn, oc_bn]``."""
    return pack_weight_numpy(weight, cfg["ic_bn"], cfg["oc_bn"])


def reference(data: np.ndarray, weight: np.ndarray, stride: int = 1, pad: int = 0,
              groups: int = 1, dilation: int = 1,
              pads: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """float64 grouped convolution (NCHW data, OIHW weight ``[K, C/groups, R, S]``)."""
    N, C, H, W = data.shape
    K, Cg, R, S = weight.shape
    top, left, bottom, right = pads if pads is not None else (pad,) * 4
    ap = np.pad(data.astype("float64"), ((0, 0), (0, 0), (top, bottom), (left, right)))
    OH = (H + top + bottom - (R - 1) * dilation - 1) // stride + 1
    OW = (W + left + right - (S - 1) * dilation - 1) // stride + 1
    out = np.zeros((N, K, OH, OW))
    Kg = K // groups
    for g in range(groups):
        xs = ap[:, g * Cg:(g + 1) * Cg]
        ws = weight[g * Kg:(g + 1) * Kg].astype("float64")
        for r in range(R):
            for c in range(S):
                a, b = r * dilation, c * dilation
                patch = xs[:, :, a:a + stride * OH:stride, b:b + stride * OW:stride]
                out[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch, ws[:, :, r, c])
    return out
