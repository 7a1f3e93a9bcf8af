"""PrimFunc -> LLVM IR text: statements, the exported kernel and its timing wrapper.

The module holds, for a kernel symbol ``k``:

* ``void @k(ptr noalias nocapture %A, ...)`` - the kernel, one pointer per parameter buffer;
* ``double @k__time(ptr %A, ..., i64 number)`` - calls ``@k`` ``number`` times between two
  ``clock_gettime(CLOCK_MONOTONIC)`` and returns seconds per call;
* ``i32 @k__num_threads`` - threads launched per parallel region (0: libgomp's default,
  1: run serially in the calling thread); the runtime sets it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import llvmlite.binding as llvm

from tiletune.backends.llvm import target
from tiletune.backends.llvm.checks import ALLOC_FAILED, checked, flag_error, in_bounds
from tiletune.backends.llvm.emit import (
    FunctionText,
    ModuleText,
    const_lit,
    elem_bytes,
    float_lit,
    ll_type,
    mem_elem,
    param_decl,
    value_name,
    vec,
)
from tiletune.backends.llvm.exprs import ExprGen, split_ramp
from tiletune.backends.llvm.hoist import HoistPlan
from tiletune.backends.llvm.parallel import emit_parallel, gomp_available
from tiletune.errors import BuildError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Const, Var, const_value
from tiletune.ir.stmt import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Stmt, Store

LOCAL_STACK_LIMIT = 1 << 20  # bytes; bigger "local" buffers go to the heap
_KERNEL_ATTRS = 'noinline nounwind "frame-pointer"="none"'


@dataclass(frozen=True)
class KernelIR:
    """The generated LLVM module and the names of its entry points."""

    text: str
    symbol: str
    time_symbol: str
    threads_symbol: str
    libs: tuple[str, ...] = ()  # native libraries it calls: "gomp", "mvec"
    error_symbol: str = ""  # i32 global: 1 after a failed heap allocation ("": none)

    @property
    def parallel(self) -> bool:
        return "gomp" in self.libs


@dataclass
class KernelContext:
    """State shared by the kernel function and the functions outlined from it."""

    symbol: str
    mod: ModuleText = field(default_factory=ModuleText)
    n_outlined: int = 0
    heap: bool = False  # the error global exists (a heap buffer or a bounds check)
    bounds_check: bool = False  # check every load and store at run time
    free_vars: dict = field(default_factory=dict)  # hoisting's cache: id(expr) -> (expr, uids)

    @property
    def threads_symbol(self) -> str:
        return f"{self.symbol}__num_threads"

    @property
    def error_symbol(self) -> str:
        """i32 global set to 1 when a heap allocation fails (the runtime raises MemoryError
        and resets it); the statements that needed the buffer are skipped."""
        return f"{self.symbol}__error"

    def use_error_global(self) -> str:
        """The error global's name, defining it on first use."""
        if not self.heap:
            self.heap = True
            self.mod.globals.append(f"@{self.error_symbol} = global i32 0, align 4")
        return self.error_symbol


_RESERVED = {"main", "GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads",
             "clock_gettime", "aligned_alloc", "free"}


