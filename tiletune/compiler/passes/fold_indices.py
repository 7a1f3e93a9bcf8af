"""Fast folding of integer index arithmetic into a canonical linear form.

Used on the copies made by unrolling, where the full simplifier would be slow: constants are
folded and collected last, terms keep their order of first appearance, so every copy of an
unrolled body shares the same prefix (``base + c``) and code generation reuses it.

Before: ``A[icc * 9216 + 4 * 32 + kw * 32 + icb + 0 * 16]``
After:  ``A[icc * 9216 + kw * 32 + icb + 128]``
"""
from __future__ import annotations

from tiletune.compiler.arith import linear
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Compare, Const, Expr, Load, Ramp, Select
from tiletune.ir.functor import Rewriter
from tiletune.ir.stmt import Store


def fold_index(e: Expr) -> Expr:
    """``e`` (a scalar int64 index) as ``t1*c1 + t2*c2 + ... + const``."""
    if not isinstance(e, Binary) or e.dtype != dt.INDEX:
        return e
    terms, c = linear(e)
    out: Expr | None = None
    for t, k in terms.items():
        term = t if k == 1 else Binary("mul", t, Const(k, dt.INDEX))
        out = term if out is None else Binary("add", out, term)
    if out is None:
        return Const(c, dt.INDEX)
    if c:
        out = Binary("add", out, Const(c, dt.INDEX))
    return out


_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}


class FoldIndices(Rewriter):
    """Fold the indices of every Load and Store (and Ramp bases), and the selects whose
    condition became a comparison of two constants (a select chain over an unrolled loop
    variable keeps one branch per copy).

    The result of a node depends on that node only, so one instance remembers it: the copies
    an unrolled loop makes share their unchanged subtrees, which are folded once."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[object, object]] = {}

    def visit(self, n):  # type: ignore[override]
        hit = self._memo.get(id(n))
        if hit is not None and hit[0] is n:
            return hit[1]
        out = super().visit(n)
        if n is not None:
            self._memo[id(n)] = (n, out)
        return out

    def visit_Select(self, e: Select) -> Expr:
        c = e.cond
        if (isinstance(c, Compare) and c.op in _COMPARE and isinstance(c.a, Const)
                and isinstance(c.b, Const)):
            return self.visit(e.a if _COMPARE[c.op](c.a.value, c.b.value) else e.b)
        return self.generic(e)

    def visit_Load(self, e: Load) -> Expr:
        idx = tuple(self._index(i) for i in e.indices)
        pred = self.visit(e.pred)
        if all(a is b for a, b in zip(idx, e.indices)) and pred is e.pred:
            return e
        return Load(e.buffer, idx, e.dtype, pred)

    def visit_Store(self, s: Store) -> Store:
        idx = tuple(self._index(i) for i in s.indices)
        value, pred = self.visit(s.value), self.visit(s.pred)
        if (all(a is b for a, b in zip(idx, s.indices)) and value is s.value
                and pred is s.pred):
            return s
        return Store(s.buffer, idx, value, pred)

    def _index(self, e: Expr) -> Expr:
        e = self.visit(e)
        if isinstance(e, Ramp):
            base = fold_index(e.base)
            return e if base is e.base else Ramp(base, e.stride, e.lanes)
        return fold_index(e)
