"""Winograd conv2d F(m x m, 3 x 3) for stride-1 3x3 convolutions, NCHW in and out.

``Y = A^T [(G g G^T) . (B^T d B)] A`` per output tile (matrices from
:mod:`winograd_matrices`). With ``alpha = m + 2``, ``e = eps * alpha + nu`` one of the
``alpha^2`` transform positions and ``p`` an output tile (``P = N * ceil(OH/m) * ceil(OW/m)``,
padded to ``P_pad``, a multiple of ``reg_p``), the stages are::

    dp[n, cc, h, w, cb]   = data padded to whole tiles, NCHW[ic_bn]c        # root, parallel
    V[e, p, cc, cb]       = sum_{r1,r2} BT[eps,r1] BT[nu,r2] dp[.., tile(p) + (r1, r2), cb]
                                                         # input transform, e unrolled, cb vector
    M[e, kc, p, kb]       = sum_c V[e, p, c] * U[e, kc, c, kb]   # alpha^2 batched GEMMs:
        for e, kc, po in parallel:                                #   reg_p x oc_bn registers
          acc[reg_p, oc_bn] = 0; for c: for p in unrolled(reg_p): acc[p, :] += V * U
    Ot[n, kc, h, w, kb]   = sum_e AT[h%m,eps] AT[w%m,nu] M[e, kc, p(h, w), kb]
                                               # output transform, (h%m, w%m) unrolled, kb vector
    out[n, k, h, w]       = epilogue(Ot[n, k//kb, h, w, k%kb])               # unpack to NCHW

Each transform body is built in Python as a select chain over the unrolled position, whose
branches hold only the non-zero terms of the matrices, so the compiled code does the
transform's additions and no multiplications by 0 or 1. ``U`` (the kernel transform, also a
DSL stage) is computed once per weight by :func:`pack_weight`.

Knobs: ``tile`` (m: 2, 4 or 6), ``ic_bn``, ``oc_bn`` (the GEMM's vector block), ``reg_p``
(tiles per register block), ``gemm_order`` and ``parallel``.
"""
from __future__ import annotations

import atexit
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.conv2d import Conv2dWorkload
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import divisors, host_machine
from tiletune.schedules.winograd_matrices import winograd_matrices

TILES = (2, 4, 6)
LAYOUTS = ("NCHW", "NCHWc")


def applicable(w: Conv2dWorkload) -> bool:
    """Winograd F(m x m, 3 x 3) covers stride-1 3x3 convolutions."""
    return w.R == 3 and w.S == 3 and w.stride == 1


def _require(w: Conv2dWorkload) -> None:
    if not applicable(w):
        raise ScheduleError(f"winograd needs a stride-1 3x3 convolution, got {w.key()}")