def symbol_name(name: str) -> str:
    """A C identifier for a kernel name, prefixed with ``tt_`` when it would clash with a
    symbol of the process (a kernel called ``exp`` would otherwise be called by ``exp()``)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name) or "kernel"
    if s[0].isdigit() or s in _RESERVED or llvm.address_of_symbol(s) is not None:
        s = "tt_" + s
    return s


class StmtGen(ExprGen):
    """Lowers statements of one LLVM function."""

    def __init__(self, ctx: KernelContext, fn: FunctionText, vars: dict[int, str],
                 bufs: dict[int, str], in_parallel: bool = False) -> None:
        self.ctx, self.mod, self.fn = ctx, ctx.mod, fn
        self.vars, self.bufs, self.in_parallel = vars, bufs, in_parallel
        self._plans: list[HoistPlan] = []  # the nests being emitted, outermost first

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Seq):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, Store):
            self._store(s)
        elif isinstance(s, For):
            self._for(s)
        elif isinstance(s, Allocate):
            self._allocate(s)
        elif isinstance(s, IfThenElse):
            self._if(s)
        else:
            raise BuildError(f"the LLVM backend cannot compile statement {type(s).__name__}")

    # ------------------------------------------------------------------ loops

    def _for(self, s: For) -> None:
        ce, cl = const_value(s.extent), const_value(s.lo)
        if s.kind == "parallel" and not self.in_parallel and not (isinstance(ce, int) and ce < 2):
            if gomp_available():
                emit_parallel(self, s)
                return
        if isinstance(ce, int) and ce <= 0:
            return
        lo = self.index(s.lo)
        if ce == 1:  # no loop; the memo must not mix two bindings of the same variable
            self.fn.memo.clear()
            self.fn.push_scope()
            self.vars[s.var.uid] = self._loop_value(s.var, lo)
            self.stmt(s.body)
            del self.vars[s.var.uid]
            self.fn.pop_scope()
            return
        if isinstance(ce, int) and isinstance(cl, int):
            end = str(cl + ce)
        else:
            end = self.fn.op(f"add i64 {lo}, {self.index(s.extent)}")
        self.loop(s.var, lo, end, s.body, maybe_empty=not isinstance(ce, int))

    def _loop_value(self, var: Var, i64: str) -> str:
        """The i64 counter ``i64`` as a value of ``var``'s dtype."""
        if var.dtype == "int64":
            return i64
        if dt.is_int(var.dtype) and dt.lanes(var.dtype) == 1:
            return self.fn.op(f"trunc i64 {i64} to {mem_elem(var.dtype)}")
        raise BuildError(f"loop variable {var.name} has dtype {var.dtype}; it must be an int")

    def loop(self, var: Var, start: str, end: str, body: Stmt, maybe_empty: bool) -> None:
        """``for var in [start, end)``, rotated (body first, test at the bottom)."""
        fn = self.fn
        head, exit_ = fn.label("loop"), fn.label("exit")
        hoisted = self._plans[-1].for_body(body) if self._plans else None
        own_plan = hoisted is None
        if own_plan:
            plan = HoistPlan(var, body, set(self.vars), self.ctx.free_vars)
            self._plans.append(plan)
            hoisted = plan.for_body(body) or []
        for e in hoisted:  # hoist into the preheader
            self.expr(e)
        pre = fn.block
        if maybe_empty:
            g = fn.op(f"icmp slt i64 {start}, {end}")
            fn.emit(f"br i1 {g}, label %{head}, label %{exit_}")
        else:
            fn.emit(f"br label %{head}")
        fn.start_block(head)
        i = fn.fresh(value_name(var.name) + ".")
        slot = len(fn.body)
        fn.body.append("")
        fn.push_scope()
        self.vars[var.uid] = self._loop_value(var, i)
        self.stmt(body)
        del self.vars[var.uid]
        fn.pop_scope()
        nxt = fn.op(f"add nsw i64 {i}, 1")
        done = fn.op(f"icmp eq i64 {nxt}, {end}")
        fn.body[slot] = f"  {i} = phi i64 [ {start}, %{pre} ], [ {nxt}, %{fn.block} ]"
        fn.emit(f"br i1 {done}, label %{exit_}, label %{head}")
        fn.start_block(exit_)
        if own_plan:
            self._plans.pop()

    # ------------------------------------------------------------------ memory

    def _store(self, s: Store) -> None:
        if self.ctx.bounds_check:  # tt.build(..., bounds_check=True)
            ok = in_bounds(self, s.buffer, self.flat_index(s), dt.lanes(s.value.dtype), s.pred)
            checked(self, ok, lambda: self._store_unchecked(s), None)
            return
        self._store_unchecked(s)

    def _store_unchecked(self, s: Store) -> None:
        buf, fn = s.buffer, self.fn
        index = self.flat_index(s)
        vdt = s.value.dtype
        if dt.element(vdt) != dt.element(buf.dtype):
            raise BuildError(f"store of a {vdt} value into {buf.name} ({buf.dtype})")
        n, el, align = dt.lanes(vdt), mem_elem(buf.dtype), elem_bytes(buf.dtype)
        v = self.to_mem(self.expr(s.value), vdt)
        if n == 1:
            p = self.gep(buf, self.index(index))
            if s.pred is None:
                fn.emit(f"store {el} {v}, ptr {p}, align {align}")
            else:
                self._guarded(self.expr(s.pred), f"store {el} {v}, ptr {p}, align {align}")
            fn.memo.clear()
            return
        vt, mt = vec(el, n), f"<{n} x i1>"
        mask = self.mask(s.pred, n)
        ramp = (index, 1) if dt.lanes(index.dtype) == 1 else split_ramp(index)
        if ramp is not None and ramp[1] == 1:
            p = self.gep(buf, self.index(ramp[0]))
            if mask is None:
                fn.emit(f"store {vt} {v}, ptr {p}, align {align}")
            else:
                f = self.mod.intrinsic("masked.store", "void", [vt, "ptr", mt], [vt, "ptr"])
                fn.emit(f"call void {f}({vt} {v}, ptr align {align} {p}, {mt} {mask})")
        else:
            ptrs = self.gep(buf, self.index(index), n)
            pt = f"<{n} x ptr>"
            f = self.mod.intrinsic("masked.scatter", "void", [vt, pt, mt], [vt, pt])
            fn.emit(f"call void {f}({vt} {v}, {pt} align {align} {ptrs}, "
                    f"{mt} {mask or self.true_mask(n)})")
        fn.memo.clear()

    def _guarded(self, cond: str, line: str) -> None:
        fn = self.fn
        body, join = fn.label("st"), fn.label("stj")
        fn.emit(f"br i1 {cond}, label %{body}, label %{join}")
        fn.start_block(body)
        fn.emit(line)
        fn.emit(f"br label %{join}")
        fn.start_block(join)

    def _allocate(self, s: Allocate) -> None:
        buf, fn = s.buffer, self.fn
        try:
            size = int(buf.size)
        except TypeError as exc:
            raise BuildError(f"buffer {buf.name} has a non-constant shape {buf.shape}") from exc
        nbytes = size * elem_bytes(buf.dtype)
        if buf.scope == "local" and nbytes <= LOCAL_STACK_LIMIT:
            self.bufs[buf.uid] = fn.alloca(f"[{size} x {mem_elem(buf.dtype)}]", 64,
                                           value_name(buf.name) + ".")
            self.stmt(s.body)
            del self.bufs[buf.uid]
            return
        alloc = self.mod.declare("aligned_alloc", "declare noalias ptr @aligned_alloc(i64, i64)")
        free = self.mod.declare("free", "declare void @free(ptr)")
        p = fn.op(f"call ptr {alloc}(i64 64, i64 {max(64, -(-nbytes // 64) * 64)})",
                  value_name(buf.name) + ".")
        # NULL (out of memory): flag the error for the runtime and skip the body
        ok, fail, end = fn.label("alloc_ok"), fn.label("alloc_fail"), fn.label("alloc_end")
        got = fn.op(f"icmp ne ptr {p}, null")
        fn.emit(f"br i1 {got}, label %{ok}, label %{fail}")
        fn.start_block(fail)
        flag_error(self, ALLOC_FAILED)
        fn.emit(f"br label %{end}")
        fn.start_block(ok)
        fn.push_scope()
        self.bufs[buf.uid] = p
        self.stmt(s.body)
        del self.bufs[buf.uid]
        fn.emit(f"call void {free}(ptr {p})")
        fn.pop_scope()
        fn.emit(f"br label %{end}")
        fn.start_block(end)

    # ------------------------------------------------------------------ control flow

    def _if(self, s: IfThenElse) -> None:
        c = const_value(s.cond)
        if isinstance(c, (bool, int)) and isinstance(s.cond, Const):
            branch = s.then if c else s.else_
            if branch is not None:
                self.stmt(branch)
            return
        if dt.lanes(s.cond.dtype) != 1:
            raise BuildError(f"if condition {s.cond!r} is a vector ({s.cond.dtype})")
        cond = self.expr(s.cond)
        if not dt.is_bool(s.cond.dtype):
            cmp = "fcmp une" if dt.is_float(s.cond.dtype) else "icmp ne"
            cond = self.fn.op(f"{cmp} {ll_type(s.cond.dtype)} {cond}, "
                              f"{const_lit(0, s.cond.dtype)}")
        fn = self.fn
        then, join = fn.label("then"), fn.label("endif")
        other = fn.label("else") if s.else_ is not None else join
        fn.emit(f"br i1 {cond}, label %{then}, label %{other}")
        fn.start_block(then)
        fn.push_scope()
        self.stmt(s.then)
        fn.pop_scope()
        fn.emit(f"br label %{join}")
        if s.else_ is not None:
            fn.start_block(other)
            fn.push_scope()
            self.stmt(s.else_)
            fn.pop_scope()
            fn.emit(f"br label %{join}")
        fn.start_block(join)


