"""conv2d, NCHW in and out, computed in the blocked NCHW[x]c layout with a register tile.

Stages: pack the data to NCHW[ic_bn]c with the padding fused (a 1x1 conv also folds its
stride in), the convolution ``Oc`` in NCHW[oc_bn]c, computed at the output's width tile so
its ``reg_n x oc_bn`` accumulators live in vector registers, and the unpack to NCHW::

    data_pack[n, icc, h, w, icb] = pad(data)[n, icc*ic_bn + icb, h, w]     # root, parallel
    for n, occ, oh in parallel(...):                                        # fused knob
      for owo in range(OW / reg_n):
        acc[reg_n, oc_bn] = 0                                               # registers
        for icc, kh, kw, icb:                                               # kw unrolled knob
          for ow in unrolled(reg_n):
            for ocb in vectorized(oc_bn):                                   # 16-lane pieces
              acc[ow, ocb] += data_pack[.., oh*s + kh, (owo*reg_n + ow)*s + kw, icb]
                              * weight_pack[occ, icc, kh, kw, icb, ocb]
        Oc[n, occ, oh, owo*reg_n + ow, ocb] = acc[ow, ocb]                  # vector stores
    output[n, k, h, w] = Oc[n, k // oc_bn, h, w, k % oc_bn]                 # unpack, blocked

Knobs: ic_bn, oc_bn (channel blocks), reg_n (output-width register tile), unroll_kw, and
``parallel`` (which outer loops are fused and run in parallel). The weight is an input in the
packed layout (constant weights are packed once, as frameworks do).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.layout import pack_data, pack_weight_numpy, pad_blocked
from tiletune.schedules.machine import divisors, host_machine


@dataclass(frozen=True)
class Conv2dWorkload:
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    dtype: str = "float32"

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
        return (f"conv2d_{self.N}x{self.C}x{self.H}x{self.W}_k{self.K}_{self.R}x{self.S}"
                f"_s{self.stride}_p{self.pad}_{self.dtype}")


PARALLEL_CHOICES = ("occ", "n_occ", "n_occ_oh", "none")


def space(w: Conv2dWorkload) -> dict[str, list[Any]]:
    """Legal values of every knob (cross-knob limits are in ``is_valid``)."""
    ow_tiles = sorted(set(d for d in divisors(w.OW) if d <= 32) | {8, 16} - {0})
    return {
        "ic_bn": [d for d in divisors(w.C) if d <= 64],
        "oc_bn": [d for d in divisors(w.K) if d <= 64],
        "reg_n": [r for r in ow_tiles if r <= w.OW],
        "unroll_kw": [False, True] if w.S > 1 else [False],
        "parallel": list(PARALLEL_CHOICES),
    }


def vectors_per_block(oc_bn: int) -> int:
    lanes = host_machine().vector_lanes
    return -(-oc_bn // lanes)


def is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """Register budget: reg_n x (oc_bn / lanes) accumulators must fit the vector registers."""
    return cfg["reg_n"] * vectors_per_block(cfg["oc_bn"]) <= host_machine().accumulator_budget


def default_config(w: Conv2dWorkload) -> dict[str, Any]:
    """TVM-like fallback read from the host: the channel block (one or two vectors) and
    width tile that keep the most accumulators in registers (a tile dividing the width
    preferred; ties go to the wider block, which needs fewer weight loads per FMA)."""
    m = host_machine()
    lanes = m.vector_lanes
    oc_choices = [d for d in divisors(w.K) if d <= 2 * lanes]
    multiples = [d for d in oc_choices if d % lanes == 0] or [max(oc_choices)]
    ow_space = space(w)["reg_n"]
    best: tuple = ()
    for oc_bn in multiples:
        vecs = vectors_per_block(oc_bn)
        budget = m.accumulator_budget // vecs
        exact = [d for d in divisors(w.OW) if d <= budget]
        reg_n = max(exact)
        if reg_n < 4:  # few divisors: the widest legal tile that fits (a guarded remainder)
            reg_n = max(r for r in ow_space if r <= budget)
        score = (reg_n * vecs, w.OW % reg_n == 0, oc_bn)
        if score > best[:3]:
            best = (*score, oc_bn, reg_n)
    oc_bn, reg_n = best[3], best[4]
    ic_bn = max(d for d in divisors(w.C) if d <= 2 * lanes)
    return {"ic_bn": ic_bn, "oc_bn": oc_bn, "reg_n": reg_n, "unroll_kw": False,
            "parallel": "n_occ_oh"}


def _check(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> None:
    sp = space(w)
    for knob, choices in sp.items():
        if knob not in cfg:
            raise ScheduleError(f"conv2d config lacks knob {knob!r} (choices {choices})")
        if cfg[knob] not in choices:
            raise ScheduleError(f"conv2d knob {knob}={cfg[knob]!r} is not one of {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"conv2d config {dict(cfg)} needs more than "
                            f"{host_machine().accumulator_budget} accumulator registers")


LAYOUTS = ("NCHW", "NCHWc")


def compute(w: Conv2dWorkload, cfg: Mapping[str, Any], epilogue: Epilogue = Epilogue(),
            layout_in: str = "NCHW", layout_out: str = "NCHW"):
    """Tensors ``(args, dp, conv, out)``: ``args`` are the kernel arguments in order
    ``[data, weight_packed, (bias), (residual), output]``.

    ``layout_in="NCHWc"`` takes the data already in NCHW[ic_bn]c (no pack stage; only a
    padding stage when ``pad > 0``); ``layout_out="NCHWc"`` stores NCHW[oc_bn]c (no unpack).
    The epilogue is applied by the final stage, in the output's layout (a residual comes in
    that layout too).
    """
    if layout_in not in LAYOUTS or layout_out not in LAYOUTS:
        raise ScheduleError(f"conv2d layouts must be in {LAYOUTS}: {layout_in}, {layout_out}")
    ic_bn, oc_bn = cfg["ic_bn"], cfg["oc_bn"]
    stride = w.stride
    if layout_in == "NCHW":
        data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
        if w.is_1x1:  # the pack subsamples: the convolution itself is then stride 1
            dp, stride = pack_data(data, ic_bn, w.pad, w.stride), 1
        else:
            dp = pack_data(data, ic_bn, w.pad)
    else:
        data = tt.placeholder((w.N, w.C // ic_bn, w.H, w.W, ic_bn), w.dtype, name="data")
        dp = pad_blocked(data, w.pad) if w.pad else data
    weight = tt.placeholder((w.K // oc_bn, w.C // ic_bn, w.R, w.S, ic_bn, oc_bn), w.dtype,
                            name="weight_packed")
    icc = tt.reduce_axis(w.C // ic_bn, "icc")
    icb = tt.reduce_axis(ic_bn, "icb")
    kh, kw = tt.reduce_axis(w.R, "kh"), tt.reduce_axis(w.S, "kw")
    conv = tt.compute(
        (w.N, w.K // oc_bn, w.OH, w.OW, oc_bn),
        lambda n, occ, oh, ow, ocb: tt.sum(
            dp[n, icc, oh * stride + kh, ow * stride + kw, icb]
            * weight[occ, icc, kh, kw, icb, ocb], axis=[icc, kh, kw, icb]),
        name="conv")
    bias = tt.placeholder((w.K,), w.dtype, name="bias") if epilogue.has_bias else None
    residual = None
    if layout_out == "NCHWc":
        shape = (w.N, w.K // oc_bn, w.OH, w.OW, oc_bn)
        if epilogue.has_residual:
            residual = tt.placeholder(shape, w.dtype, name="residual")
        out = tt.compute(shape, lambda n, occ, oh, ow, ocb: epilogue.apply(
            conv[n, occ, oh, ow, ocb], occ * oc_bn + ocb, bias,
            lambda: residual[n, occ, oh, ow, ocb]), name="output")
    else:
        shape = (w.N, w.K, w.OH, w.OW)
        if epilogue.has_residual:
            residual = tt.placeholder(shape, w.dtype, name="residual")
        out = tt.compute(shape, lambda n, k, h, ww: epilogue.apply(
            conv[n, k // oc_bn, h, ww, k % oc_bn], k, bias, lambda: residual[n, k, h, ww]),
            name="output")
    args = [data, weight] + [t for t in (bias, residual) if t is not None] + [out]
    return args, dp, conv, out


def variant_key(w: Conv2dWorkload, epilogue: Epilogue = Epilogue(), layout_in: str = "NCHW",
                layout_out: str = "NCHW") -> str:
    """The dispatch key of a workload with its layouts and epilogue (``w.key()`` when both
    layouts are NCHW and there is no epilogue, so plain records keep applying)."""
    if (layout_in, layout_out) == ("NCHW", "NCHW") and not epilogue:
        return w.key()
    return f"{w.key()}_{layout_in}to{layout_out}" + (f"_{epilogue.key()}" if epilogue else "")


def schedule(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue = Epilogue(), layout_in: str = "NCHW",
             layout_out: str = "NCHW"):
    """The schedule and kernel arguments ``[data, weight_packed, (bias), (residual), output]``
    for a config (see ``compute`` for the layouts and the epilogue)."""
    key = variant_key(w, epilogue, layout_in, layout_out)
    cfg = dispatch.lookup(key, default_config(w), w) if cfg is None else cfg
    cfg = default_config(w) if cfg is None else dict(cfg)
    _check(w, cfg)
    lanes = host_machine().vector_lanes
    oc_bn, reg_n = cfg["oc_bn"], cfg["reg_n"]
    args, dp, conv, out = compute(w, cfg, epilogue, layout_in, layout_out)
    s = tt.create_schedule(out)

    # data packing / padding: root stage, channel block vectorized, parallel over chunks
    if dp is not args[0]:
        n, cc, ph, pw, cb = s[dp].axis
        s[dp].reorder(cc, n, ph, pw, cb)
        if cfg["parallel"] != "none":
            s[dp].parallel(cc)
        if cfg["ic_bn"] >= 4:
            s[dp].vectorize(cb)

    # convolution in NCHW[oc_bn]c: width tiled by reg_n; the accumulator tile is a local
    # stage computed at the width tile, so its reg_n x oc_bn values stay in registers
    if layout_out == "NCHWc":
        final, cl = out, conv  # the output stage stores the accumulators (epilogue applied)
        s[conv].set_scope("local")
    else:
        final, cl = conv, s.cache_write(conv, "local")
    cn, cocc, coh, cow, cocb = s[final].axis
    owo, owi = s[final].split(cow, factor=reg_n)
    s[final].reorder(cn, cocc, coh, owo, owi, cocb)
    par = {"occ": [cocc], "n_occ": [cn, cocc], "n_occ_oh": [cn, cocc, coh]}.get(cfg["parallel"])
    if par:
        if cfg["parallel"] == "occ":
            s[final].reorder(cocc, cn, coh, owo, owi, cocb)
        s[final].parallel(s[final].fuse(*par) if len(par) > 1 else par[0])
    s[final].unroll(owi)
    bo, bi = s[final].split(cocb, factor=min(lanes, oc_bn))
    s[final].unroll(bo)
    s[final].vectorize(bi)
    s[cl].compute_at(s[final], owo)
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

    if layout_out == "NCHW":
        # unpack to NCHW (epilogue applied here): a root stage working on (lanes x lanes)
        # blocks of channels x width, so the strided gathers of one block hit the same few
        # cache lines (4x faster than sweeping a whole channel plane per gather)
        on, ok, oh, ow = s[out].axis
        kco, kci = s[out].split(ok, factor=oc_bn)
        owo, owi = s[out].split(ow, factor=min(lanes, w.OW))
        kio, kii = s[out].split(kci, factor=min(lanes, oc_bn))
        s[out].reorder(on, kco, oh, owo, kio, kii, owi)
        if cfg["parallel"] != "none":
            s[out].parallel(s[out].fuse(on, kco, oh))
        s[out].unroll(kii)
        s[out].vectorize(owi)
    return s, args


def build(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "conv2d",
          epilogue: Epilogue = Epilogue(), layout_in: str = "NCHW", layout_out: str = "NCHW",
          **options: Any):
    """Compile the template; call as ``f(data, pack_weight(weight, f.config), [bias],
    [residual], out)``: ``f.config`` is the config used (``cfg``, else the tuned one inside
    ``apply_history_best``, else the heuristic default)."""
    cfg = dispatch.resolve(w, cfg, default_config)
    s, args = schedule(w, cfg, epilogue, layout_in, layout_out)
    return dispatch.with_config(tt.build(s, args, name=name, **options), cfg)


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW weights -> the packed layout the kernel takes."""
    return pack_weight_numpy(weight, cfg["ic_bn"], cfg["oc_bn"])


def reference(data: np.ndarray, weight: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """float64 NumPy convolution (NCHW, OIHW) for checking."""
    N, C, H, W = data.shape
    K, _, R, S = weight.shape
    ap = np.pad(data.astype("float64"), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    out = np.zeros((N, K, OH, OW))
    for r in range(R):
        for c in range(S):
            patch = ap[:, :, r:r + stride * OH:stride, c:c + stride * OW:stride]
            out += np.einsum("nchw,kc->nkhw", patch, weight[:, :, r, c].astype("float64"))
    return out
