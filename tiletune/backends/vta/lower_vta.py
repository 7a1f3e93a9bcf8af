"""Schedule -> VTA loop nest: the ordinary lowering, scopes and virtual threads made explicit,
and a static plan of the on-chip memories.

``lower_vta(sch, args, name, config)`` runs ``compiler.lower.loop_nest`` and the front passes
(simplify), then

1. *annotates* the nest: every buffer of a stage in a VTA scope is allocated in that scope
   (``pad = allocate(int8[1, 2, 9, 16, 1, 16], vta.inp)``) and loops marked
   ``virtual_thread`` print as such;
2. *plans memory*: each on-chip buffer gets a fixed offset (in SRAM entries) in its buffer
   (INP, WGT or ACC), allocations nest like a stack, a virtual-thread loop holds one copy of
   everything allocated inside it per thread, and an ACC stage that only transforms its
   producer element-wise is computed in place (it shares the producer's entries, since ALU
   instructions update ACC in place). A schedule that needs more entries than a buffer holds
   raises ``VTAError`` naming the buffer, the stages and their sizes.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.patterns import alu_chain, match_gemm
from tiletune.compiler.lower import loop_nest, run_passes
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.errors import VTAError
from tiletune.ir.expr import Load
from tiletune.ir.functor import Rewriter, collect
from tiletune.ir.schedule import Schedule
from tiletune.ir.stmt import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Stmt, Store
from tiletune.ir.tensor import Tensor

VTA_SCOPES = ("vta.inp", "vta.wgt", "vta.acc")
SRAM_OF_SCOPE = {"vta.inp": "INP", "vta.wgt": "WGT", "vta.acc": "ACC"}


def sram_depth(config: VTAConfig, scope: str) -> int:
    return {"vta.inp": config.inp_depth, "vta.wgt": config.wgt_depth,
            "vta.acc": config.acc_depth}[scope]


def element_shape(config: VTAConfig, scope: str) -> tuple[int, int]:
    """The trailing dims of a buffer in ``scope``: one SRAM entry."""
    return {"vta.inp": (config.batch, config.block_in),
            "vta.wgt": (config.block_out, config.block_in),
            "vta.acc": (config.batch, config.block_out)}[scope]


def entries(buf: Buffer) -> int:
    """SRAM entries of an on-chip buffer (its leading dims)."""
    return math.prod(buf.shape[:-2])


@dataclass
class MemoryPlan:
    """Static SRAM offsets (thread 0) and per-thread strides of virtual-thread loops."""

    offsets: dict[int, int] = field(default_factory=dict)  # buffer uid -> entry offset
    thread_stride: dict[int, dict[str, int]] = field(default_factory=dict)  # loop var uid
    usage: dict[str, int] = field(default_factory=dict)  # scope -> peak entries
    aliases: dict[int, str] = field(default_factory=dict)  # buffer uid -> producer name


@dataclass
class VTAFunc:
    func: PrimFunc
    plan: MemoryPlan
    vthreads: int  # threads of the widest virtual-thread nesting (1: none)


def lower_vta(sch: Schedule, args: Sequence[Tensor], name: str, config: VTAConfig,
              dump: str | os.PathLike | None = None) -> VTAFunc:
    """Lower, annotate and plan (see the module docstring)."""
    func = run_passes(loop_nest(sch, args, name), pipeline("vta"), dump)
    scopes = {st.name: st.scope for st in sch.stages if st.scope in VTA_SCOPES}
    vt_vars = {iv.var.uid for st in sch.stages for iv, ann in st.annotations.items()
               if ann == "virtual_thread"}
    func = func.with_body(_Annotate(scopes, vt_vars).visit(func.body))
    plan, threads = _Planner(config).run(func.body)
    return VTAFunc(func, plan, threads)


class _Annotate(Rewriter):
    """Give on-chip buffers their VTA scope and mark virtual-thread loops."""

    def __init__(self, scopes: dict[str, str], vt_vars: set[int]) -> None:
        self.scopes, self.vt_vars = scopes, vt_vars
        self.map: dict[int, Buffer] = {}

    def _buf(self, b: Buffer) -> Buffer:
        return self.map.get(b.uid, b)

    def visit_Allocate(self, s: Allocate) -> Stmt:
        b = s.buffer
        scope = self.scopes.get(b.name)
        if scope and b.uid not in self.map:
            self.map[b.uid] = Buffer(b.name, b.dtype, b.shape, scope)
        return Allocate(self._buf(b), self.visit(s.body))

    def visit_Store(self, s: Store) -> Stmt:
        return Store(self._buf(s.buffer), self.visit(s.indices), self.visit(s.value),
                     self.visit(s.pred))

    def visit_Load(self, e: Load) -> Load:
        return Load(self._buf(e.buffer), self.visit(e.indices), e.dtype, self.visit(e.pred))

    def visit_For(self, s: For) -> Stmt:
        kind = "virtual_thread" if s.var.uid in self.vt_vars else s.kind
        return For(s.var, s.lo, s.extent, kind, self.visit(s.body))


@dataclass
class _Alloc:
    buffer: Buffer
    offset: int
    threads: int  # copies (product of enclosing virtual-thread extents)


class _Planner:
    def __init__(self, config: VTAConfig) -> None:
        self.config = config
        self.plan = MemoryPlan()
        self.allocs: list[_Alloc] = []

    def run(self, body: Stmt) -> tuple[MemoryPlan, int]:
        tops = dict.fromkeys(VTA_SCOPES, 0)
        self.max_threads = 1
        peak = self._walk(body, tops, [], 1)
        self.plan.usage = peak
        for scope in VTA_SCOPES:
            self._check(scope, peak[scope])
        return self.plan, self.max_threads

    def _check(self, scope: str, need: int) -> None:
        depth = sram_depth(self.config, scope)
        if need <= depth:
            return
        name = SRAM_OF_SCOPE[scope]
        ebytes = {"INP": self.config.inp_elem_bytes, "WGT": self.config.wgt_elem_bytes,
                  "ACC": self.config.acc_elem_bytes}[name]
        parts = []
        for a in self.allocs:
            if a.buffer.scope == scope and a.buffer.uid not in self.plan.aliases:
                n = entries(a.buffer)
                copies = f" x {a.threads} virtual threads" if a.threads > 1 else ""
                parts.append(f"{a.buffer.name} {a.buffer.dtype}{list(a.buffer.shape)} = {n} "
                             f"entries{copies}")
        raise VTAError(f"{name} buffer overflow: the schedule needs {need} {name} entries "
                       f"({need * ebytes // 1024} KiB) but the {name} buffer holds {depth} "
                       f"entries of {ebytes} B ({depth * ebytes // 1024} KiB); on-chip tiles: "
                       f"{'; '.join(parts)}. Use smaller tiles (or fewer virtual threads).")

    def _walk(self, s: Stmt, tops: dict[str, int], enclosing: list[tuple[Buffer, Stmt]],
              threads: int) -> dict[str, int]:
        if isinstance(s, Allocate) and s.buffer.scope in VTA_SCOPES:
            b = s.buffer
            scope = b.scope
            alias = _alias_of(b, s.body, enclosing)
            if alias is not None:
                self.plan.offsets[b.uid] = self.plan.offsets[alias.uid]
                self.plan.aliases[b.uid] = alias.name
                inner = tops
            else:
                self.plan.offsets[b.uid] = tops[scope]
                inner = {**tops, scope: tops[scope] + entries(b)}
            self.allocs.append(_Alloc(b, self.plan.offsets[b.uid], threads))
            self._check(scope, inner[scope] * threads)
            return self._walk(s.body, inner, enclosing + [(b, s.body)], threads)
        if isinstance(s, Allocate):
            raise VTAError(f"buffer {s.buffer.name} ({s.buffer.scope}) is an intermediate in "
                           "host memory; on VTA every intermediate stage lives on chip "
                           "(set_scope / cache_read into vta.inp, vta.wgt or vta.acc) or is "
                           "inlined")
        if isinstance(s, For) and s.kind == "virtual_thread":
            n = int(s.extent.value)  # type: ignore[attr-defined]
            self.max_threads = max(self.max_threads, threads * n)
            inner = self._walk(s.body, tops, enclosing, threads * n)
            stride = {k: inner[k] - tops[k] for k in VTA_SCOPES}
            self.plan.thread_stride[s.var.uid] = stride
            return {k: tops[k] + n * stride[k] for k in VTA_SCOPES}
        if isinstance(s, For):
            return self._walk(s.body, tops, enclosing, threads)
        if isinstance(s, IfThenElse):
            out = self._walk(s.then, tops, enclosing, threads)
            if s.else_ is not None:
                other = self._walk(s.else_, tops, enclosing, threads)
                out = {k: max(out[k], other[k]) for k in VTA_SCOPES}
            return out
        if isinstance(s, Seq):
            out = dict(tops)
            for x in s.stmts:
                peak = self._walk(x, tops, enclosing, threads)
                out = {k: max(out[k], peak[k]) for k in VTA_SCOPES}
            return out
        return dict(tops)


def _alias_of(buf: Buffer, body: Stmt, enclosing: list[tuple[Buffer, Stmt]]
              ) -> Buffer | None:
    """The ACC buffer ``buf`` can share: its element-wise producer, read by nothing else."""
    if buf.scope != "vta.acc":
        return None
    stores = collect(body, lambda n: isinstance(n, Store) and n.buffer is buf)
    if len(stores) != 1 or match_gemm(buf, stores[0].value) is not None:
        return None
    try:
        base, _ = alu_chain(stores[0].value)
    except VTAError:
        return None
    src = base.buffer
    scope_body = next((b for e, b in enclosing if e is src), None)
    if (src.scope != "vta.acc" or scope_body is None or src.shape != buf.shape
            or not _same_indices(base.indices, stores[0].indices)):
        return None
    readers = [load for st in collect(scope_body, lambda n: isinstance(n, Store)
                                      and n.buffer is not src)
               for load in collect(st.value, lambda n: isinstance(n, Load) and n.buffer is src)]
    return src if len(readers) == 1 and readers[0] is base else None


def _same_indices(a: tuple, b: tuple) -> bool:
    from tiletune.ir.expr import structural_equal
    return len(a) == len(b) and all(structural_equal(x, y) for x, y in zip(a, b))