# ---------------------------------------------------------------------- the module


def generate(func: PrimFunc, bounds_check: bool = False) -> KernelIR:
    """LLVM IR text for ``func`` (see the module docstring for the entry points);
    ``bounds_check``: test every load and store at run time (``checks.py``)."""
    params = tuple(func.params)
    for b in params:
        if not isinstance(b, Buffer):
            raise BuildError(f"parameter {b!r} of {func.name} is not a Buffer")
    target.init()
    ctx = KernelContext(symbol_name(func.name), bounds_check=bool(bounds_check))
    names = [f"%{value_name(b.name)}.arg{i}" for i, b in enumerate(params)]
    fn = FunctionText()
    gen = StmtGen(ctx, fn, {}, {b.uid: n for b, n in zip(params, names)})
    gen.stmt(func.body)
    fn.emit("ret void")
    sym = ctx.symbol
    header = f"define void @{sym}({', '.join(param_decl(b, n) for b, n in zip(params, names))})"
    ctx.mod.globals.append(f"@{ctx.threads_symbol} = global i32 0, align 4")
    ctx.mod.globals.append(f"attributes #0 = {{ {_KERNEL_ATTRS} }}")
    ctx.mod.functions.insert(0, fn.define(header + " #0"))
    ctx.mod.functions.append(_timer(ctx, len(params)))
    return KernelIR(ctx.mod.text(), sym, f"{sym}__time", ctx.threads_symbol,
                    tuple(sorted(ctx.mod.libs)), ctx.error_symbol if ctx.heap else "")


