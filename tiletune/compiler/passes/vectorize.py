"""Turn ``vectorized`` loops into vector expressions (Ramp / Broadcast / vector Load, Store).

Before: ``for j in vectorized(16): C[i * 16 + j] = A[i * 16 + j] + B[i]``
After:  ``C[ramp(i * 16, 1, 16)] = A[ramp(i * 16, 1, 16)] + x16(B[i])``

A guard that depends on the lane becomes a store mask. A body that cannot be expressed with
vectors (a local allocation, a loop whose bounds depend on the lane, a store to one location
from every lane, a read of a buffer the loop writes at another index) is unrolled instead —
always correct, never silently wrong.
"""
from __future__ import annotations

from tiletune.compiler.passes.unroll import unroll_loop
from tiletune.ir import dtype as dt
from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Not,
    Ramp,
    Select,
    Var,
    structural_equal,
)
from tiletune.ir.functor import Rewriter, Visitor, uses_var
from tiletune.ir.stmt import Allocate, For, IfThenElse, PrimFunc, Seq, Stmt, Store, seq


class CannotVectorize(Exception):
    pass


def _lanes(e: Expr) -> int:
    return dt.lanes(e.dtype)


def _arith(op: str, a: Expr, b: Expr) -> Expr:
    """``a op b`` with integer constants folded (keeps Ramp bases and strides small)."""
    if isinstance(a, Const) and isinstance(b, Const) and dt.is_int(a.dtype):
        va, vb = int(a.value), int(b.value)
        return Const({"add": va + vb, "sub": va - vb, "mul": va * vb}[op], a.dtype)
    if op in ("add", "sub") and isinstance(b, Const) and b.value == 0:
        return a
    if op == "add" and isinstance(a, Const) and a.value == 0:
        return b
    if op == "mul" and isinstance(b, Const) and b.value == 1:
        return a
    if op == "mul" and isinstance(a, Const) and a.value == 1:
        return b
    return Binary(op, a, b)


def _bcast(e: Expr, n: int) -> Expr:
    return e if _lanes(e) == n else Broadcast(e, n)


class _VecExpr(Rewriter):
    """Rewrite an expression with ``var`` replaced by a ``lanes``-wide Ramp."""

    def __init__(self, var: Var, lo: Expr, lanes: int):
        self.var, self.lanes = var, lanes
        self.ramp = Ramp(lo, Const(1, lo.dtype), lanes)

    def visit_Var(self, v: Var) -> Expr:
        return self.ramp if v.uid == self.var.uid else v

    def visit_Binary(self, e: Binary) -> Expr:
        a, b = self.visit(e.a), self.visit(e.b)
        if a is e.a and b is e.b:
            return e
        n = self.lanes
        if e.op in ("add", "sub") and isinstance(a, Ramp) and _lanes(b) == 1:
            return Ramp(_arith(e.op, a.base, b), a.stride, n)
        if e.op == "add" and isinstance(b, Ramp) and _lanes(a) == 1:
            return Ramp(_arith("add", a, b.base), b.stride, n)
        if e.op in ("add", "sub") and isinstance(a, Ramp) and isinstance(b, Ramp):
            return Ramp(_arith(e.op, a.base, b.base), _arith(e.op, a.stride, b.stride), n)
        if e.op == "mul" and isinstance(a, Ramp) and isinstance(b, Const):
            return Ramp(_arith("mul", a.base, b), _arith("mul", a.stride, b), n)
        if e.op == "mul" and isinstance(b, Ramp) and isinstance(a, Const):
            return Ramp(_arith("mul", b.base, a), _arith("mul", b.stride, a), n)
        return Binary(e.op, _bcast(a, n), _bcast(b, n))

    def visit_Compare(self, e: Compare) -> Expr:
        a, b = self.visit(e.a), self.visit(e.b)
        if a is e.a and b is e.b:
            return e
        return Compare(e.op, _bcast(a, self.lanes), _bcast(b, self.lanes))

    def visit_Select(self, e: Select) -> Expr:
        c, a, b = self.visit(e.cond), self.visit(e.a), self.visit(e.b)
        if c is e.cond and a is e.a and b is e.b:
            return e
        n = self.lanes
        return Select(c, _bcast(a, n), _bcast(b, n))

    def visit_Cast(self, e: Cast) -> Expr:
        a = self.visit(e.a)
        if a is e.a:
            return e
        return Cast(dt.with_lanes(e.dtype, _lanes(a)), a)

    def visit_Not(self, e: Not) -> Expr:
        a = self.visit(e.a)
        return e if a is e.a else Not(a)

    def visit_Call(self, e: Call) -> Expr:
        args = tuple(self.visit(a) for a in e.args)
        if all(a is b for a, b in zip(args, e.args)):
            return e
        n = self.lanes
        return Call(e.name, tuple(_bcast(a, n) for a in args), dt.with_lanes(e.dtype, n))

    def visit_Load(self, e: Load) -> Expr:
        idx = self.visit(e.indices[0])
        if idx is e.indices[0] and e.pred is None:
            return e
        n = self.lanes
        pred = None if e.pred is None else _bcast(self.visit(e.pred), n)
        return Load(e.buffer, (_bcast(idx, n),), dt.with_lanes(e.dtype, n), pred)

    def visit_Ramp(self, e: Ramp) -> Expr:
        raise CannotVectorize("nested ramp")

    def visit_Broadcast(self, e: Broadcast) -> Expr:
        if uses_var(e, self.var):
            raise CannotVectorize("nested broadcast")
        return e


