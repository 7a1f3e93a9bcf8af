"""VTA code generation: run the host loops of the loop nest, turn each innermost nest into
instructions, and interleave virtual threads.

Like VTA's runtime (the CPU runs the outer loops and pushes instructions), the generator
walks the annotated loop nest with concrete values for every loop that encloses an
allocation or several statements. An innermost nest (loops around one Store) becomes one
*op*: a group of instructions for one module, with the SRAM entries it reads and writes:

    LOAD   sram[..] = G[..] (zero padding where masked)     load module (ACC: compute)
    GEMM   acc += inp * wgt, and the reset acc = 0          compute module
    ALU    acc = f(acc, imm | acc)                           compute module
    STORE  out[..] = int8(acc[..])                           store module

Indices are evaluated over the nest's grid with NumPy (``evaluate.Grid``) and folded into
hardware loops (``fold_uop_loops``). A ``virtual_thread`` loop runs each thread into its own
op list, with its own copy of the buffers allocated inside (``lower_vta.MemoryPlan``), and
the lists are merged segment by segment (a segment is a run of ops on one module): thread
0's loads, thread 1's loads, thread 0's GEMMs, thread 1's GEMMs, ... so one thread's DMA
overlaps the other's compute once ``sync`` has added the dependency tokens.

Ops carry typed instructions (``ops.GemmLoop``, ``AluLoop``, ``DmaLoad``, ``DmaStore``). An
affine nest is emitted once relative to its operands' bases (``emit(..., relative=True)``)
and each host iteration moves that copy with ``Op.shifted``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.evaluate import Env, ExprCompiler, Grid
from tiletune.backends.vta.fold_uop_loops import fold_loops, plan_dma, restrict_to_box
from tiletune.backends.vta.isa import AluOp, HardwareModule, MemType
from tiletune.backends.vta.lower_vta import VTA_SCOPES, VTAFunc, element_shape
from tiletune.backends.vta.ops import (
    AluLoop,
    ArgInfo,
    DmaLoad,
    DmaStore,
    GemmLoop,
    Insn,
    Op,
    Span,
    interleave,
)
from tiletune.backends.vta.patterns import AluStep, alu_chain, is_reset, match_copy, match_gemm
from tiletune.compiler.arith import flat_linear
from tiletune.errors import LoweringError, VTAError
from tiletune.ir.expr import Cast, Const, Expr, Load, Var
from tiletune.ir.functor import collect
from tiletune.ir.stmt import Allocate, Buffer, For, IfThenElse, Seq, Stmt, Store


def arg_kinds(vf: VTAFunc) -> dict[int, MemType]:
    """The DRAM element kind of every argument, from the nests that read or write it."""
    kinds: dict[int, MemType] = {}
    params = {b.uid: b for b in vf.func.params}

    def note(buf: Buffer, kind: MemType) -> None:
        old = kinds.setdefault(buf.uid, kind)
        if old != kind:
            raise VTAError(f"argument {buf.name} is accessed both as {old.name} and as "
                           f"{kind.name} data; pass separate arrays")

    for st in _stores(vf.func.body):
        if st.buffer.uid in params:
            note(st.buffer, MemType.OUT)
        elif st.buffer.scope in VTA_SCOPES:
            copy = match_copy(st.value)
            if copy is None or copy.source.buffer.uid not in params:
                continue
            src = copy.source.buffer
            kind = {"vta.inp": MemType.INP, "vta.wgt": MemType.WGT}.get(st.buffer.scope)
            if kind is None:
                kind = MemType.ACC if src.dtype == "int32" else MemType.ACC_8BIT
            note(src, kind)
    for b in vf.func.params:
        if b.uid not in kinds:
            raise VTAError(f"argument {b.name} is neither loaded nor stored by the VTA "
                           "program")
    return kinds


def _stores(s: Stmt) -> list[Store]:
    return collect(s, lambda n: isinstance(n, Store))


class CodeGen:
    """Turns an annotated, planned loop nest into a list of ops (see the module docstring)."""

    def __init__(self, vf: VTAFunc, config: VTAConfig, args: dict[int, ArgInfo]) -> None:
        self.vf, self.config, self.args = vf, config, args
        self.bases: dict[int, int] = {}  # on-chip buffer uid -> entry offset (this thread)
        self._plans: dict[int, tuple[Stmt, _NestPlan]] = {}
        self.compile = ExprCompiler()
        c = config
        self.max_iter = (1 << c.loop_iter_width) - 1
        self.max_kernel = max(1, c.uop_depth // 8)
        w = c.width
        self.gemm_factors = ((1 << w("gemm", "dst_factor_out")) - 1,
                             (1 << w("gemm", "src_factor_out")) - 1,
                             (1 << w("gemm", "wgt_factor_out")) - 1)
        self.alu_factors = ((1 << w("alu", "dst_factor_out")) - 1,
                            (1 << w("alu", "src_factor_out")) - 1)
        self.max_dma = (1 << w("mem", "x_size")) - 1
        self.max_pad = (1 << w("mem", "y_pad_0")) - 1
        self.imm_range = (-(1 << (c.alu_imm_width - 1)), (1 << (c.alu_imm_width - 1)) - 1)

    def run(self) -> list[Op]:
        return self._stmt(self.vf.func.body, {}, dict.fromkeys(VTA_SCOPES, 0))

    # -- host-level statements ------------------------------------------------------------
    def _stmt(self, s: Stmt, env: Env, shift: dict[str, int]) -> list[Op]:
        if _is_nest(s):
            return self._nest(s, env)
        if isinstance(s, Seq):
            return [op for x in s.stmts for op in self._stmt(x, env, shift)]
        if isinstance(s, Allocate):
            b = s.buffer
            self.bases[b.uid] = self.vf.plan.offsets[b.uid] + shift[b.scope]
            return self._stmt(s.body, env, shift)
        if isinstance(s, IfThenElse):
            if bool(self.compile(s.cond)(env)):
                return self._stmt(s.then, env, shift)
            return [] if s.else_ is None else self._stmt(s.else_, env, shift)
        if isinstance(s, For) and s.kind == "spatial" and isinstance(s.body, Seq):
            # parallel lanes: distribute the loop over the statements (e.g. a GEMM whose
            # reduction is entirely spatial has its reset inside the block)
            parts = [For(s.var, s.lo, s.extent, s.kind, x) for x in s.body.stmts]
            return [op for x in parts for op in self._stmt(x, env, shift)]
        if isinstance(s, For):
            lo, n = self._int(s.lo, env), self._int(s.extent, env)
            if s.kind == "virtual_thread":
                stride = self.vf.plan.thread_stride[s.var.uid]
                threads = [self._stmt(s.body, {**env, s.var.uid: lo + t},
                                      {k: shift[k] + t * stride[k] for k in shift})
                           for t in range(n)]
                return interleave(threads)
            out: list[Op] = []
            for v in range(lo, lo + n):
                out += self._stmt(s.body, {**env, s.var.uid: v}, shift)
            return out
        raise LoweringError(f"VTA codegen: unexpected statement {s!r}")

    def _int(self, e: Expr, env: Env) -> int:
        return int(self.compile(e)(env))

    # -- innermost nests ------------------------------------------------------------------
    def _nest(self, s: Stmt, env: Env) -> list[Op]:
        plan = self._plans.get(id(s))
        if plan is None:
            plan = self._plans[id(s)] = (s, self._analyze(s))
        return plan[1].emit(self, env)

    def _analyze(self, s: Stmt) -> _NestPlan:
        """What an innermost nest is, checked once (the result is cached per nest)."""
        loops: list[tuple[Var, int]] = []
        conds: list[Expr] = []
        while not isinstance(s, Store):
            if isinstance(s, For):
                if not (isinstance(s.lo, Const) and s.lo.value == 0
                        and isinstance(s.extent, Const)):
                    raise LoweringError(f"VTA codegen: loop {s.var.name} must run over a "
                                        "constant range starting at 0")
                loops.append((s.var, int(s.extent.value)))
                s = s.body
            else:
                assert isinstance(s, IfThenElse)
                conds.append(s.cond)
                s = s.then
        nest = _Nest(loops, conds, s)
        buf, value = s.buffer, s.value
        if buf.scope == "vta.acc" and is_reset(value):
            return self._reset(nest)
        if buf.scope == "vta.acc" and (g := match_gemm(buf, value)) is not None:
            return self._gemm(nest, g.acc, g.inp, g.wgt)
        if buf.scope in VTA_SCOPES and (copy := match_copy(value)) is not None:
            return self._load(nest, copy.source, copy.cond)
        if buf.scope == "vta.acc":
            return self._alu(nest)
        if buf.uid in self.args:
            return self._store(nest)
        raise VTAError(f"cannot map the statement `{s!r}` to a VTA instruction")

    def _elements(self, nest: _Nest, idx: tuple, dims: tuple[int, int], what: str
                  ) -> tuple[int | None, int | None]:
        """The loop vars of the two element axes (None for a size-1 axis indexed by 0)."""
        out: list[int | None] = []
        extents = {v.uid: n for v, n in nest.loops}
        for e, n in zip(idx[-2:], dims):
            if isinstance(e, Const) and e.value == 0 and n == 1:
                out.append(None)
            elif isinstance(e, Var) and extents.get(e.uid) == n:
                out.append(e.uid)
            else:
                raise VTAError(f"{what}: the last two indices must run over the whole "
                               f"{dims[0]} x {dims[1]} element (one SRAM entry), got "
                               f"{', '.join(map(repr, idx[-2:]))}")
        return out[0], out[1]

    def _plan(self, kind: str, nest: _Nest, evars: Sequence[int | None],
              accesses: Sequence[Store | Load], what: str) -> _NestPlan:
        """Check the element axes stay in the last two dims; compile the flat indices."""
        uids = {u for u in evars if u is not None}
        for ld in accesses:
            for e in ld.indices[:-2]:
                if _uses(e, uids):
                    raise VTAError(f"{what}: {ld.buffer.name} is indexed by an element axis "
                                   "outside its last two dimensions")
        for c in nest.conds:
            if _uses(c, uids):
                raise VTAError(f"{what}: a condition depends on an element axis")
        grid = Grid([(v, n) for v, n in nest.loops if v.uid not in uids])
        operands = [(ld.buffer, [self.compile(e) for e in ld.indices[:-2]]) for ld in accesses]
        plan = _NestPlan(kind, what, grid, [self.compile(c) for c in nest.conds], operands)
        forms = [flat_linear(ld.indices[:-2], ld.buffer.shape[:-2]) for ld in accesses]
        if all(f is not None for f in forms) and kind != "alu":
            plan.linear = [_split_form(f, grid) for f in forms]  # type: ignore[arg-type]
        return plan

    def _reset(self, nest: _Nest) -> _NestPlan:
        st = nest.store
        what = f"reset of {st.buffer.name}"
        ev = self._elements(nest, st.indices, element_shape(self.config, "vta.acc"), what)
        return self._plan("reset", nest, ev, [st], what)

    def _gemm(self, nest: _Nest, acc: Load, inp: Load, wgt: Load) -> _NestPlan:
        st = nest.store
        what = f"GEMM into {st.buffer.name}"
        c = self.config
        b, o = self._elements(nest, st.indices, (c.batch, c.block_out), what)
        if self._elements(nest, acc.indices, (c.batch, c.block_out), what) != (b, o):
            raise VTAError(f"{what}: the accumulator is read at another element")
        bi, i = self._elements(nest, inp.indices, (c.batch, c.block_in), what)
        o2, i2 = self._elements(nest, wgt.indices, (c.block_out, c.block_in), what)
        if bi != b or o2 != o or i2 != i or i is None or (o is not None and o == i):
            raise VTAError(f"{what}: the spatial block must be the GEMM unit, "
                           f"acc[b, o] += inp[b, i] * wgt[o, i] over BATCH x BLOCK_OUT x "
                           f"BLOCK_IN = {c.batch} x {c.block_out} x {c.block_in}")
        if not _same(acc.indices, st.indices):
            raise VTAError(f"{what}: the accumulator must be read where it is written")
        return self._plan("gemm", nest, (b, o, i), [st, inp, wgt], what)

    def _load(self, nest: _Nest, src: Load, cond: Expr | None) -> _NestPlan:
        st = nest.store
        what = f"load of {st.buffer.name}"
        dims = element_shape(self.config, st.buffer.scope)
        ev = self._elements(nest, st.indices, dims, what)
        if self._elements(nest, src.indices, dims, what) != ev:
            raise VTAError(f"{what}: {src.buffer.name} must be copied element by element")
        if tuple(src.buffer.shape[-2:]) != dims:
            raise VTAError(f"{what}: {src.buffer.name} must end in the {dims[0]} x {dims[1]} "
                           f"element shape, got shape {src.buffer.shape}")
        if cond is not None and _uses(cond, {u for u in ev if u is not None}):
            raise VTAError(f"{what}: the padding condition depends on an element axis")
        plan = self._plan("load", nest, ev, [st, src], what)
        if cond is not None:  # entries where it fails become the DMA's zero padding
            plan.zero_cond = self.compile(cond)
        return plan

    def _store(self, nest: _Nest) -> _NestPlan:
        st = nest.store
        what = f"store of {st.buffer.name}"
        value = st.value
        c = self.config
        if st.buffer.dtype != str(c.out_dtype):
            raise VTAError(f"{what}: STORE writes {c.out_dtype} (ACC truncated to its low "
                           f"bits); output {st.buffer.name} is {st.buffer.dtype}")
        inner = value.a if isinstance(value, Cast) else value
        if not (isinstance(inner, Load) and inner.buffer.scope == "vta.acc"):
            raise VTAError(f"{what}: the output must be a cast of a vta.acc stage, got "
                           f"{value!r}")
        dims = (c.batch, c.block_out)
        ev = self._elements(nest, st.indices, dims, what)
        if self._elements(nest, inner.indices, dims, what) != ev:
            raise VTAError(f"{what}: {inner.buffer.name} must be stored element by element")
        return self._plan("store", nest, ev, [inner, st], what)

    def _alu(self, nest: _Nest) -> _NestPlan:
        st = nest.store
        what = f"ALU stage {st.buffer.name}"
        try:
            base, steps = alu_chain(st.value)
        except VTAError as e:
            raise VTAError(f"{what}: {e}") from None
        c = self.config
        dims = (c.batch, c.block_out)
        ev = self._elements(nest, st.indices, dims, what)
        operands = [base] + [s.src for s in steps if s.src is not None]
        for ld in operands:
            if ld.buffer.scope != "vta.acc":
                raise VTAError(f"{what}: ALU operands must be vta.acc buffers, "
                               f"{ld.buffer.name} is {ld.buffer.scope}")
            if self._elements(nest, ld.indices, dims, what) != ev:
                raise VTAError(f"{what}: {ld.buffer.name} must be read element by element "
                               "(the ALU works on whole ACC entries)")
        for step in steps:
            lo, hi = self.imm_range
            if step.imm is not None and not lo <= step.imm <= hi:
                raise VTAError(f"{what}: immediate {step.imm} does not fit the ALU's "
                               f"{c.alu_imm_width}-bit signed immediate")
        plan = self._plan("alu", nest, ev, [st] + operands, what)
        plan.steps = steps
        return plan

    # -- emission (per host iteration) ----------------------------------------------------
    def _index(self, plan: _NestPlan, genv: Env, k: int, dram: bool = False,
               relative: bool = False) -> np.ndarray:
        """Operand ``k``'s entry (or DRAM element) at every grid point; from its buffer's
        base, or from 0 when ``relative``."""
        buf, fns = plan.operands[k]
        flat: Any = 0
        for f, n in zip(fns, buf.shape[:-2]):
            flat = flat * int(n) + f(genv)
        if relative:
            base = 0
        elif dram:
            base = self.args[buf.uid].base
        else:
            if buf.uid not in self.bases:
                raise LoweringError(f"on-chip buffer {buf.name} is used outside its "
                                    "allocation")
            base = self.bases[buf.uid]
        return np.broadcast_to(np.asarray(base + flat, np.int64), plan.grid.shape)

    def _mask(self, plan: _NestPlan, genv: Env) -> np.ndarray | None:
        mask = None
        for c in plan.conds:
            m = np.broadcast_to(np.asarray(c(genv), bool), plan.grid.shape)
            mask = m if mask is None else mask & m
        return mask

    def _base(self, plan: _NestPlan, k: int, env: Env) -> int:
        """Operand ``k``'s index at the grid origin (host part of its linear form)."""
        buf = plan.operands[k][0]
        coef, _ = plan.linear[k][1]  # type: ignore[index]
        host = sum(v * int(env[u]) for u, v in coef.items())  # the constant is in the ops
        if buf.uid in self.args:
            return self.args[buf.uid].base + host
        if buf.uid not in self.bases:
            raise LoweringError(f"on-chip buffer {buf.name} is used outside its allocation")
        return self.bases[buf.uid] + host

    def emit_fast(self, plan: _NestPlan, env: Env) -> list[Op] | None:
        """Affine nests without masked-out points: fold once, shift by the bases after."""
        if plan.kind == "alu" or plan.linear is None:
            return None
        if plan.conds or plan.zero_cond is not None:
            genv = {**env, **plan.grid.axes}
            for mask in (self._mask(plan, genv), self._zero_mask(plan, genv)):
                if mask is not None and not mask.all():
                    return None
        if plan.relative is None:
            rel_env = {u: 0 for u in _host_uids(plan)}
            plan.relative = self.emit(plan, {**rel_env, **plan.grid.axes}, relative=True)
        shift = [self._base(plan, k, env) for k in range(len(plan.operands))]
        return [op.shifted(shift) for op in plan.relative]

    def emit(self, plan: _NestPlan, genv: Env, relative: bool = False) -> list[Op]:
        """The ops of one nest over its grid (``relative``: every base at 0, no masks)."""
        match plan.kind:
            case "reset":
                return self.emit_reset(plan, genv, relative)
            case "gemm":
                return self.emit_gemm(plan, genv, relative)
            case "load":
                return self.emit_load(plan, genv, relative)
            case "store":
                return self.emit_store(plan, genv, relative)
            case "alu":
                return self.emit_alu(plan, genv)
        raise LoweringError(f"VTA codegen: unknown nest kind {plan.kind!r}")

    def emit_reset(self, plan: _NestPlan, genv: Env, relative: bool = False) -> list[Op]:
        dst = self._index(plan, genv, 0, relative=relative)
        arrays = restrict_to_box([dst], None if relative else self._mask(plan, genv),
                                 plan.what)
        if arrays is None:
            return []
        insns = fold_loops(arrays, max_iter=self.max_iter, max_factor=self.gemm_factors[:1],
                           max_kernel=self.max_kernel)
        return [Op(HardwareModule.COMPUTE, [GemmLoop(li, reset=True) for li in insns],
                   writes=[_span("ACC", arrays[0], 0)], what=plan.what)]

    def emit_gemm(self, plan: _NestPlan, genv: Env, relative: bool = False) -> list[Op]:
        arrays = [self._index(plan, genv, k, relative=relative) for k in range(3)]
        arrays = restrict_to_box(arrays, None if relative else self._mask(plan, genv),
                                 plan.what)
        if arrays is None:
            return []
        insns = fold_loops(arrays, max_iter=self.max_iter, max_factor=self.gemm_factors,
                           max_kernel=self.max_kernel)
        return [Op(HardwareModule.COMPUTE, [GemmLoop(li, reset=False) for li in insns],
                   reads=[_span("INP", arrays[1], 1), _span("WGT", arrays[2], 2),
                          _span("ACC", arrays[0], 0)],
                   writes=[_span("ACC", arrays[0], 0)], what=plan.what)]

    def _zero_mask(self, plan: _NestPlan, genv: Env) -> np.ndarray | None:
        if plan.zero_cond is None:
            return None
        return np.broadcast_to(np.asarray(plan.zero_cond(genv), bool), plan.grid.shape)

    def emit_load(self, plan: _NestPlan, genv: Env, relative: bool = False) -> list[Op]:
        sram = self._index(plan, genv, 0, relative=relative)
        dram = self._index(plan, genv, 1, dram=True, relative=relative)
        zero = None
        if not relative:  # copy where guarded in and the padding condition holds, else zeros
            guard, cond = self._mask(plan, genv), self._zero_mask(plan, genv)
            zero = guard if cond is None else cond if guard is None else guard & cond
        dmas = plan_dma(sram, dram, zero, max_size=self.max_dma, max_pad=self.max_pad,
                        what=plan.what)
        dst, src = plan.operands[0][0], plan.operands[1][0]
        name = {"vta.inp": "INP", "vta.wgt": "WGT", "vta.acc": "ACC"}[dst.scope]
        module = HardwareModule.LOAD if name in ("INP", "WGT") else HardwareModule.COMPUTE
        mem = self.args[src.uid].kind
        return [Op(module, [DmaLoad(mem, d) for d in dmas], writes=[_span(name, sram, 0)],
                   what=plan.what)]

    def emit_store(self, plan: _NestPlan, genv: Env, relative: bool = False) -> list[Op]:
        sram = self._index(plan, genv, 0, relative=relative)
        dram = self._index(plan, genv, 1, dram=True, relative=relative)
        arrays = restrict_to_box([sram, dram], None if relative else self._mask(plan, genv),
                                 plan.what)
        if arrays is None:
            return []
        dmas = plan_dma(arrays[0], arrays[1], None, max_size=self.max_dma,
                        max_pad=self.max_pad, what=plan.what)
        return [Op(HardwareModule.STORE, [DmaStore(d) for d in dmas],
                   reads=[_span("ACC", arrays[0], 0)], what=plan.what)]

    def emit_alu(self, plan: _NestPlan, genv: Env) -> list[Op]:
        what = plan.what
        dst = self._index(plan, genv, 0)
        x = self._index(plan, genv, 1)
        srcs = [self._index(plan, genv, k) for k in range(2, len(plan.operands))]
        mask = self._mask(plan, genv)
        if np.unique(dst).size != dst.size:
            raise VTAError(f"{what}: several iterations write the same ACC entry")
        todo: list[tuple[AluStep, np.ndarray | None, int]] = []
        if not np.array_equal(x, dst):
            if np.intersect1d(x, dst).size:
                raise VTAError(f"{what}: the operand overlaps the result at other entries")
            todo += [(AluStep(AluOp.MUL, imm=0), None, 0), (AluStep(AluOp.ADD), x, 1)]
        it = iter(enumerate(srcs, start=2))
        for s in plan.steps:
            k, src = (0, None) if s.src is None else next(it)
            todo.append((s, src, k))
        insns: list[Insn] = []
        reads = [_span("ACC", dst, 0)]
        for step, src, operand in todo:
            arrays = [dst] if src is None else [dst, src]
            if src is not None:
                if (np.isin(src, dst) & (src != dst)).any():
                    raise VTAError(f"{what}: an operand overlaps the result at other entries")
                reads.append(_span("ACC", src, operand))
            arrays = restrict_to_box(arrays, mask, what)
            if arrays is None:
                return []
            for li in fold_loops(arrays, max_iter=self.max_iter,
                                 max_factor=self.alu_factors[:len(arrays)],
                                 max_kernel=self.max_kernel):
                insns.append(AluLoop(li, step.op, step.imm))
        return [Op(HardwareModule.COMPUTE, insns, reads=reads, writes=[_span("ACC", dst, 0)],
                   what=what)]


