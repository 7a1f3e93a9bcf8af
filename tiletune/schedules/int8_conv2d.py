"""int8 conv2d (u8 activations x s8 weights -> s32) in NCHW[x]c with a requantize epilogue.

The layout groups four input channels in one 32-bit word so one dot-product instruction
(``vpdpbusd``, or ``vpmaddubsw`` + ``vpmaddwd``) does four multiply-adds per int32 lane::

    data_pack[n, icc, h, w, q]   int32 = bytes of pad(data)[n, icc*ic_bn + 4q + 0..3, h, w]
    weight  [occ, icc, kh, kw, q, ocb] int32 = bytes of W[occ*oc_bn + ocb, icc*ic_bn + 4q + 0..3]
    for n, occ, oh in parallel(...):
      for owo in range(OW / reg_n):
        acc[reg_n, oc_bn] = 0                                         # registers
        for icc, kh, kw, q:
          for ow in unrolled(reg_n):
            for ocb in vectorized(oc_bn):                             # int32 lanes
              acc[ow, ocb] = dot4(acc, bcast(data_pack[.., q]), weight[.., q, ocb])
        Oc[...] = acc
    out[n, k, h, w] = requant(Oc[n, k // oc_bn, h, w, k % oc_bn])    # u8, or int32 + bias

Padding uses the input zero point ``zp_in`` (the real value 0), so the zero-point
correction ``zp_in * sum(W[k])`` is a per-channel constant folded into ``bias`` by
``fold_bias``. Knobs and heuristics follow the fp32 ``conv2d`` template; ``path`` (the
instruction set, see ``backends/llvm/int8dot``) is part of the workload: the AVX2 and
AVX-512BW paths need 7-bit weights (``|w| <= 64``) for full u8 activations, else
activations <= 127.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.backends.llvm import int8dot
from tiletune.errors import ArgumentError, ScheduleError
from tiletune.ir.expr import Call
from tiletune.schedules import dispatch
from tiletune.schedules.int8_requant import Requant, requantize_numpy
from tiletune.schedules.machine import divisors, host_machine

OUT_DTYPES = ("uint8", "int32")
#: Multiply-adds x 2 below which the default runs a layer serially: a parallel region
#: costs ~1 us idle but far more when the cores are shared, and such a layer takes ~20 us.
PARALLEL_MIN_FLOP = 1 << 21
PARALLEL_CHOICES = ("occ", "n_occ", "n_occ_oh", "none")


@dataclass(frozen=True)
class Int8Conv2dWorkload:
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    path: str = "auto"
    out_dtype: str = "uint8"

    def __post_init__(self) -> None:
        if min(self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.stride) < 1 or \
                self.pad < 0:
            raise ScheduleError(f"int8 conv2d workload {self} has a non-positive extent")
        if self.path != "auto" and self.path not in int8dot.PATHS:
            raise ScheduleError(f"unknown int8 path {self.path!r}; known: {int8dot.PATHS}")
        if self.out_dtype not in OUT_DTYPES:
            raise ScheduleError(f"int8 conv2d output dtype must be one of {OUT_DTYPES}")

    @property
    def resolved_path(self) -> str:
        return int8dot.best_path() if self.path == "auto" else self.path

    @property
    def Cp(self) -> int:
        """Input channels rounded up to a multiple of 4 (one 32-bit word); the extra
        channels have zero weights (an RGB image's first conv reads 3)."""
        return -(-self.C // 4) * 4

    @property
    def OH(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def OW(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def flop(self) -> int:
        return 2 * self.N * self.K * self.OH * self.OW * self.C * self.R * self.S

    @property
    def is_1x1(self) -> bool:
        return self.R == 1 and self.S == 1

    def key(self) -> str:
        return (f"int8_conv2d_{self.N}x{self.C}x{self.H}x{self.W}_k{self.K}_{self.R}x{self.S}"
                f"_s{self.stride}_p{self.pad}_{self.resolved_path}_{self.out_dtype}")


def lanes() -> int:
    """int32 lanes of one vector register."""
    return host_machine().vector_lanes


def space(w: Int8Conv2dWorkload) -> dict[str, list[Any]]:
    ow_tiles = sorted(set(d for d in divisors(w.OW) if d <= 32) | {8, 16})
    return {
        "ic_bn": [d for d in divisors(w.Cp) if d % 4 == 0 and d <= 128],
        "oc_bn": [d for d in divisors(w.K) if d <= 64 and (d % 4 == 0 or d == w.K)],
        "reg_n": [r for r in ow_tiles if r <= w.OW],
        "unroll_kw": [False, True] if w.S > 1 else [False],
        "parallel": list(PARALLEL_CHOICES),
    }


def vectors_per_block(oc_bn: int) -> int:
    return -(-oc_bn // lanes())


def is_valid(w: Int8Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """reg_n x (oc_bn / lanes) accumulators plus the dot product's temporaries must fit."""
    temps = {"avx2": 2, "avx512bw": 2, "avx2_s16": 4}.get(w.resolved_path, 0)
    return (cfg["reg_n"] * vectors_per_block(cfg["oc_bn"]) + temps
            <= host_machine().accumulator_budget)


def default_config(w: Int8Conv2dWorkload) -> dict[str, Any]:
    """The register tile (output channels x width) with the most useful accumulators: width
    tiles that leave a remainder count only their useful fraction; a 32-channel input block;
    serial below ``PARALLEL_MIN_FLOP``."""
    n = lanes()
    sp = space(w)
    oc_choices = [d for d in sp["oc_bn"] if d % n == 0 and d <= 2 * n] or [max(sp["oc_bn"])]
    ic_bn = max([d for d in sp["ic_bn"] if d <= 32] or [min(sp["ic_bn"])])

    def useful(oc_bn: int, reg_n: int) -> float:
        tiles = -(-w.OW // reg_n)
        return reg_n * vectors_per_block(oc_bn) * w.OW / (tiles * reg_n)

    tiles = [(oc, r) for oc in oc_choices for r in sp["reg_n"]
             if is_valid(w, {"reg_n": r, "oc_bn": oc})]
    oc_bn, reg_n = max(tiles, key=lambda t: (useful(*t), t[0])) if tiles else (min(oc_choices), 1)
    return {"ic_bn": ic_bn, "oc_bn": oc_bn, "reg_n": reg_n, "unroll_kw": False,
            "parallel": "n_occ_oh" if w.flop >= PARALLEL_MIN_FLOP else "none"}


def _check(w: Int8Conv2dWorkload, cfg: Mapping[str, Any]) -> None:
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"int8 conv2d knob {knob}={cfg.get(knob)!r} is not one of "
                                f"{choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"int8 conv2d config {dict(cfg)} needs more than "
                            f"{host_machine().accumulator_budget} vector registers")


def pack_data(A: tt.Tensor, ic_bn: int, pad: int, stride: int, zp_in: int,
              channels: int | None = None) -> tt.Tensor:
    """u8 NCHW -> int32 NCHW[ic_bn/4]q, four channels per word, padded with ``zp_in``;
    ``channels`` (a multiple of 4 >= C) pads the channels too (their bytes are ``zp_in``;
    their weights are zero)."""
    N, C, H, W = A.shape
    Cp = channels or C
    PH, PW = (H + 2 * pad - 1) // stride + 1, (W + 2 * pad - 1) // stride + 1
    fill = int(np.array([zp_in] * 4, np.uint8).view(np.int32)[0])

    def body(n, cc, h, w, q):
        hh, ww = h * stride - pad, w * stride - pad
        hc = tt.max(tt.min(hh, H - 1), 0) if pad else hh
        wc = tt.max(tt.min(ww, W - 1), 0) if pad else ww
        word = None
        for j in range(4):
            ch = cc * ic_bn + q * 4 + j
            if Cp != C:  # a clamped read, replaced outside the real channels
                byte = tt.if_then_else(ch < C, A[n, tt.min(ch, C - 1), hc, wc].astype("int32"),
                                       tt.const(zp_in, "int32"))
            else:
                byte = A[n, ch, hc, wc].astype("int32")
            part = byte if j == 0 else byte * tt.const(1 << (8 * j), "int32")
            word = part if word is None else word + part
        if not pad:
            return word
        inside = tt.all(hh >= 0, hh < H, ww >= 0, ww < W)
        return tt.if_then_else(inside, word, tt.const(fill, "int32"))

    return tt.compute((N, Cp // ic_bn, PH, PW, ic_bn // 4), body, name="data_pack")


def compute(w: Int8Conv2dWorkload, cfg: Mapping[str, Any], zp_in: int = 0,
            rq: Requant | None = None):
    ic_bn, oc_bn = cfg["ic_bn"], cfg["oc_bn"]
    dot = int8dot.call_name(w.resolved_path)
    data = tt.placeholder((w.N, w.C, w.H, w.W), "uint8", name="data")
    weight = tt.placeholder((w.K // oc_bn, w.Cp // ic_bn, w.R, w.S, ic_bn // 4, oc_bn),
                            "int32", name="weight_packed")
    bias = tt.placeholder((w.K,), "int32", name="bias")
    mult = tt.placeholder((w.K,), "int32", name="mult")
    if w.is_1x1:
        dp, stride = pack_data(data, ic_bn, w.pad, w.stride, zp_in, w.Cp), 1
    else:
        dp, stride = pack_data(data, ic_bn, w.pad, 1, zp_in, w.Cp), w.stride
    icc = tt.reduce_axis(w.Cp // ic_bn, "icc")
    q = tt.reduce_axis(ic_bn // 4, "q")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.S, "kw")
    conv = tt.compute(
        (w.N, w.K // oc_bn, w.OH, w.OW, oc_bn),
        lambda n, occ, oh, ow, ocb: tt.sum(Call(dot, (
            dp[n, icc, oh * stride + kh, ow * stride + kw, q],
            weight[occ, icc, kh, kw, q, ocb]), "int32"), axis=[icc, kh, kw, q]),
        name="conv")
    rq = rq or Requant()

    def epilogue(n, k, h, ww):
        acc = conv[n, k // oc_bn, h, ww, k % oc_bn]
        if w.out_dtype == "int32":
            return acc + bias[k]
        return rq.apply(acc, bias[k], mult[k])

    out = tt.compute((w.N, w.K, w.OH, w.OW), epilogue, name="output")
    args = [data, weight, bias] + ([mult] if w.out_dtype == "uint8" else []) + [out]
    return args, dp, conv, out


def schedule(w: Int8Conv2dWorkload, cfg: Mapping[str, Any] | None = None, zp_in: int = 0,
             rq: Requant | None = None):
    """Schedule and kernel arguments ``[data, weight_packed, bias, (mult,) output]``."""
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = dict(default_config(w) if cfg is None else cfg)
    _check(w, cfg)
    n_l = lanes()
    oc_bn, reg_n = cfg["oc_bn"], cfg["reg_n"]
    args, dp, conv, out = compute(w, cfg, zp_in, rq)
    s = tt.create_schedule(out)

    pn, pcc, ph, pw, pq = s[dp].axis
    s[dp].reorder(pcc, pn, ph, pw, pq)
    if cfg["parallel"] != "none":
        s[dp].parallel(pcc)

    cl = s.cache_write(conv, "local")
    cn, cocc, coh, cow, cocb = s[conv].axis
    owo, owi = s[conv].split(cow, factor=reg_n)
    s[conv].reorder(cn, cocc, coh, owo, owi, cocb)
    par = {"occ": [cocc], "n_occ": [cn, cocc], "n_occ_oh": [cn, cocc, coh]}.get(cfg["parallel"])
    if par:
        if cfg["parallel"] == "occ":
            s[conv].reorder(cocc, cn, coh, owo, owi, cocb)
        s[conv].parallel(s[conv].fuse(*par) if len(par) > 1 else par[0])
    s[conv].unroll(owi)
    bo, bi = s[conv].split(cocb, factor=min(n_l, oc_bn))
    s[conv].unroll(bo)
    s[conv].vectorize(bi)
    s[cl].compute_at(s[conv], owo)
    ln, locc, loh, low, locb = s[cl].axis
    ricc, rkh, rkw, rq_ = s[cl].reduce_axis
    vo, vi = s[cl].split(locb, factor=min(n_l, oc_bn))
    if cfg["unroll_kw"]:
        s[cl].reorder(ln, locc, loh, ricc, rkh, rq_, rkw, low, vo, vi)
        s[cl].unroll(rkw)
    else:
        s[cl].reorder(ln, locc, loh, ricc, rkh, rkw, rq_, low, vo, vi)
    s[cl].unroll(low)
    s[cl].unroll(vo)
    s[cl].vectorize(vi)

    on, ok, oh, ow = s[out].axis
    kco, kci = s[out].split(ok, factor=oc_bn)
    owo2, owi2 = s[out].split(ow, factor=min(n_l, w.OW))
    s[out].reorder(on, kco, oh, kci, owo2, owi2)
    if cfg["parallel"] != "none":
        s[out].parallel(s[out].fuse(on, kco, oh))
    s[out].vectorize(owi2)
    return s, args


class Int8Conv2d:
    """A compiled int8 conv2d layer: ``layer(data_u8) -> output`` with its constants bound."""

    def __init__(self, w: Int8Conv2dWorkload, weight: np.ndarray, bias: np.ndarray,
                 mult: np.ndarray | None = None, *, zp_in: int = 0, rq: Requant | None = None,
                 cfg: Mapping[str, Any] | None = None, name: str = "int8_conv2d") -> None:
        if not int8dot.supported(w.resolved_path):
            raise ScheduleError(f"int8 path {w.resolved_path!r} cannot run on this CPU "
                                f"(best here: {int8dot.best_path()!r})")
        if weight.shape != (w.K, w.C, w.R, w.S) or weight.dtype != np.int8:
            raise ArgumentError(f"int8 conv2d weight must be int8 {(w.K, w.C, w.R, w.S)}, got "
                                f"{weight.dtype} {weight.shape}")
        if w.out_dtype == "uint8" and mult is None:
            raise ArgumentError("a uint8 output needs the per-channel multipliers")
        self.workload, self.zp_in, self.rq = w, zp_in, rq or Requant()
        self.activation_max = int8dot.activation_max(w.resolved_path,
                                                     int8dot.weight_abs(weight))
        if not 0 <= zp_in <= self.activation_max:
            raise ArgumentError(f"input zero point {zp_in} is outside the activations the "
                                f"{w.resolved_path} path multiplies exactly")
        s, args = schedule(w, cfg, zp_in, self.rq)
        self.config = cfg or dispatch.lookup(w.key(), default_config(w), w)
        self.kernel = tt.build(s, args, name=name)
        self.weight = pack_weight(weight, self.config)
        self.bias = fold_bias(bias, weight, zp_in)
        self.mult = None if mult is None else np.ascontiguousarray(mult, np.int32)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        w = self.workload
        check_activations(w.resolved_path, self.activation_max, data)
        out = np.empty((w.N, w.K, w.OH, w.OW), w.out_dtype)
        consts = [self.weight, self.bias] + ([self.mult] if w.out_dtype == "uint8" else [])
        self.kernel(data, *consts, out)
        return out


def check_activations(path: str, amax: int, data: np.ndarray) -> None:
    """ArgumentError when ``data`` has activations the path would not multiply exactly."""
    if amax < 255 and data.size and int(data.max()) > amax:
        raise ArgumentError(f"the {path} int8 path needs activations <= {amax} (7-bit) with "
                            f"8-bit weights, got {int(data.max())}; quantize the weights to "
                            "7 bits (|w| <= 64) for full u8 activations")


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """int8 OIHW -> int32 [K/oc_bn, C/ic_bn, R, S, ic_bn/4, oc_bn] (four channels a word;
    C rounded up to a multiple of 4 with zero weights)."""
    K, C, R, S = weight.shape
    if C % 4:
        weight = np.concatenate([weight, np.zeros((K, 4 - C % 4, R, S), weight.dtype)], 1)
        C = weight.shape[1]
    ib, ob = cfg["ic_bn"], cfg["oc_bn"]
    w = weight.astype(np.int8).reshape(K // ob, ob, C // ib, ib // 4, 4, R, S)
    w = np.ascontiguousarray(w.transpose(0, 2, 5, 6, 3, 1, 4))
    return w.view(np.int32).reshape(K // ob, C // ib, R, S, ib // 4, ob)


def fold_bias(bias: np.ndarray, weight: np.ndarray, zp_in: int) -> np.ndarray:
    """int32 bias minus the input zero point's contribution ``zp_in * sum(W[k])``."""
    wsum = weight.astype(np.int64).reshape(weight.shape[0], -1).sum(axis=1)
    return (bias.astype(np.int64) - zp_in * wsum).astype(np.int32)


def reference(data: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, pad: int,
              zp_in: int = 0, mult: np.ndarray | None = None, rq: Requant | None = None
              ) -> np.ndarray:
    """Bit-exact NumPy integer reference: int32 ``sum((x - zp_in) * W) + bias``, then the
    requantize epilogue when ``mult`` is given."""
    x = data.astype(np.int64) - zp_in
    N, C, H, W = x.shape
    K, _, R, S = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    acc = np.zeros((N, K, OH, OW), np.int64)
    for r in range(R):
        for c in range(S):
            patch = xp[:, :, r:r + stride * OH:stride, c:c + stride * OW:stride]
            acc += np.einsum("nchw,kc->nkhw", patch, weight[:, :, r, c].astype(np.int64))
    acc = acc.astype(np.int32)
    if mult is None:
        return acc + bias.astype(np.int32).reshape(1, -1, 1, 1)
    return requantize_numpy(acc, bias, mult, rq or Requant())
