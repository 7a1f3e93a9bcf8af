"""Dense / matmul ``C[M, N] = A[M, K] @ B[K, N]`` with a register-blocked template.

Loop nest of the template (``mr`` rows x ``nr`` columns accumulator tile in registers)::

    Bp[jo, k, jj] = B[k, jo*nr + jj]          # pack_b: B panels made contiguous (zero-padded)
    Ap[io, k, ii] = A[io*mr + ii, k]          # pack_a: the mr broadcasts of a step share a line
    for jo in parallel(N / nr):              # or io outermost, see "order"
      for io in range(M / mr):
        C.local[mr, nr] = 0                   # vector registers
        for k in range(K):
          for i in unrolled(mr):              # A[i, k] broadcast
            for jv in unrolled(nr / lanes):
              for jl in vectorized(lanes):    # B[k, j] contiguous, one FMA
                C.local[i, j] += Ap[io, k, i] * Bp[jo, k, j]
        C[io*mr + i, jo*nr + j] = C.local[i, j]

With ``kc > 0`` the reduction is blocked instead (GotoBLAS order, no local cache): C is
accumulated in place over K blocks of ``kc`` and LLVM keeps each tile in registers across a
block, so each thread's A and B blocks stay in L1/L2 (scales on 2 cores)::

    for jo in parallel(N / nr):
      for ko in range(K / kc):
        for io in range(M / mr):
          for k in range(kc):  C[io*mr + i, jo*nr + j] += Ap[io, k, i] * Bp[jo, k, j]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import tiletune as tt
from tiletune.errors import ScheduleError
from tiletune.schedules import dispatch
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.machine import host_machine


@dataclass(frozen=True)
class DenseWorkload:
    M: int
    N: int
    K: int
    dtype: str = "float32"

    @property
    def flop(self) -> int:
        return 2 * self.M * self.N * self.K

    def key(self) -> str:
        return f"dense_{self.M}x{self.N}x{self.K}_{self.dtype}"


def compute(w: DenseWorkload, cfg: Mapping[str, Any] | None = None):
    """The matmul; with a config, its packed operands as stages (``packs`` lists them)."""
    A = tt.placeholder((w.M, w.K), w.dtype, name="A")
    B = tt.placeholder((w.K, w.N), w.dtype, name="B")
    k = tt.reduce_axis(w.K, name="k")
    packs = []
    read_a = lambda i, kk: A[i, kk]  # noqa: E731
    read_b = lambda kk, j: B[kk, j]  # noqa: E731
    if cfg and cfg.get("pack_b"):
        nr = cfg["nr"]
        Bp = tt.compute((-(-w.N // nr), w.K, nr), lambda jo, kk, jj: tt.if_then_else(
            jo * nr + jj < w.N, B[kk, tt.min(jo * nr + jj, w.N - 1)], tt.const(0, w.dtype)),
            name="B_pack")
        packs.append(Bp)
        read_b = lambda kk, j: Bp[j // nr, kk, j % nr]  # noqa: E731
    if cfg and cfg.get("pack_a"):
        mr = cfg["mr"]
        Ap = tt.compute((-(-w.M // mr), w.K, mr), lambda io, kk, ii: tt.if_then_else(
            io * mr + ii < w.M, A[tt.min(io * mr + ii, w.M - 1), kk], tt.const(0, w.dtype)),
            name="A_pack")
        packs.append(Ap)
        read_a = lambda i, kk: Ap[i // mr, kk, i % mr]  # noqa: E731
    C = tt.compute((w.M, w.N), lambda i, j: tt.sum(read_a(i, k) * read_b(k, j), axis=k),
                   name="C")
    return A, B, C, packs


def with_epilogue(C: tt.Tensor, epilogue: Epilogue) -> tuple[tt.Tensor, list[tt.Tensor]]:
    """``D[i, j] = epilogue(C[i, j])`` (bias indexed by the column ``j``) and its extra
    arguments ``[(bias), (residual)]``."""
    M, N = C.shape
    bias = tt.placeholder((N,), C.dtype, name="bias") if epilogue.has_bias else None
    residual = tt.placeholder((M, N), C.dtype, name="residual") if epilogue.has_residual \
        else None
    D = tt.compute((M, N), lambda i, j: epilogue.apply(C[i, j], j, bias,
                                                        lambda: residual[i, j]), name="D")
    return D, [t for t in (bias, residual) if t is not None]


def space(w: DenseWorkload) -> dict[str, list[Any]]:
    lanes = host_machine().vector_lanes
    return {
        "mr": [m for m in (1, 2, 4, 6, 8, 10, 12, 14, 16) if m <= w.M],
        "nr": [n for n in (lanes, 2 * lanes, 3 * lanes, 4 * lanes) if n <= max(w.N, lanes)],
        "unroll_k": [1, 2, 4],
        "order": ["jo_io", "io_jo"],
        "pack_a": [False, True],
        "pack_b": [False, True],
        "kc": [0] + [k for k in (128, 256, 512) if k < w.K and w.K % k == 0],
        "parallel": [True, False],
    }


def is_valid(w: DenseWorkload, cfg: Mapping[str, Any]) -> bool:
    """Register budget; K blocking needs tiles that divide M and N (no guards in the loop)."""
    m = host_machine()
    if cfg.get("kc") and (w.M % cfg["mr"] or w.N % cfg["nr"] or cfg["order"] != "jo_io"):
        return False
    return cfg["mr"] * (cfg["nr"] // m.vector_lanes) <= m.accumulator_budget


def default_config(w: DenseWorkload) -> dict[str, Any]:
    """A 6 x 4-vector register tile (24 accumulators, 4 loads + 6 broadcasts per 24 FMAs)
    when N is wide enough, else the widest tile that fits; panels packed for large sizes."""
    m = host_machine()
    lanes = m.vector_lanes
    nr = next((n for n in (4 * lanes, 2 * lanes, lanes) if w.N % n == 0),  # no guarded tail
              next(n for n in (4 * lanes, 2 * lanes, lanes) if w.N >= n or n == lanes))
    mr = max(x for x in space(w)["mr"] if x * (nr // lanes) <= m.accumulator_budget)
    if nr == 4 * lanes:
        mr = min(mr, 6)
    big = w.K * w.N >= 64 * 1024
    unroll_k = 4 if w.K % 4 == 0 else 1
    return {"mr": mr, "nr": nr, "unroll_k": unroll_k, "order": "jo_io", "kc": 0,
            "pack_a": big and w.M >= mr,
            "pack_b": big and w.M >= 32, "parallel": True}


def schedule(w: DenseWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue = Epilogue()):
    """The schedule and arguments ``[A, B, (bias), (residual), C]``; with an epilogue the
    final stage applies it to the register tile before the store."""
    key = w.key() + (f"_{epilogue.key()}" if epilogue else "")
    cfg = dispatch.lookup(key, default_config(w), w) if cfg is None else cfg
    cfg = dict(default_config(w) if cfg is None else cfg)
    for knob, choices in space(w).items():
        if cfg.get(knob) not in choices:
            raise ScheduleError(f"dense knob {knob}={cfg.get(knob)!r} is not one of {choices}")
    if not is_valid(w, cfg):
        raise ScheduleError(f"dense config {cfg} exceeds the register budget")
    lanes = host_machine().vector_lanes
    A, B, C, packs = compute(w, cfg)
    extra: list[tt.Tensor] = []
    if epilogue:  # the final stage applies the epilogue; C is its local accumulator tile
        final, extra = with_epilogue(C, epilogue)
        s = tt.create_schedule(final)
        s[C].set_scope("local")
        C, CL = final, C
    else:
        s = tt.create_schedule(C)
        CL = s.cache_write(C, "local")
    for P in packs:  # root stages: outer loop parallel, contiguous side vectorized
        po, pk, pi = s[P].axis
        if cfg["parallel"]:
            s[P].parallel(po)
        if P.name == "B_pack":
            s[P].vectorize(pi)
        else:
            s[P].reorder(po, pi, pk)
            s[P].vectorize(s[P].split(pk, factor=lanes)[1])
    i, j = s[C].axis
    io, ii = s[C].split(i, factor=cfg["mr"])
    jo, ji = s[C].split(j, factor=cfg["nr"])
    outer = [jo, io] if cfg["order"] == "jo_io" else [io, jo]
    s[C].reorder(*outer, ii, ji)
    if cfg["parallel"]:
        s[C].parallel(outer[0])
    s[C].vectorize(s[C].split(ji, factor=min(lanes, cfg["nr"]))[1])
    s[CL].compute_at(s[C], outer[1])
    ci, cj = s[CL].axis
    (k,) = s[CL].reduce_axis
    cjo, cji = s[CL].split(cj, factor=lanes)
    ko, ki = s[CL].split(k, factor=cfg["unroll_k"])
    s[CL].reorder(ko, ki, ci, cjo, cji)
    s[CL].unroll(ki)
    s[CL].unroll(ci)
    s[CL].unroll(cjo)
    s[CL].vectorize(cji)
    return s, [A, B, *extra, C]


def build(w: DenseWorkload, cfg: Mapping[str, Any] | None = None, name: str = "dense",
          epilogue: Epilogue = Epilogue(), **options: Any):
    """Compile the template (``cfg`` None: tuned inside ``apply_history_best``, else the
    heuristic default); ``f.config`` is the config used."""
    cfg = dispatch.resolve(w, cfg, default_config)
    s, args = schedule(w, cfg, epilogue)
    return dispatch.with_config(tt.build(s, args, name=name, **options), cfg)
