"""Run-time bounds checks (``tt.build(..., bounds_check=True)``) and the kernel error flag.

With bounds checking on, every load and store the compiler could not prove safe tests its
index first::

    Before:  %v = load float, ptr %p
    After:   br i1 %in_bounds, label %ok, label %bad
             bad: store atomic i32 2, ptr @k__error; br %join      (the runtime raises
             ok:  %v = load float, ptr %p;           br %join       IndexError)
             join: %r = phi float [ %v, %ok ], [ 0.0, %bad ]

A bad access is skipped (loads yield 0) and flags the error; the call then raises. The
kernel's error flag (``@<kernel>__error``, an i32) is shared with the heap allocator's
check: 1 = an allocation failed (MemoryError), 2 = an access out of bounds (IndexError).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiletune.backends.llvm.emit import const_lit, ll_type
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Expr

#: Values of the error flag.
ALLOC_FAILED, OUT_OF_BOUNDS = 1, 2


def flag_error(gen: Any, code: int) -> None:
    """Emit ``error = code`` (creating the kernel's error global on first use)."""
    gen.fn.emit(f"store atomic i32 {code}, ptr @{gen.ctx.use_error_global()} monotonic, "
                "align 4")


def in_bounds(gen: Any, buf: Any, index: Expr, n: int, pred: Expr | None) -> str:
    """An i1: every element the access touches (lanes of ``pred`` only) is inside ``buf``."""
    from tiletune.backends.llvm.exprs import split_ramp

    fn, size = gen.fn, int(buf.size)
    if dt.lanes(index.dtype) == 1 and n == 1:
        ok = fn.op(f"icmp ult i64 {gen.index(index)}, {size}")
        if pred is None:
            return ok
        return fn.op(f"select i1 {gen.expr(pred)}, i1 {ok}, i1 true")
    ramp = (index, 1) if dt.lanes(index.dtype) == 1 else split_ramp(index)
    if ramp is not None and ramp[1] in (0, 1) and pred is None:
        last = size - (n if ramp[1] == 1 else 1)  # unsigned compare: negatives fail too
        return "false" if last < 0 else fn.op(f"icmp ule i64 {gen.index(ramp[0])}, {last}")
    lanes = gen.index(index) if dt.lanes(index.dtype) > 1 else None
    if lanes is None:  # a scalar base read as n contiguous lanes, under a mask
        base = gen.index(index)
        vt = f"<{n} x i64>"
        head = fn.op(f"insertelement {vt} poison, i64 {base}, i64 0")
        splat = fn.op(f"shufflevector {vt} {head}, {vt} poison, <{n} x i32> zeroinitializer")
        steps = "<" + ", ".join(f"i64 {k}" for k in range(n)) + ">"
        lanes = fn.op(f"add {vt} {splat}, {steps}")
    cmp = fn.op(f"icmp ult <{n} x i64> {lanes}, splat (i64 {size})")
    mask = gen.mask(pred, n)
    if mask is not None:
        cmp = fn.op(f"select <{n} x i1> {mask}, <{n} x i1> {cmp}, <{n} x i1> "
                    f"splat (i1 true)")
    f = gen.mod.intrinsic("vector.reduce.and", "i1", [f"<{n} x i1>"], [f"<{n} x i1>"])
    return fn.op(f"call i1 {f}(<{n} x i1> {cmp})")


def checked(gen: Any, ok: str, access: Callable[[], str | None], dtype: str | None) -> str | None:
    """Run ``access`` only when ``ok``; otherwise flag :data:`OUT_OF_BOUNDS` (and yield 0
    of ``dtype`` for a load)."""
    fn = gen.fn
    pre_bad, body, join = fn.label("oob"), fn.label("inb"), fn.label("chk")
    fn.emit(f"br i1 {ok}, label %{body}, label %{pre_bad}")
    fn.start_block(pre_bad)
    flag_error(gen, OUT_OF_BOUNDS)
    fn.emit(f"br label %{join}")
    fn.start_block(body)
    fn.push_scope()
    v = access()
    end = fn.block
    fn.pop_scope()
    fn.emit(f"br label %{join}")
    fn.start_block(join)
    if dtype is None or v is None:
        return None
    return fn.op(f"phi {ll_type(dtype)} [ {v}, %{end} ], [ {const_lit(0, dtype)}, %{pre_bad} ]")