def _timer(ctx: KernelContext, nargs: int) -> str:
    """``double @k__time(ptr..., i64 number)``: seconds per call of ``number`` calls."""
    clk = ctx.mod.declare("clock_gettime", "declare i32 @clock_gettime(i32, ptr)")
    args = [f"%a{i}" for i in range(nargs)]
    call_args = ", ".join(f"ptr {a}" for a in args)
    ts = "{ i64, i64 }"
    lines = [
        f"define double @{ctx.symbol}__time({''.join(f'ptr {a}, ' for a in args)}i64 %number) {{",
        "entry:",
        f"  %ts0 = alloca {ts}, align 8",
        f"  %ts1 = alloca {ts}, align 8",
        f"  %r0 = call i32 {clk}(i32 1, ptr %ts0)",
        "  %any = icmp sgt i64 %number, 0",
        "  br i1 %any, label %loop, label %done",
        "loop:",
        "  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]",
        f"  call void @{ctx.symbol}({call_args})",
        "  %i1 = add nsw i64 %i, 1",
        "  %more = icmp slt i64 %i1, %number",
        "  br i1 %more, label %loop, label %done",
        "done:",
        f"  %r1 = call i32 {clk}(i32 1, ptr %ts1)",
        "  %s0 = load i64, ptr %ts0, align 8",
        f"  %p0 = getelementptr {ts}, ptr %ts0, i32 0, i32 1",
        "  %n0 = load i64, ptr %p0, align 8",
        "  %s1 = load i64, ptr %ts1, align 8",
        f"  %p1 = getelementptr {ts}, ptr %ts1, i32 0, i32 1",
        "  %n1 = load i64, ptr %p1, align 8",
        "  %ds = sub i64 %s1, %s0",
        "  %dn = sub i64 %n1, %n0",
        "  %ns = mul i64 %ds, 1000000000",
        "  %tot = add i64 %ns, %dn",
        "  %ftot = sitofp i64 %tot to double",
        "  %cnt = call i64 @llvm.smax.i64(i64 %number, i64 1)",
        "  %fcnt = sitofp i64 %cnt to double",
        "  %per = fdiv double %ftot, %fcnt",
        f"  %sec = fmul double %per, {float_lit(1e-9, False)}",
        "  ret double %sec",
        "}\n",
    ]
    ctx.mod.intrinsic("smax", "i64", ["i64", "i64"], ["i64"])
    return "\n".join(lines)


def written_params(func: PrimFunc) -> list[str]:
    """Names of the parameters that ``func`` stores to (in parameter order)."""
    stored: set[int] = set()

    def walk(s: Any) -> None:
        if isinstance(s, Seq):
            for x in s.stmts:
                walk(x)
        elif isinstance(s, Store):
            stored.add(s.buffer.uid)
        elif isinstance(s, (For, Allocate)):
            walk(s.body)
        elif isinstance(s, IfThenElse):
            walk(s.then)
            walk(s.else_)

    walk(func.body)
    return [b.name for b in func.params if b.uid in stored]