def tiles(w: Conv2dWorkload, m: int) -> tuple[int, int, int]:
    """``(tiles down, tiles across, P)`` for output tile size ``m``."""
    nh, nw = -(-w.OH // m), -(-w.OW // m)
    return nh, nw, w.N * nh * nw


def multiplies_per_tile(m: int, r: int = 3) -> int:
    """Element-wise products per output tile and (input, output) channel pair: alpha^2."""
    return (m + r - 1) ** 2


def _blocks(n: int, lanes: int, whole_vectors: bool) -> list[int]:
    """Channel blocks of ``n`` up to four vectors (multiples of a vector past one if
    ``whole_vectors``); blocks under half a vector only when ``n`` has no larger one (they
    leave the transforms' and the GEMM's vectors mostly empty)."""
    out = [d for d in divisors(n) if d <= 4 * lanes
           and (not whole_vectors or d <= lanes or d % lanes == 0)]
    return [d for d in out if 2 * d >= lanes] or out


def space(w: Conv2dWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    return {
        "tile": [m for m in TILES if m <= max(w.OH, w.OW) or m == 2],
        "ic_bn": _blocks(w.C, lanes, False),
        "oc_bn": _blocks(w.K, lanes, True),
        "reg_p": list(range(1, 13)),
        "gemm_order": ["kc_p", "p_kc"],
        "parallel": [True, False],
    }


def _vectors(oc_bn: int) -> int:
    return -(-oc_bn // host_machine().vector_lanes)


def is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    """reg_p x oc_bn accumulators fit the registers; no more register rows than tiles."""
    _, _, P = tiles(w, cfg["tile"])
    return (cfg["reg_p"] * _vectors(cfg["oc_bn"]) <= host_machine().accumulator_budget
            and cfg["reg_p"] <= P)


def default_reg_p(w: Conv2dWorkload, m: int, oc_bn: int) -> int:
    """Tile rows of the GEMM's register block: as many as fit the accumulator registers,
    fewer when that pads the tile count less (cost ~ padded tiles x (1 + 1 / reg_p): each
    step loads the weight vectors once for reg_p broadcasts)."""
    _, _, P = tiles(w, m)
    most = max(1, min(host_machine().accumulator_budget // _vectors(oc_bn), P, 12))
    return min(range(max(1, most // 2), most + 1),
               key=lambda r: (-(-P // r) * r * (1 + 1 / r), -r))


def default_config(w: Conv2dWorkload) -> dict[str, Any]:
    """F(4x4, 3x3) when there are enough tiles (F(2x2) on small maps); a two-vector channel
    block and the register tile of :func:`default_reg_p`."""
    lanes = host_machine().vector_lanes
    tile = 4 if min(w.OH, w.OW) >= 8 else 2
    oc_choices = space(w)["oc_bn"]
    oc_bn = next((b for b in (2 * lanes, lanes) if b in oc_choices), max(oc_choices))
    ic_bn = max(d for d in divisors(w.C) if d <= lanes)
    return {"tile": tile, "ic_bn": ic_bn, "oc_bn": oc_bn, "reg_p": default_reg_p(w, tile, oc_bn),
            "gemm_order": "kc_p", "parallel": True}


def _check(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> None:
    _require(w)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"winograd knob {knob}={cfg.get(knob)!r} is not one of {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"winograd config {dict(cfg)}: reg_p x oc_bn exceeds the "
                            f"{host_machine().accumulator_budget} accumulator registers or "
                            "reg_p exceeds the tile count")


def _select_chain(index: Any, branches: list[Any]) -> Any:
    """``branches[index]`` as nested selects (constant-folded once ``index`` is unrolled)."""
    value = branches[-1]
    for i in range(len(branches) - 2, -1, -1):
        value = tt.if_then_else(index == i, branches[i], value)
    return value


def _sparse_sum(terms: list[tuple[float, Any]], dtype: str) -> Any:
    """``sum coeff * x`` over the non-zero terms (a +-1 coefficient costs no multiply)."""
    total = None
    for coeff, x in terms:
        if coeff == 0:
            continue
        t = x if coeff == 1 else -x if coeff == -1 else x * tt.const(coeff, dtype)
        total = t if total is None else total + t
    return tt.const(0, dtype) if total is None else total


def _transform1d(mat: tuple, row: Any, read: Callable[[int], Any], dtype: str) -> Any:
    """``sum_i mat[row][i] * read(i)`` as a select chain over ``row`` (one branch per row,
    each with only its non-zero terms)."""
    return _select_chain(row, [_sparse_sum([(float(c), read(i)) for i, c in enumerate(r)],
                                           dtype) for r in mat])


def compute(w: Conv2dWorkload, cfg: Mapping[str, Any], epilogue: Epilogue | None = None,
            layout_in: str = "NCHW", layout_out: str = "NCHW"):
    """Placeholders and stages: ``(data, weight_t, extras, stages dict, out)``.

    ``layout_in="NCHWc"`` takes the data in NCHW[ic_bn]c (the pad stage then copies whole
    vectors); ``layout_out="NCHWc"`` makes the output transform the final stage, storing
    NCHW[oc_bn]c with the epilogue applied (a residual comes in that layout), no unpack."""
    _check_layouts(layout_in, layout_out)
    m, bn, kb = cfg["tile"], cfg["ic_bn"], cfg["oc_bn"]
    alpha = m + 2
    if layout_in == "NCHW":
        data = tt.placeholder((w.N, w.C, w.H, w.W), w.dtype, name="data")
    else:
        data = tt.placeholder((w.N, w.C // bn, w.H, w.W, bn), w.dtype, name="data")
    weight_t = tt.placeholder((alpha * alpha, w.K // kb, w.C // bn, bn, kb), w.dtype,
                              name="weight_winograd")
    dp, T, V = input_stages(w, cfg, data, layout_in)
    M = gemm_stage(w, cfg, V, weight_t)
    extras, S, Ot, out = output_stages(w, cfg, M, epilogue or Epilogue(), layout_out)
    return data, weight_t, extras, {"pad": dp, "rows": T, "input": V, "gemm": M, "cols": S,
                                    "output": Ot}, out


def _check_layouts(layout_in: str, layout_out: str) -> None:
    if layout_in not in LAYOUTS or layout_out not in LAYOUTS:
        raise ScheduleError(f"winograd layouts must be in {LAYOUTS}: {layout_in}, {layout_out}")


def input_stages(w: Conv2dWorkload, cfg: Mapping[str, Any], data: tt.Tensor, layout_in: str):
    """``(dp, T, V)``: the data padded to whole tiles in NCHW[ic_bn]c, then ``B^T`` down the
    rows of each tile (``T``) and along them (``V[eps, nu, p, cc, cb]``)."""
    m, bn, reg_p = cfg["tile"], cfg["ic_bn"], cfg["reg_p"]
    mats = winograd_matrices(m, 3)
    alpha = mats.alpha
    nh, nw, P = tiles(w, m)
    p_pad = -(-P // reg_p) * reg_p
    dt_, pad = w.dtype, w.pad
    hp, wp = nh * m + 2, nw * m + 2

    def read(n, cc, h, x, cb):
        if layout_in == "NCHW":
            return data[n, cc * bn + cb, h, x]
        return data[n, cc, h, x, cb]

    def pad_body(n, cc, h, x, cb):
        hh, xx = h - pad, x - pad
        inside = tt.all(hh >= 0, hh < w.H, xx >= 0, xx < w.W)
        return tt.if_then_else(inside, read(n, cc, tt.max(tt.min(hh, w.H - 1), 0),
                                            tt.max(tt.min(xx, w.W - 1), 0), cb),
                               tt.const(0, dt_))

    dp = tt.compute((w.N, w.C // bn, hp, wp, bn), pad_body, name="data_pad")

    def rows_body(eps, p, cc, j, cb):  # B^T applied down the tile's rows
        q = tt.min(p, P - 1)  # padding rows repeat the last tile; never read back
        n, th, tw = q // (nh * nw), (q // nw) % nh, q % nw
        return _transform1d(mats.BT, eps, lambda r: dp[n, cc, th * m + r, tw * m + j, cb], dt_)

    T = tt.compute((alpha, p_pad, w.C // bn, alpha, bn), rows_body, name="input_rows")
    V = tt.compute((alpha, alpha, p_pad, w.C // bn, bn), lambda eps, nu, p, cc, cb: _transform1d(
        mats.BT, nu, lambda j: T[eps, p, cc, j, cb], dt_), name="input_transform")
    return dp, T, V


def gemm_stage(w: Conv2dWorkload, cfg: Mapping[str, Any], V: tt.Tensor, U: tt.Tensor):
    """``M[eps, nu, kc, p, kb] = sum_c V[eps, nu, p, c] * U[e, kc, c, kb]``."""
    bn, kb = cfg["ic_bn"], cfg["oc_bn"]
    alpha, _, p_pad = V.shape[:3]
    rcc, rcb = tt.reduce_axis(w.C // bn, "cc"), tt.reduce_axis(bn, "cb")
    return tt.compute((alpha, alpha, w.K // kb, p_pad, kb), lambda eps, nu, kc, p, k: tt.sum(
        V[eps, nu, p, rcc, rcb] * U[eps * alpha + nu, kc, rcc, rcb, k],
        axis=[rcc, rcb]), name="winograd_gemm")


def output_stages(w: Conv2dWorkload, cfg: Mapping[str, Any], M: tt.Tensor, epi: Epilogue,
                  layout_out: str):
    """``(extras, S, Ot, out)``: ``A^T`` down the columns of each tile of ``M`` (``S``), then
    along the rows (``Ot``, in NCHW[oc_bn]c); NCHW out unpacks ``Ot`` with the epilogue,
    NCHWc out is ``Ot`` itself cropped to the output with the epilogue applied."""
    m, kb = cfg["tile"], cfg["oc_bn"]
    mats = winograd_matrices(m, 3)
    alpha = mats.alpha
    nh, nw, _ = tiles(w, m)
    dt_ = w.dtype

    def cols_body(n, kc, th, tw, i, nu, k):  # A^T applied down the columns of M's tile
        p = (n * nh + th) * nw + tw
        return _transform1d(mats.AT, i, lambda eps: M[eps, nu, kc, p, k], dt_)

    S = tt.compute((w.N, w.K // kb, nh, nw, m, alpha, kb), cols_body, name="output_cols")

    def rows(n, kc, h, x, k):
        return _transform1d(mats.AT, x % m, lambda nu: S[n, kc, h // m, x // m, h % m, nu, k],
                            dt_)

    bias = tt.placeholder((w.K,), dt_, name="bias") if epi.has_bias else None
    if layout_out == "NCHWc":
        shape = (w.N, w.K // kb, w.OH, w.OW, kb)
        res = tt.placeholder(shape, dt_, name="residual") if epi.has_residual else None
        out = tt.compute(shape, lambda n, kc, h, x, k: epi.apply(
            rows(n, kc, h, x, k), kc * kb + k, bias, lambda: res[n, kc, h, x, k]),
            name="output")
        Ot = out
    else:
        Ot = tt.compute((w.N, w.K // kb, nh * m, nw * m, kb), rows, name="output_transform")
        res = (tt.placeholder((w.N, w.K, w.OH, w.OW), dt_, name="residual")
               if epi.has_residual else None)
        out = tt.compute((w.N, w.K, w.OH, w.OW), lambda n, k, h, x: epi.apply(
            Ot[n, k // kb, h, x, k % kb], k, bias, lambda: res[n, k, h, x]), name="output")
    return [t for t in (bias, res) if t is not None], S, Ot, out


def schedule(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue | None = None, layout_in: str = "NCHW",
             layout_out: str = "NCHW"):
    """The schedule and kernel arguments ``[data, weight_winograd, *extras, output]``."""
    _require(w)
    cfg = dispatch.lookup(key(w), default_config(w), w) if cfg is None else cfg
    cfg = dict(cfg)
    _check(w, cfg)
    data, weight_t, extras, st, out = compute(w, cfg, epilogue, layout_in, layout_out)
    s = tt.create_schedule(out)
    schedule_input(s, cfg, st["pad"], st["rows"], st["input"])
    schedule_gemm(s, cfg, st["gemm"])
    schedule_output(s, w, cfg, st["cols"], st["output"], out)
    return s, [data, weight_t, *extras, out]


def schedule_input(s: Any, cfg: Mapping[str, Any], dp: tt.Tensor, T: tt.Tensor,
                   V: tt.Tensor) -> None:
    """Pad: root, parallel over (n, cc), channel block vectorized. Transform: per (tile,
    channel block) the ``alpha x alpha`` positions unrolled, the channel block a vector."""
    par, vec = cfg["parallel"], cfg["ic_bn"] >= 4
    n, cc, h, x, cb = s[dp].axis
    if par:
        s[dp].parallel(s[dp].fuse(n, cc))
    if vec:
        s[dp].vectorize(cb)
    eps, nu, p, cc, cb = s[V].axis
    s[V].reorder(p, cc, eps, nu, cb)
    if par:
        s[V].parallel(p)
    s[V].unroll(eps)
    s[V].unroll(nu)
    s[T].compute_at(s[V], cc)
    teps, _, _, tj, tcb = s[T].axis
    s[T].reorder(tj, teps, tcb)  # the select chain's variable innermost: one copy per branch
    s[T].unroll(teps)
    s[T].unroll(tj)
    if vec:
        s[V].vectorize(cb)
        s[T].vectorize(tcb)


def schedule_gemm(s: Any, cfg: Mapping[str, Any], M: tt.Tensor) -> None:
    """``alpha^2`` batched GEMMs: ``reg_p`` tiles x ``oc_bn`` channels of accumulators in
    registers, the reduction over input channels outside them::

        for e, kc, po in parallel (gemm_order picks kc/po order):
          acc[reg_p, oc_bn] = 0
          for c: for p in unrolled(reg_p): acc[p, :] += V[e, po*reg_p + p, c] * U[e, kc, c, :]
    """
    lanes = host_machine().vector_lanes
    kb = cfg["oc_bn"]
    ML = s.cache_write(M, "local")
    eps, nu, kc, p, k = s[M].axis
    e = s[M].fuse(eps, nu)
    po, pi = s[M].split(p, factor=cfg["reg_p"])
    outer = [e, kc, po] if cfg["gemm_order"] == "kc_p" else [e, po, kc]
    s[M].reorder(*outer, pi, k)
    if cfg["parallel"]:
        s[M].parallel(s[M].fuse(outer[0], outer[1]))
    s[M].unroll(pi)
    ko, ki = s[M].split(k, factor=min(lanes, kb))
    s[M].unroll(ko)
    s[M].vectorize(ki)
    s[ML].compute_at(s[M], outer[2])
    leps, lnu, lkc, lp, lk = s[ML].axis
    rcc, rcb = s[ML].reduce_axis
    vo, vi = s[ML].split(lk, factor=min(lanes, kb))
    s[ML].reorder(leps, lnu, lkc, rcc, rcb, lp, vo, vi)
    s[ML].unroll(lp)
    s[ML].unroll(vo)
    s[ML].vectorize(vi)


def schedule_output(s: Any, w: Conv2dWorkload, cfg: Mapping[str, Any], S: tt.Tensor,
                    Ot: tt.Tensor, out: tt.Tensor) -> None:
    """Per output tile: ``A^T`` down the columns then along the rows, ``m x m`` outputs
    unrolled, the output-channel block a vector; NCHW out then unpacks in (lanes x lanes)
    blocks of channels x width."""
    lanes = host_machine().vector_lanes
    m, kb, par = cfg["tile"], cfg["oc_bn"], cfg["parallel"]
    n, kc, h, x, k = s[Ot].axis
    th, i = s[Ot].split(h, factor=m)
    tw, j = s[Ot].split(x, factor=m)
    ko, ki = s[Ot].split(k, factor=min(lanes, kb))
    s[Ot].reorder(n, kc, th, tw, i, ko, j, ki)
    if par:
        s[Ot].parallel(s[Ot].fuse(n, kc, th))
    s[Ot].unroll(i)
    s[Ot].unroll(j)
    s[Ot].unroll(ko)
    s[Ot].vectorize(ki)
    s[S].compute_at(s[Ot], tw)
    *_, si, snu, sk = s[S].axis
    sko, ski = s[S].split(sk, factor=min(lanes, kb))
    s[S].reorder(snu, sko, si, ski)
    s[S].unroll(si)
    s[S].unroll(snu)
    s[S].unroll(sko)
    s[S].vectorize(ski)
    if out is Ot:
        return
    on, ok, oh, ow = s[out].axis
    kco, kci = s[out].split(ok, factor=kb)
    owo, owi = s[out].split(ow, factor=min(lanes, w.OW))
    kio, kii = s[out].split(kci, factor=min(lanes, kb))
    s[out].reorder(on, kco, oh, owo, kio, kii, owi)
    if par:
        s[out].parallel(s[out].fuse(on, kco, oh))
    s[out].unroll(kii)
    s[out].vectorize(owi)


def stage_kernels(w: Conv2dWorkload, cfg: Mapping[str, Any], layout_in: str = "NCHW",
                  layout_out: str = "NCHW") -> dict[str, tuple[Any, list[tt.Tensor]]]:
    """Each stage group as its own kernel (for profiling): ``{"input": (s, [data, V]),
    "gemm": (s, [V, U, M]), "output": (s, [M, out])}``, scheduled as in :func:`schedule`."""
    cfg = dict(cfg)
    _check(w, cfg)
    data, U, _, st, _ = compute(w, cfg, None, layout_in, layout_out)
    dp, T, V = st["pad"], st["rows"], st["input"]
    s_in = tt.create_schedule(V)
    schedule_input(s_in, cfg, dp, T, V)
    Vp = tt.placeholder(V.shape, w.dtype, name="V")
    M = gemm_stage(w, cfg, Vp, U)
    s_gemm = tt.create_schedule(M)
    schedule_gemm(s_gemm, cfg, M)
    Mp = tt.placeholder(M.shape, w.dtype, name="M")
    _, S, Ot, out = output_stages(w, cfg, Mp, Epilogue(), layout_out)
    s_out = tt.create_schedule(out)
    schedule_output(s_out, w, cfg, S, Ot, out)
    return {"input": (s_in, [data, V]), "gemm": (s_gemm, [Vp, U, M]),
            "output": (s_out, [Mp, out])}


@dataclass(frozen=True)
class WinogradWorkload(Conv2dWorkload):
    """A conv2d workload whose dispatch key names this template (a tuner library entry)."""

    def key(self) -> str:
        return "winograd_" + Conv2dWorkload.key(self)


def key(w: Conv2dWorkload) -> str:
    """The dispatch key of this template (apart from the direct templates' ``w.key()``)."""
    return WinogradWorkload.key(w)  # type: ignore[arg-type]


def build(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "winograd",
          epilogue: Epilogue | None = None, opt_level: int = 3, layout_in: str = "NCHW",
          layout_out: str = "NCHW"):
    """Compile; call as ``f(data, pack_weight(weight, cfg), [bias], [residual], out)``."""
    s, args = schedule(w, cfg, epilogue, layout_in, layout_out)
    return tt.build(s, args, name=name, opt_level=opt_level)


def weight_transform(weight: tt.Tensor, m: int, ic_bn: int, oc_bn: int
                     ) -> tuple[tt.Tensor, tt.Tensor]:
    """The kernel transform ``U = G g G^T`` as two stages (``G`` down the rows, then along
    them), ``U`` laid out for the GEMM: ``U[e, K/oc_bn, C/ic_bn, ic_bn, oc_bn]``."""
    K, C, R, S = weight.shape
    if (R, S) != (3, 3):
        raise ScheduleError(f"winograd weight transform needs a 3x3 kernel, got {R}x{S}")
    mats = winograd_matrices(m, 3)

    alpha = mats.alpha
    rows = tt.compute((alpha, K, C, S), lambda eps, k, c, j: _transform1d(
        mats.G, eps, lambda i: weight[k, c, i, j], weight.dtype), name="weight_rows")
    return tt.compute((alpha * alpha, K // oc_bn, C // ic_bn, ic_bn, oc_bn),
                      lambda e, kc, cc, cb, k: _transform1d(
                          mats.G, e % alpha, lambda j: rows[e // alpha, kc * oc_bn + k,
                                                            cc * ic_bn + cb, j], weight.dtype),
                      name="weight_transform"), rows


@functools.lru_cache(maxsize=32)
def _weight_kernel(shape: tuple[int, ...], dtype: str, m: int, ic_bn: int, oc_bn: int):
    weight = tt.placeholder(shape, dtype, name="weight")
    U, rows = weight_transform(weight, m, ic_bn, oc_bn)
    s = tt.create_schedule(U)
    s[rows].unroll(s[rows].axis[0])
    return tt.build(s, [weight, U], name="winograd_weight", opt_level=1)


atexit.register(_weight_kernel.cache_clear)  # free the kernels before interpreter teardown


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW weights -> the transformed, blocked weights the kernel takes (done once per
    weight: a compiled :func:`weight_transform` stage, cached per shape and config)."""
    m, bn, kb = cfg["tile"], cfg["ic_bn"], cfg["oc_bn"]
    K, C = weight.shape[:2]
    if C % bn or K % kb:
        raise ScheduleError(f"winograd pack_weight: blocks ({bn}, {kb}) do not divide ({C}, {K})")
    f = _weight_kernel(tuple(weight.shape), str(weight.dtype), m, bn, kb)
    out = np.empty(((m + 2) ** 2, K // kb, C // bn, bn, kb), weight.dtype)
    f(np.ascontiguousarray(weight), out)
    return out