@dataclass
class _NestPlan:
    """An analysed innermost nest: its kind, grid, conditions and flat-index functions."""

    kind: str
    what: str
    grid: Grid
    conds: list[Any]
    operands: list[tuple[Buffer, list[Any]]]  # (buffer, index fns of its leading dims)
    steps: list[AluStep] = field(default_factory=list)
    zero_cond: Any = None  # a load's padding condition (zeros where it fails)
    linear: list[tuple[np.ndarray, Any]] | None = None  # per operand: grid part, host part
    relative: list[Op] | None = None  # the ops at base 0 (affine nests)

    def emit(self, cg: CodeGen, env: Env) -> list[Op]:
        fast = cg.emit_fast(self, env)
        if fast is not None:
            return fast
        return cg.emit(self, {**env, **self.grid.axes})


def _split_form(form: Any, grid: Grid) -> tuple[np.ndarray, Any]:
    """A linear form split into grid coefficients (per axis) and the host part."""
    coef, const = form
    axes = [v.uid for v, _ in grid.loops]
    grid_coef = np.array([coef.get(u, 0) for u in axes], np.int64)
    host = {u: v for u, v in coef.items() if u not in axes}
    return grid_coef, (host, const)


def _host_uids(plan: _NestPlan) -> set[int]:
    return {u for _, (host, _) in plan.linear or [] for u in host}


def _same(a: tuple, b: tuple) -> bool:
    from tiletune.ir.expr import structural_equal
    return len(a) == len(b) and all(structural_equal(x, y) for x, y in zip(a, b))


@dataclass
class _Nest:
    loops: list[tuple[Var, int]]
    conds: list[Expr]
    store: Store


def _uses(e: Any, uids: set[int]) -> bool:
    """Does ``e`` mention a variable whose uid is in ``uids``?"""
    return bool(uids) and any(v.uid in uids for v in collect(e, lambda n: isinstance(n, Var)))


def _is_nest(s: Stmt) -> bool:
    while True:
        if isinstance(s, Store):
            return True
        if isinstance(s, For) and s.kind != "virtual_thread":
            s = s.body
        elif isinstance(s, IfThenElse) and s.else_ is None:
            s = s.then
        else:
            return False


def _span(name: str, a: np.ndarray, operand: int) -> Span:
    return Span(name, int(a.min()), int(a.max()) + 1, operand)
