"""Make ``if_then_else`` lazy for memory: a load on the untaken side never touches memory.

A ``Select`` evaluates both sides, so a read that is only valid when the condition holds
(``select(h >= 1, A[h - 1], 0)``) would read outside ``A``. Such loads get the condition as
a predicate (masked load: lanes or scalars outside it read nothing and yield 0). Loads whose
index is provably inside the buffer are left alone.

Before: ``P[h] = select(h >= 1, A[h - 1], 0.0f)``
After:  ``P[h] = select(h >= 1, A[h - 1 if h >= 1], 0.0f)``
"""
from __future__ import annotations

from tiletune.compiler.interval import Interval, bound
from tiletune.ir.expr import Binary, Const, Expr, Load, Not, Select
from tiletune.ir.functor import Rewriter
from tiletune.ir.stmt import For, PrimFunc, Stmt


class _Predicate(Rewriter):
    def __init__(self, cond: Expr, ranges: dict):
        self.cond, self.ranges = cond, ranges

    def visit_Load(self, e: Load) -> Expr:
        idx = tuple(self.visit(i) for i in e.indices)
        iv = bound(idx[0], self.ranges)
        if iv.lo is not None and iv.hi is not None and iv.lo >= 0 and iv.hi < e.buffer.size:
            return e if idx[0] is e.indices[0] else Load(e.buffer, idx, e.dtype, e.pred)
        pred = self.cond if e.pred is None else Binary("and", e.pred, self.cond)
        return Load(e.buffer, idx, e.dtype, pred)


class _GuardLoads(Rewriter):
    def __init__(self):
        self.ranges: dict = {}

    def visit_For(self, s: For) -> Stmt:
        if isinstance(s.lo, Const) and isinstance(s.extent, Const):
            self.ranges[s.var] = Interval(s.lo.value, s.lo.value + s.extent.value - 1)
        try:
            return super().generic(s)
        finally:
            self.ranges.pop(s.var, None)

    def visit_Select(self, e: Select) -> Expr:
        cond = self.visit(e.cond)
        a = _Predicate(cond, self.ranges).visit(self.visit(e.a))
        b = _Predicate(Not(cond), self.ranges).visit(self.visit(e.b))
        if cond is e.cond and a is e.a and b is e.b:
            return e
        return Select(cond, a, b)


def guard_select_loads(func: PrimFunc) -> PrimFunc:
    body = _GuardLoads().visit(func.body)
    return func if body is func.body else func.with_body(body)
