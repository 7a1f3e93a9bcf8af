"""Parallel loops: outline the body and launch it on libgomp's persistent thread pool.

For a ``parallel`` loop of kernel ``k`` three pieces are emitted::

    internal void @k.parN(<free buffers: ptr noalias>, <free vars>, i64 lo, i64 ext,
                          i32 tid, i32 nthreads)      ; runs chunk tid of nthreads
    internal void @k.parN.omp(ptr closure)            ; unpacks the closure, asks libgomp
                                                      ; for tid / nthreads, calls @k.parN
    caller: closure = {free buffers, free vars, lo, ext}
            n = load @k__num_threads
            n == 1 or ext <= 1 ? call @k.parN(..., 0, 1)         ; serial, no pool involved
                               : GOMP_parallel(@k.parN.omp, closure, min(n, ext), 0)

Chunks are static and contiguous. A parallel loop inside another one runs serially.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import llvmlite.binding as llvm

from tiletune.backends.llvm.emit import FunctionText, ll_type, param_decl, value_name
from tiletune.backends.llvm.target import init
from tiletune.ir.expr import Expr, Var, const_value, field_names
from tiletune.ir.stmt import Buffer, For, Stmt
from tiletune.runtime import threads


@functools.cache
def gomp_available() -> bool:
    """Load libgomp into the process for the JIT (once); False, with a warning, if absent."""
    init()
    threads.prepare_gomp_env()
    path = threads.find_libgomp()
    if path is not None:
        try:
            llvm.load_library_permanently(path)
            return True
        except RuntimeError:
            pass
    warnings.warn("libgomp was not found: parallel loops run serially", RuntimeWarning,
                  stacklevel=2)
    return False


def free_symbols(s: For) -> tuple[list[Var], list[Buffer]]:
    """Variables and buffers that the loop ``s`` uses but does not define, in first-use order."""
    vars_: dict[int, Var] = {}
    bufs: dict[int, Buffer] = {}
    bound: set[int] = {s.var.uid}  # Var uids (Buffers count separately)
    allocated: set[int] = set()
    seen: set[int] = set()

    def visit(n: Any) -> None:
        if isinstance(n, Var):
            if n.uid not in bound:
                vars_.setdefault(n.uid, n)
            return
        if isinstance(n, Buffer):
            bufs.setdefault(n.uid, n)
            return
        if isinstance(n, tuple):
            for x in n:
                visit(x)
            return
        if not isinstance(n, (Expr, Stmt)) or id(n) in seen:
            return
        seen.add(id(n))
        if isinstance(n, For):
            bound.add(n.var.uid)
        elif type(n).__name__ == "Allocate":
            allocated.add(n.buffer.uid)
        d = n.__dict__
        for f in field_names(n):
            v = d[f]
            if not isinstance(v, (str, int)):  # op names, dtypes, kinds, lanes
                visit(v)

    visit(s.body)
    return ([v for u, v in vars_.items() if u not in bound],
            [b for u, b in bufs.items() if u not in allocated])


def emit_parallel(gen: Any, s: For) -> None:
    """Emit ``s`` (kind "parallel") into ``gen`` (a codegen.StmtGen) as a libgomp region."""
    ce = const_value(s.extent)
    if isinstance(ce, int) and ce <= 0:
        return
    ctx, fn = gen.ctx, gen.fn
    ctx.mod.libs.add("gomp")
    fvars, fbufs = free_symbols(s)
    lo, ext = gen.index(s.lo), gen.index(s.extent)
    ctx.n_outlined += 1
    work = f"{ctx.symbol}.par{ctx.n_outlined}"
    # Closure fields: buffers, vars, lo, ext.
    types = ["ptr"] * len(fbufs) + [ll_type(v.dtype) for v in fvars] + ["i64", "i64"]
    values = ([gen.buffer_ptr(b) for b in fbufs] + [gen.expr(v) for v in fvars] + [lo, ext])
    closure_t = "{ " + ", ".join(types) + " }"

    # The work function: chunk tid of nthreads.
    wfn = FunctionText("w")
    bnames = [f"%{value_name(b.name)}.b{i}" for i, b in enumerate(fbufs)]
    vnames = [f"%{value_name(v.name)}.v{i}" for i, v in enumerate(fvars)]
    wgen = type(gen)(ctx, wfn, {v.uid: n for v, n in zip(fvars, vnames)},
                   {b.uid: n for b, n in zip(fbufs, bnames)}, in_parallel=True)
    nt = wfn.op("sext i32 %nthreads to i64")
    tid = wfn.op("sext i32 %tid to i64")
    span = wfn.op(f"add i64 %ext, {nt}")
    span = wfn.op(f"sub i64 {span}, 1")
    chunk = wfn.op(f"sdiv i64 {span}, {nt}")
    b0 = wfn.op(f"mul i64 {tid}, {chunk}")
    e0 = wfn.op(f"add i64 {b0}, {chunk}")
    e0 = wfn.op(f"call i64 @llvm.smin.i64(i64 {e0}, i64 %ext)")
    gen.mod.intrinsic("smin", "i64", ["i64", "i64"], ["i64"])
    start = wfn.op(f"add i64 %lo, {b0}")
    end = wfn.op(f"add i64 %lo, {e0}")
    wgen.loop(s.var, start, end, s.body, maybe_empty=True)
    wfn.emit("ret void")
    wparams = ([param_decl(b, n) for b, n in zip(fbufs, bnames)]
               + [f"{ll_type(v.dtype)} {n}" for v, n in zip(fvars, vnames)]
               + ["i64 %lo", "i64 %ext", "i32 %tid", "i32 %nthreads"])
    ctx.mod.functions.append(wfn.define(
        f"define internal void @{work}({', '.join(wparams)}) noinline nounwind"))

    # The libgomp entry: unpack the closure.
    gomp = ctx.mod.declare("GOMP_parallel", "declare void @GOMP_parallel(ptr, ptr, i32, i32)")
    tnum = ctx.mod.declare("omp_get_thread_num", "declare i32 @omp_get_thread_num()")
    tcnt = ctx.mod.declare("omp_get_num_threads", "declare i32 @omp_get_num_threads()")
    tfn = FunctionText("t")
    fields = []
    for k, t in enumerate(types):
        p = tfn.op(f"getelementptr {closure_t}, ptr %cl, i32 0, i32 {k}")
        fields.append(f"{t} " + tfn.op(f"load {t}, ptr {p}"))
    t_id = tfn.op(f"call i32 {tnum}()")
    t_n = tfn.op(f"call i32 {tcnt}()")
    tfn.emit(f"call void @{work}({', '.join(fields)}, i32 {t_id}, i32 {t_n})")
    tfn.emit("ret void")
    ctx.mod.functions.append(tfn.define(f"define internal void @{work}.omp(ptr %cl) nounwind"))

    # The launch in the caller.
    cl = fn.alloca(closure_t, 8, "cl")
    for k, (t, v) in enumerate(zip(types, values)):
        p = fn.op(f"getelementptr {closure_t}, ptr {cl}, i32 0, i32 {k}")
        fn.emit(f"store {t} {v}, ptr {p}")
    n = fn.op(f"load i32, ptr @{ctx.threads_symbol}")
    one = fn.op(f"icmp eq i32 {n}, 1")
    small = fn.op(f"icmp sle i64 {ext}, 1")
    serial = fn.op(f"or i1 {one}, {small}")
    direct, launch, join = fn.label("serial"), fn.label("launch"), fn.label("joined")
    fn.emit(f"br i1 {serial}, label %{direct}, label %{launch}")
    fn.start_block(direct)
    args = ", ".join(f"{t} {v}" for t, v in zip(types, values))
    fn.emit(f"call void @{work}({args}, i32 0, i32 1)")
    fn.emit(f"br label %{join}")
    fn.start_block(launch)
    e64 = fn.op(f"call i64 @llvm.smin.i64(i64 {ext}, i64 2147483647)")
    e32 = fn.op(f"trunc i64 {e64} to i32")
    cap = fn.op(f"call i32 @llvm.umin.i32(i32 {n}, i32 {e32})")  # n == 0 (default) stays 0
    gen.mod.intrinsic("umin", "i32", ["i32", "i32"], ["i32"])
    fn.emit(f"call void {gomp}(ptr @{work}.omp, ptr {cl}, i32 {cap}, i32 0)")
    fn.emit(f"br label %{join}")
    fn.start_block(join)