class _VecStmt(Rewriter):
    def __init__(self, loop: For):
        self.var = loop.var
        self.lanes = int(loop.extent.value)
        self.ex = _VecExpr(loop.var, loop.lo, self.lanes)
        self.pred: Expr | None = None

    def visit_Store(self, s: Store) -> Stmt:
        idx = self.ex.visit(s.indices[0])
        value = self.ex.visit(s.value)
        n = self.lanes
        pred = self.pred
        if s.pred is not None:
            sp = self.ex.visit(s.pred)
            pred = sp if pred is None else Binary("and", _bcast(sp, n), _bcast(pred, n))
        if _lanes(idx) == 1:
            if _lanes(value) != 1 or (pred is not None and _lanes(pred) != 1):
                raise CannotVectorize("every lane stores to one location")
            return s if pred is None else IfThenElse(pred, s)
        return Store(s.buffer, (idx,), _bcast(value, n), None if pred is None
                     else _bcast(pred, n))

    def visit_IfThenElse(self, s: IfThenElse) -> Stmt:
        cond = self.ex.visit(s.cond)
        if _lanes(cond) == 1:
            then, els = self.visit(s.then), self.visit(s.else_)
            return IfThenElse(cond, then, els)
        saved = self.pred
        self.pred = cond if saved is None else Binary("and", cond, saved)
        then = self.visit(s.then)
        els = None
        if s.else_ is not None:
            self.pred = Not(cond) if saved is None else Binary("and", Not(cond), saved)
            els = self.visit(s.else_)
        self.pred = saved
        return seq(then, els)

    def visit_For(self, s: For) -> Stmt:
        if uses_var(s.lo, self.var) or uses_var(s.extent, self.var):
            raise CannotVectorize("inner loop bounds depend on the lane")
        if self.pred is not None:
            raise CannotVectorize("loop under a lane mask")
        body = self.visit(s.body)
        return For(s.var, s.lo, s.extent, "serial" if s.kind == "vectorized" else s.kind, body)

    def visit_Allocate(self, s: Allocate) -> Stmt:
        raise CannotVectorize("allocation inside a vector loop")

    def visit_Seq(self, s: Seq) -> Stmt:
        return seq(*[self.visit(x) for x in s.stmts])


class _Accesses(Visitor):
    """Every Store and Load under a statement, in one walk."""

    def __init__(self) -> None:
        self.stores: list[Store] = []
        self.loads: list[Load] = []

    def visit_Store(self, s: Store) -> None:
        self.stores.append(s)
        self.generic(s)

    def visit_Load(self, e: Load) -> None:
        self.loads.append(e)
        self.generic(e)


def _has_lane_hazard(loop: For) -> bool:
    """A buffer written in the loop and read at a different index: lanes would interact."""
    acc = _Accesses()
    acc.visit(loop.body)
    written = {id(st.buffer) for st in acc.stores}
    reads = [ld for ld in acc.loads if id(ld.buffer) in written]
    for st in acc.stores:
        for ld in reads:
            if ld.buffer is st.buffer and not structural_equal(ld.indices, st.indices):
                if uses_var(ld.indices, loop.var) or uses_var(st.indices, loop.var):
                    return True
    return False


def vectorize_loop(loop: For) -> Stmt:
    if not isinstance(loop.extent, Const):
        return For(loop.var, loop.lo, loop.extent, "serial", loop.body)
    if int(loop.extent.value) == 1 or _has_lane_hazard(loop):
        return unroll_loop(loop)
    try:
        return _VecStmt(loop).visit(loop.body)
    except CannotVectorize:
        return unroll_loop(loop)


class _Vectorize(Rewriter):
    def visit_For(self, s: For) -> Stmt:
        body = self.visit(s.body)
        loop = s if body is s.body else For(s.var, s.lo, s.extent, s.kind, body)
        return vectorize_loop(loop) if s.kind == "vectorized" else loop


def vectorize(func: PrimFunc) -> PrimFunc:
    body = _Vectorize().visit(func.body)
    return func if body is func.body else func.with_body(body)
