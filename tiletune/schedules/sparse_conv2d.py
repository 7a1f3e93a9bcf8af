"""Direct sparse convolution (and sparse dense as a 1x1 one) over CSR or BSR weights.

The loop nests are built directly as loop IR (the reduction runs over a row's stored
non-zeros, a data-dependent extent that tensor expressions cannot state), then go through
the ordinary pass pipeline (unroll, vectorize) and the LLVM backend. The input is padded
(zeros; right-padded so every output tile reads inside it) and flattened; each non-zero
carries its flat input offset ``c*PH*PW + r*PW + s`` (``sparse_format.offsets``).

CSR, vectors along the output width (``rows`` output rows x ``tile`` vectors of ``vw``
pixels in registers; several rows share each non-zero's value and offset loads, which is
what a small feature map with many channels needs: 7x7 has one vector per row)::

    for k in parallel(K):  for oho in range(OH / rows):  for owo in range(OWp / (tile*vw)):
      acc[rows, tile*vw] = 0
      for j in range(row_ptr[k], row_ptr[k+1]):             # the row's non-zeros
        for h in unrolled(rows): for t in unrolled(tile): for l in vectorized(vw):
          acc[h, t*vw + l] += vals[j] * data[off[j] + (oho*rows + h)*s*PW
                                             + (owo*tile*vw + t*vw + l)*s]
      out[k, oho*rows + h, owo*tile*vw + :] = acc[h]

BSR, vectors along ``block`` output channels, ``tile`` pixels (of ``rows`` rows, as CSR;
shown for rows 1) in registers::

    for kb in parallel(K / block):  for oh:  for owo in range(OWp / tile):
      acc[tile, block] = 0
      for j in range(row_ptr[kb], row_ptr[kb+1]):           # the block row's blocks
        for t in unrolled(tile): for b in vectorized(block):
          acc[t, b] += vals[j, b] * data[off[j] + oh*s*PW + (owo*tile + t)*s]
      out[kb*block + b, oh, owo*tile + t] = acc[t, b]

Output width is padded to ``OWp`` (a multiple of the tile); the runner returns a view.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from tiletune.errors import ArgumentError, ScheduleError
from tiletune.ir.expr import Binary, Cast, Const, Expr, Load, Var
from tiletune.ir.stmt import Allocate, Buffer, For, PrimFunc, Store, seq
from tiletune.schedules import dispatch
from tiletune.schedules.machine import host_machine
from tiletune.schedules.sparse_format import BSR, CSR, offsets, to_bsr, to_csr

FORMATS = ("csr", "bsr")
ORDERS = ("oh_k", "k_oh")  # output rows outside the channel rows, or inside
I64 = "int64"


@dataclass(frozen=True)
class SparseConv2dWorkload:
    """A conv layer with ``nnz`` stored weights (CSR values, or BSR blocks)."""

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    fmt: str = "csr"
    nnz: int = 0
    block: int = 1

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ScheduleError(f"sparse format must be one of {FORMATS}, got {self.fmt!r}")
        if self.fmt == "bsr" and (self.block < 1 or self.K % self.block):
            raise ScheduleError(f"BSR block {self.block} does not divide {self.K} channels")

    @property
    def OH(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def OW(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def flop(self) -> int:
        """Multiply-adds actually stored (x2)."""
        per = self.nnz * (self.block if self.fmt == "bsr" else 1)
        return 2 * self.N * per * self.OH * self.OW

    def key(self) -> str:
        return (f"sparse_conv2d_{self.fmt}{self.block if self.fmt == 'bsr' else ''}_"
                f"{self.N}x{self.C}x{self.H}x{self.W}_k{self.K}_{self.R}x{self.S}"
                f"_s{self.stride}_p{self.pad}_nnz{self.nnz}")


def _row_choices(w: SparseConv2dWorkload) -> list[int]:
    return [d for d in range(1, min(w.OH, 8) + 1) if w.OH % d == 0]


def space(w: SparseConv2dWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    if w.fmt == "csr":
        return {"vw": sorted({4, lanes}), "tile": [1, 2, 3, 4, 6], "rows": _row_choices(w),
                "order": list(ORDERS), "parallel": [True, False]}
    return {"tile": [t for t in (1, 2, 3, 4, 6, 8, 12) if t <= max(w.OW, 1) * 2],
            "rows": _row_choices(w), "order": list(ORDERS), "parallel": [True, False]}


def _vectors(w: SparseConv2dWorkload, cfg: Mapping[str, Any]) -> int:
    lanes = host_machine().vector_lanes
    per = -(-(cfg["vw"] if w.fmt == "csr" else w.block) // lanes)
    return cfg.get("rows", 1) * cfg["tile"] * per


def is_valid(w: SparseConv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    return _vectors(w, cfg) <= host_machine().accumulator_budget


def default_config(w: SparseConv2dWorkload) -> dict[str, Any]:
    """The width tile with the least padding; then as many output rows as the registers
    hold when one tile covers the row (small feature maps: the rows share each non-zero's
    loads)."""
    lanes = host_machine().vector_lanes
    budget = host_machine().accumulator_budget
    if w.fmt == "csr":
        vw = lanes if 2 * w.OW > lanes else 4  # one vector per 7-wide row beats two of 4
        tiles = [t for t in space(w)["tile"] if t * vw <= max(w.OW, vw)]
        cfg = {"vw": vw, "tile": min(tiles, key=lambda t: _tile_cost(w.OW, t, vw)),
               "rows": 1, "order": "oh_k", "parallel": True}
    else:
        per = -(-w.block // lanes)
        tiles = [t for t in space(w)["tile"] if t * per <= budget - 2]
        cfg = {"tile": min(tiles, key=lambda t: _tile_cost(w.OW, t, 1)), "rows": 1,
               "order": "oh_k", "parallel": True}
    step = cfg["tile"] * (cfg["vw"] if w.fmt == "csr" else 1)
    if step >= w.OW:
        fit = [r for r in _row_choices(w) if is_valid(w, {**cfg, "rows": r})]
        cfg["rows"] = max(fit)
        if cfg["rows"] > 1:
            cfg["order"] = "k_oh"
    return cfg


def _tile_cost(ow: int, tile: int, vw: int) -> float:
    """Padded width x per-tile overhead (index and value loads amortised over the tile)."""
    step = tile * vw
    return -(-ow // step) * step * (1 + 2 / tile)


def padded_width(w: SparseConv2dWorkload, cfg: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(OWp, PH, PWp)``: padded output width, padded input height and width."""
    step = cfg["tile"] * (cfg["vw"] if w.fmt == "csr" else 1)
    owp = -(-w.OW // step) * step
    ph = w.H + 2 * w.pad
    pwp = max(w.W + 2 * w.pad, (owp - 1) * w.stride + w.S)
    return owp, ph, pwp


def _c(v: int) -> Const:
    return Const(v, I64)


def _add(*xs: Expr) -> Expr:
    out = xs[0]
    for x in xs[1:]:
        out = Binary("add", out, x)
    return out


def _mul(a: Expr, b: Expr) -> Expr:
    return Binary("mul", a, b)


def _idx(buf: Buffer, i: Expr) -> Expr:
    return Cast(I64, Load(buf, (i,), buf.dtype))


def build_func(w: SparseConv2dWorkload, cfg: Mapping[str, Any], name: str) -> PrimFunc:
    """The kernel's loop IR, arguments ``(data, row_ptr, offsets, vals, out)``."""
    owp, ph, pwp = padded_width(w, cfg)
    rows = w.K if w.fmt == "csr" else w.K // w.block
    bo = w.block if w.fmt == "bsr" else 1
    data = Buffer("data", "float32", (w.N * w.C * ph * pwp,))
    row_ptr = Buffer("row_ptr", "int32", (rows + 1,))
    offs = Buffer("offsets", "int32", (max(w.nnz, 1),))
    vals = Buffer("vals", "float32", (max(w.nnz, 1) * bo,))
    out = Buffer("out", "float32", (w.N * w.K * w.OH * owp,))
    tile = cfg["tile"]
    hrows = cfg.get("rows", 1)
    vw = cfg["vw"] if w.fmt == "csr" else bo
    acc = Buffer("acc", "float32", (hrows * tile * vw,), "local")
    nr, oh, owo, j, t, lane = (Var(x, I64) for x in ("nr", "oh", "owo", "j", "t", "l"))
    ht = Var("h", I64)
    r_var = Var("r", I64)
    n, r = Binary("floordiv", nr, _c(rows)), Binary("floormod", nr, _c(rows))
    ohr = _add(_mul(oh, _c(hrows)), ht)  # the output row of register row ht
    slot = _add(_mul(_add(_mul(ht, _c(tile)), t), _c(vw)), lane)

    def tiled(body: Any) -> Any:
        return For(ht, _c(0), _c(hrows), "unrolled", For(t, _c(0), _c(tile), "unrolled", For(
            lane, _c(0), _c(vw), "vectorized", body)))

    zero = tiled(Store(acc, (slot,), Const(0.0, "float32")))
    s = _c(w.stride)
    base = _add(_mul(n, _c(w.C * ph * pwp)), _idx(offs, j), _mul(_mul(ohr, s), _c(pwp)))
    if w.fmt == "csr":
        pix = _add(_mul(owo, _c(tile * vw)), _mul(t, _c(vw)), lane)
        x = Load(data, (_add(base, _mul(pix, s)),), "float32")
        v = Load(vals, (j,), "float32")
    else:
        pix = _add(_mul(owo, _c(tile)), t)
        x = Load(data, (_add(base, _mul(pix, s)),), "float32")
        v = Load(vals, (_add(_mul(j, _c(bo)), lane),), "float32")
    update = Store(acc, (slot,), Binary("add", Load(acc, (slot,), "float32"), _mul(v, x)))
    lo, hi = _idx(row_ptr, r), _idx(row_ptr, _add(r, _c(1)))
    body_j = For(j, lo, Binary("sub", hi, lo), "serial", tiled(update))
    if w.fmt == "csr":
        o_idx = _add(_mul(_add(_mul(nr, _c(w.OH)), ohr), _c(owp)), pix)
    else:
        k = _add(_mul(r, _c(bo)), lane)
        o_idx = _add(_mul(_add(_mul(_add(_mul(n, _c(w.K)), k), _c(w.OH)), ohr), _c(owp)), pix)
    store = tiled(Store(out, (o_idx,), Load(acc, (slot,), "float32")))
    step = tile * vw if w.fmt == "csr" else tile
    inner = For(owo, _c(0), _c(owp // step), "serial",
                Allocate(acc, seq(zero, body_j, store)))
    kind = "parallel" if cfg["parallel"] else "serial"
    if cfg.get("order", "k_oh") == "k_oh":
        nest = For(nr, _c(0), _c(w.N * rows), kind,
                   For(oh, _c(0), _c(w.OH // hrows), "serial", inner))
    else:  # output rows outside: one row's input stays in cache while every channel reads it
        noh = Var("noh", I64)
        body = For(r_var, _c(0), _c(rows), "serial", inner)
        oht = w.OH // hrows
        body = _subst(body, {nr: _add(_mul(Binary("floordiv", noh, _c(oht)), _c(rows)), r_var),
                             oh: Binary("floormod", noh, _c(oht))})
        nest = For(noh, _c(0), _c(w.N * oht), kind, body)
    return PrimFunc(name, (data, row_ptr, offs, vals, out), nest, {"outputs": ("out",)})


def _subst(stmt, mapping):
    from tiletune.ir.functor import substitute
    return substitute(stmt, mapping)


def _check(w: SparseConv2dWorkload, cfg: Mapping[str, Any]) -> None:
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"sparse conv2d knob {knob}={cfg.get(knob)!r} is not one of "
                                f"{choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"sparse conv2d config {dict(cfg)} exceeds the register budget")


def build(w: SparseConv2dWorkload, cfg: Mapping[str, Any] | None = None,
          name: str = "sparse_conv2d"):
    """Compile the kernel (a ``runtime.Module``)."""
    from tiletune.backends.llvm import build as llvm_build
    from tiletune.compiler.lower import run_passes
    from tiletune.compiler.passes.pipeline import pipeline
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = {"rows": 1, **(default_config(w) if cfg is None else cfg)}  # rows: 1 in old records
    _check(w, cfg)
    func = run_passes(build_func(w, cfg, name), pipeline("llvm"), None)
    return llvm_build(func)


def pad_input(data: np.ndarray, w: SparseConv2dWorkload, cfg: Mapping[str, Any]) -> np.ndarray:
    """NCHW -> the kernel's flat zero-padded input."""
    _, ph, pwp = padded_width(w, cfg)
    p = w.pad
    out = np.zeros((w.N, w.C, ph, pwp), np.float32)
    out[:, :, p:p + w.H, p:p + w.W] = data
    return out.reshape(-1)


class SparseConv2d:
    """A compiled sparse conv layer over a pruned weight: ``layer(data) -> NCHW output``."""

    def __init__(self, weight: np.ndarray, data_shape: tuple[int, int, int, int],
                 stride: int = 1, pad: int = 0, fmt: str = "csr", block: int = 16,
                 cfg: Mapping[str, Any] | None = None) -> None:
        K, C, R, S = weight.shape
        N, C2, H, W = data_shape
        if C2 != C:
            raise ArgumentError(f"weight has {C} input channels, data {C2}")
        fmt_w: CSR | BSR = to_csr(weight) if fmt == "csr" else to_bsr(weight, block)
        nnz = fmt_w.nnz if isinstance(fmt_w, CSR) else fmt_w.nblocks
        self.workload = w = SparseConv2dWorkload(N, C, H, W, K, R, S, stride, pad, fmt, nnz,
                                                 block if fmt == "bsr" else 1)
        self.config = {"rows": 1, **(cfg or dispatch.lookup(w.key(), default_config(w), w))}
        self.kernel = build(w, self.config)
        owp, ph, pwp = padded_width(w, self.config)
        self.row_ptr = fmt_w.row_ptr
        self.offsets = offsets(fmt_w.cols, R, S, ph * pwp, pwp)
        self.vals = np.ascontiguousarray(fmt_w.vals.reshape(-1), np.float32)
        if nnz == 0:  # the kernel's buffers have one element; no row reads it
            self.offsets, self.vals = np.zeros(1, np.int32), np.zeros(max(1, w.block), np.float32)
        self.out = np.empty(w.N * w.K * w.OH * owp, np.float32)
        self.owp = owp

    def run_padded(self, flat_input: np.ndarray) -> np.ndarray:
        self.kernel(flat_input, self.row_ptr, self.offsets, self.vals, self.out)
        w = self.workload
        return self.out.reshape(w.N, w.K, w.OH, self.owp)[..., :w.OW]

    def __call__(self, data: np.ndarray) -> np.ndarray:
        w = self.workload
        if data.shape != (w.N, w.C, w.H, w.W):
            raise ArgumentError(f"sparse conv2d input must be {(w.N, w.C, w.H, w.W)}, got "
                                f"{data.shape}")
        return self.run_padded(pad_input(data, w, self.config))


class SparseDense:
    """``Y[M, N] = X[M, K] @ W.T`` for a pruned ``W[N, K]``, as a 1x1 sparse convolution
    over the ``K`` channels of an ``M``-pixel image."""

    def __init__(self, weight: np.ndarray, M: int, fmt: str = "csr", block: int = 16,
                 cfg: Mapping[str, Any] | None = None) -> None:
        N, K = weight.shape
        self.conv = SparseConv2d(weight.reshape(N, K, 1, 1), (1, K, 1, M), fmt=fmt,
                                 block=block, cfg=cfg)
        self.M, self.K = M, K

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape != (self.M, self.K):
            raise ArgumentError(f"sparse dense input must be {(self.M, self.K)}, got {x.shape}")
        img = np.ascontiguousarray(x.T, np.float32).reshape(1, self.K, 1, self.M)
        return self.conv(img)[0, :, 0, :].T
