"""Fast folding of integer index arithmetic into a canonical linear form.

Used on the copies made by unrolling, where the full simplifier would be slow: constants are
folded and collected last, terms keep their order of first appearance, so every copy of an
unrolled body shares the same prefix (``base + c``) and code generation reuses it.

Before: ``A[icc * 9216 + 4 * 32 + kw * 32 + icb + 0 * 16]``
After:  ``A[icc * 9216 + kw * 32 + icb + 128]``
"""
from __future__ import annotations

from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Const, Expr, Load, Ramp
from tiletune.ir.functor import Rewriter
from tiletune.ir.stmt import Store

_LINEAR = ("add", "sub", "mul")


def _linear(e: Expr, terms: dict, order: list, scale: int) -> int:
    """Accumulate ``scale * e`` into ``terms``; returns the constant part."""
    if isinstance(e, Const):
        return scale * int(e.value)
    if isinstance(e, Binary) and e.op in _LINEAR and dt.lanes(e.dtype) == 1:
        if e.op == "add":
            return _linear(e.a, terms, order, scale) + _linear(e.b, terms, order, scale)
        if e.op == "sub":
            return _linear(e.a, terms, order, scale) + _linear(e.b, terms, order, -scale)
        if isinstance(e.b, Const):
            return _linear(e.a, terms, order, scale * int(e.b.value))
        if isinstance(e.a, Const):
            return _linear(e.b, terms, order, scale * int(e.a.value))
    if e in terms:
        terms[e] += scale
    else:
        terms[e] = scale
        order.append(e)
    return 0


def fold_index(e: Expr) -> Expr:
    """``e`` (a scalar int64 index) as ``t1*c1 + t2*c2 + ... + const``."""
    if not isinstance(e, Binary) or e.dtype != dt.INDEX:
        return e
    terms: dict = {}
    order: list = []
    c = _linear(e, terms, order, 1)
    out: Expr | None = None
    for t in order:
        k = terms[t]
        if k == 0:
            continue
        term = t if k == 1 else Binary("mul", t, Const(k, dt.INDEX))
        out = term if out is None else Binary("add", out, term)
    if out is None:
        return Const(c, dt.INDEX)
    if c:
        out = Binary("add", out, Const(c, dt.INDEX))
    return out


class FoldIndices(Rewriter):
    """Fold the indices of every Load and Store (and Ramp bases).

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
