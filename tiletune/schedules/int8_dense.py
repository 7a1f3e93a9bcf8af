"""int8 dense ``Y[M, N] = requant(A_u8[M, K] @ B_s8[K, N] + bias)`` with 4-byte dot products.

A row-major u8 ``A`` with ``K % 4 == 0`` is already an int32 ``[M, K/4]`` array (four
consecutive k per word), so only ``B`` is packed, as int32 panels of ``nr`` columns::

    Bp[jo, q, jj] int32 = bytes of B[4q + 0..3, jo*nr + jj]
    for jo in parallel(N / nr):
      for io in range(M / mr):
        acc[mr, nr] = 0                                   # vector registers
        for q in range(K / 4):                            # unroll_k
          for i in unrolled(mr):
            for j in vectorized(nr):                      # int32 lanes
              acc[i, j] = dot4(acc, bcast(A32[io*mr + i, q]), Bp[jo, q, j])
        Y[io*mr + i, jo*nr + j] = requant(acc[i, j])

The input zero point is folded into the bias (``fold_bias``); see ``int8_conv2d`` for the
paths and the 7-bit weight (or activation) rule of the vpmaddubsw paths.
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


@dataclass(frozen=True)
class Int8DenseWorkload:
    M: int
    N: int
    K: int
    path: str = "auto"
    out_dtype: str = "uint8"

    def __post_init__(self) -> None:
        if self.K % 4:
            raise ScheduleError(f"int8 dense needs K in groups of 4, got {self.K} "
                                "(pad K with zero weights)")
        if self.path != "auto" and self.path not in int8dot.PATHS:
            raise ScheduleError(f"unknown int8 path {self.path!r}; known: {int8dot.PATHS}")
        if self.out_dtype not in OUT_DTYPES:
            raise ScheduleError(f"int8 dense output dtype must be one of {OUT_DTYPES}")

    @property
    def resolved_path(self) -> str:
        return int8dot.best_path() if self.path == "auto" else self.path

    @property
    def flop(self) -> int:
        return 2 * self.M * self.N * self.K

    def key(self) -> str:
        return f"int8_dense_{self.M}x{self.N}x{self.K}_{self.resolved_path}_{self.out_dtype}"


def space(w: Int8DenseWorkload) -> dict[str, list[Any]]:
    n = host_machine().vector_lanes
    return {
        "mr": [m for m in (1, 2, 4, 6, 8) if m <= w.M],
        "nr": [x for x in (n, 2 * n, 4 * n) if w.N % x == 0] or [d for d in divisors(w.N)
                                                               if d <= n][-1:],
        "unroll_k": [u for u in (1, 2, 4) if (w.K // 4) % u == 0],
        "parallel": [True, False],
    }


def is_valid(w: Int8DenseWorkload, cfg: Mapping[str, Any]) -> bool:
    n = host_machine().vector_lanes
    temps = {"avx2": 2, "avx512bw": 2, "avx2_s16": 4}.get(w.resolved_path, 0)
    return cfg["mr"] * -(-cfg["nr"] // n) + temps <= host_machine().accumulator_budget


def default_config(w: Int8DenseWorkload) -> dict[str, Any]:
    sp = space(w)
    nr = max(x for x in sp["nr"] if x <= 2 * host_machine().vector_lanes)
    mr = max(m for m in sp["mr"] if is_valid(w, {"mr": m, "nr": nr}))
    from tiletune.schedules.int8_conv2d import PARALLEL_MIN_FLOP
    return {"mr": mr, "nr": nr, "unroll_k": max(sp["unroll_k"]),
            "parallel": w.flop >= PARALLEL_MIN_FLOP}


def compute(w: Int8DenseWorkload, cfg: Mapping[str, Any], rq: Requant | None = None):
    nr = cfg["nr"]
    dot = int8dot.call_name(w.resolved_path)
    A = tt.placeholder((w.M, w.K // 4), "int32", name="A_u8x4")
    B = tt.placeholder((w.N // nr, w.K // 4, nr), "int32", name="B_packed")
    bias = tt.placeholder((w.N,), "int32", name="bias")
    mult = tt.placeholder((w.N,), "int32", name="mult")
    q = tt.reduce_axis(w.K // 4, "q")
    acc = tt.compute((w.M, w.N), lambda i, j: tt.sum(
        Call(dot, (A[i, q], B[j // nr, q, j % nr]), "int32"), axis=q), name="acc")
    rq = rq or Requant()
    if w.out_dtype == "int32":
        Y = tt.compute((w.M, w.N), lambda i, j: acc[i, j] + bias[j], name="Y")
    else:
        Y = tt.compute((w.M, w.N), lambda i, j: rq.apply(acc[i, j], bias[j], mult[j]), name="Y")
    args = [A, B, bias] + ([mult] if w.out_dtype == "uint8" else []) + [Y]
    return args, acc, Y


def schedule(w: Int8DenseWorkload, cfg: Mapping[str, Any] | None = None,
             rq: Requant | None = None):
    """Schedule and kernel arguments ``[A_u8x4, B_packed, bias, (mult,) Y]``."""
    cfg = dispatch.lookup(w.key(), default_config(w), w) if cfg is None else cfg
    cfg = dict(default_config(w) if cfg is None else cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"int8 dense knob {knob}={cfg.get(knob)!r} is not one of "
                                f"{choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"int8 dense config {cfg} exceeds the register budget")
    n_l = host_machine().vector_lanes
    args, acc, Y = compute(w, cfg, rq)
    s = tt.create_schedule(Y)
    i, j = s[Y].axis
    io, ii = s[Y].split(i, factor=cfg["mr"])
    jo, ji = s[Y].split(j, factor=cfg["nr"])
    s[Y].reorder(jo, io, ii, ji)
    if cfg["parallel"]:
        s[Y].parallel(jo)
    jvo, jvi = s[Y].split(ji, factor=min(n_l, cfg["nr"]))
    s[Y].unroll(jvo)
    s[Y].vectorize(jvi)
    s[acc].compute_at(s[Y], io)
    ai, aj = s[acc].axis
    (k,) = s[acc].reduce_axis
    ajo, aji = s[acc].split(aj, factor=min(n_l, cfg["nr"]))
    ko, ki = s[acc].split(k, factor=cfg["unroll_k"])
    s[acc].reorder(ko, ki, ai, ajo, aji)
    s[acc].unroll(ki)
    s[acc].unroll(ai)
    s[acc].unroll(ajo)
    s[acc].vectorize(aji)
    return s, args


def pack_weight(B: np.ndarray, nr: int) -> np.ndarray:
    """int8 ``[K, N]`` -> int32 panels ``[N/nr, K/4, nr]`` (four k per word)."""
    K, N = B.shape
    b = B.astype(np.int8).reshape(K // 4, 4, N // nr, nr).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(b).view(np.int32).reshape(N // nr, K // 4, nr)


def fold_bias(bias: np.ndarray, B: np.ndarray, zp_in: int) -> np.ndarray:
    return (bias.astype(np.int64) - zp_in * B.astype(np.int64).sum(axis=0)).astype(np.int32)


class Int8Dense:
    """A compiled int8 dense layer: ``layer(a_u8[M, K]) -> [M, N]`` with constants bound."""

    def __init__(self, w: Int8DenseWorkload, B: np.ndarray, bias: np.ndarray,
                 mult: np.ndarray | None = None, *, zp_in: int = 0, rq: Requant | None = None,
                 cfg: Mapping[str, Any] | None = None, name: str = "int8_dense") -> None:
        if not int8dot.supported(w.resolved_path):
            raise ScheduleError(f"int8 path {w.resolved_path!r} cannot run on this CPU "
                                f"(best here: {int8dot.best_path()!r})")
        if B.shape != (w.K, w.N) or B.dtype != np.int8:
            raise ArgumentError(f"int8 dense weight must be int8 {(w.K, w.N)}, got "
                                f"{B.dtype} {B.shape}")
        if w.out_dtype == "uint8" and mult is None:
            raise ArgumentError("a uint8 output needs the per-channel multipliers")
        self.workload, self.rq = w, rq or Requant()
        self.activation_max = int8dot.activation_max(w.resolved_path, int8dot.weight_abs(B))
        self.config = dict(cfg or dispatch.lookup(w.key(), default_config(w), w))
        s, args = schedule(w, self.config, self.rq)
        self.kernel = tt.build(s, args, name=name)
        self.B = pack_weight(B, self.config["nr"])
        self.bias = fold_bias(bias, B, zp_in)
        self.mult = None if mult is None else np.ascontiguousarray(mult, np.int32)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        w = self.workload
        if a.shape != (w.M, w.K) or a.dtype != np.uint8:
            raise ArgumentError(f"int8 dense input must be uint8 {(w.M, w.K)}, got "
                                f"{a.dtype} {a.shape}")
        from tiletune.schedules.int8_conv2d import check_activations
        check_activations(w.resolved_path, self.activation_max, a)
        out = np.empty((w.M, w.N), w.out_dtype)
        a32 = np.ascontiguousarray(a).view(np.int32)
        consts = [self.B, self.bias] + ([self.mult] if w.out_dtype == "uint8" else [])
        self.kernel(a32, *consts, out)
        return out


def reference(a: np.ndarray, B: np.ndarray, bias: np.ndarray, zp_in: int = 0,
              mult: np.ndarray | None = None, rq: Requant | None = None) -> np.ndarray:
    """Bit-exact NumPy reference (int32 accumulate, then the requantize epilogue)."""
    acc = ((a.astype(np.int64) - zp_in) @ B.astype(np.int64)).astype(np.int32)
    if mult is None:
        return acc + bias.astype(np.int32)
    return requantize_numpy(acc, bias, mult, rq or Requant(), channel_axis=1)
