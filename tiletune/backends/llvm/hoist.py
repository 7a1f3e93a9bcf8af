"""Loop-invariant code motion for the code generator.

Before a loop is emitted, the largest pure subexpressions of its body whose variables are
all bound outside the loop are computed in the loop's preheader; the structural CSE memo then
finds them inside. Our light LLVM pipeline has no LICM, and address arithmetic of the
enclosing loops would otherwise be recomputed in every iteration of the innermost one.

Before: ``for icb: A[icc * 9216 + kh * 3072 + icb]``
After:  ``t = icc * 9216 + kh * 3072;  for icb: A[t + icb]``
"""
from __future__ import annotations

from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Cast,
    Compare,
    Const,
    Expr,
    Not,
    Ramp,
    Select,
    Var,
    field_names,
)
from tiletune.ir.stmt import Stmt

_PURE = (Binary, Compare, Not, Select, Cast, Ramp, Broadcast)
_DIV = ("div", "floordiv", "floormod")


def _free(e: Expr, cache: dict) -> frozenset | None:
    """Var uids of a pure expression that is safe to evaluate early; None otherwise."""
    hit = cache.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    if isinstance(e, Var):
        out: frozenset | None = frozenset((e.uid,))
    elif isinstance(e, Const):
        out = frozenset()
    elif isinstance(e, _PURE):
        if isinstance(e, Binary) and e.op in _DIV and not (
                isinstance(e.b, Const) and e.b.value != 0):
            out = None  # a division by a variable may trap where the guard would skip it
        else:
            out = frozenset()
            for f in field_names(e):
                v = getattr(e, f)
                if isinstance(v, Expr):
                    sub = _free(v, cache)
                    if sub is None:
                        out = None
                        break
                    out = out | sub
    else:
        out = None
    cache[id(e)] = (e, out)
    return out


def invariant_exprs(body: Stmt, bound: set[int]) -> list[Expr]:
    """Maximal pure subexpressions of ``body`` using only variables in ``bound``."""
    cache: dict = {}
    found: list[Expr] = []
    seen: set = set()

    def expr(e: Expr) -> None:
        if isinstance(e, (Const, Var)):
            return
        fv = _free(e, cache)
        if fv is not None and fv <= bound and isinstance(e, (Binary, Cast, Ramp)):
            if e not in seen:
                seen.add(e)
                found.append(e)
            return
        for f in field_names(e):
            v = getattr(e, f)
            if isinstance(v, Expr):
                expr(v)
            elif isinstance(v, tuple):
                for x in v:
                    if isinstance(x, Expr):
                        expr(x)

    def stmt(s: object) -> None:
        for f in field_names(s):
            v = getattr(s, f)
            if isinstance(v, Expr):
                expr(v)
            elif isinstance(v, Stmt):
                stmt(v)
            elif isinstance(v, tuple):
                for x in v:
                    if isinstance(x, Expr):
                        expr(x)
                    elif isinstance(x, Stmt):
                        stmt(x)

    stmt(body)
    return found
