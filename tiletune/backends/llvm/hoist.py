"""Loop-invariant code motion for the code generator.

Before a loop is emitted, the largest pure subexpressions of its body whose variables are
all bound outside the loop are computed in the loop's preheader; the structural CSE memo then
finds them inside. Our light LLVM pipeline has no LICM, and address arithmetic of the
enclosing loops would otherwise be recomputed in every iteration of the innermost one.

Before: ``for icb: A[icc * 9216 + kh * 3072 + icb]``
After:  ``t = icc * 9216 + kh * 3072;  for icb: A[t + icb]``

``HoistPlan`` walks a loop nest once and answers for every loop in it (one walk per nest, not
one per loop, and the free variables of each node computed once).
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
    canonical,
    field_names,
)
from tiletune.ir.stmt import For, Stmt

_PURE = (Binary, Compare, Not, Select, Cast, Ramp, Broadcast)
_HOISTED = (Binary, Cast, Ramp)
_DIV = ("div", "floordiv", "floormod")
_NEVER = 1 << 30  # level of an expression that no loop may hoist


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
            d = e.__dict__
            for f in field_names(e):
                v = d.get(f)
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


class HoistPlan:
    """What each loop of one nest hoists into its preheader, from a single walk.

    ``for_body(body)`` is the list ``invariant_exprs(body, bound)`` would return for the loop
    with that body, where ``bound`` is the set of variables bound when the nest's outermost
    loop is emitted plus those of the loops enclosing ``body`` inside the nest.
    """

    def __init__(self, loop_var: Var, body: Stmt, bound: set[int], cache: dict) -> None:
        self._bound = bound
        self._cache = cache
        self._pos: dict[int, int] = {}  # loop var uid -> depth in the nest
        self._lists: dict[int, tuple[Stmt, list[Expr], set] | None] = {}
        self._stack: list[list[Expr]] = []
        self._seen: list[set] = []
        self._enter(loop_var, body)

    def for_body(self, body: Stmt) -> list[Expr] | None:
        """The hoisted list of the loop with ``body``; None when the nest holds that very
        body object twice (its two places may differ in what is bound)."""
        hit = self._lists.get(id(body))
        return hit[1] if hit is not None and hit[0] is body else None

    def _enter(self, var: Var, body: Stmt) -> None:
        found: list[Expr] = []
        seen: set = set()
        key = id(body)
        self._lists[key] = None if key in self._lists else (body, found, seen)
        self._pos[var.uid] = len(self._stack)
        self._stack.append(found)
        self._seen.append(seen)
        self._stmt(body)
        self._stack.pop()
        self._seen.pop()
        del self._pos[var.uid]

    def _level(self, fv: frozenset) -> int:
        """Depth of the innermost loop of the nest using ``fv`` (-1: none; _NEVER: unbound)."""
        lvl = -1
        pos, bound = self._pos, self._bound
        for u in fv:
            p = pos.get(u)
            if p is None:
                if u not in bound:
                    return _NEVER
            elif p > lvl:
                lvl = p
        return lvl

    def _expr(self, e: Expr, limit: int) -> None:
        """Visit ``e``; only loops of depth <= ``limit`` may still hoist within it."""
        if isinstance(e, (Const, Var)):
            return
        if isinstance(e, _HOISTED):
            fv = _free(e, self._cache)
            if fv is not None:
                lvl = self._level(fv)
                key = canonical(e)
                for i in range(lvl + 1, limit + 1):  # invariant in these loops: maximal there
                    seen = self._seen[i]
                    if key not in seen:
                        seen.add(key)
                        self._stack[i].append(e)
                if lvl < limit:
                    limit = lvl
                if limit < 0:
                    return
        d = e.__dict__
        for f in field_names(e):
            v = d.get(f)
            if isinstance(v, Expr):
                self._expr(v, limit)
            elif isinstance(v, tuple):
                for x in v:
                    if isinstance(x, Expr):
                        self._expr(x, limit)

    def _stmt(self, s: Stmt) -> None:
        limit = len(self._stack) - 1
        d = s.__dict__
        for f in field_names(s):
            v = d[f]
            if isinstance(v, Expr):
                self._expr(v, limit)
            elif isinstance(v, tuple):
                for x in v:
                    if isinstance(x, Expr):
                        self._expr(x, limit)
                    elif isinstance(x, Stmt):
                        self._stmt(x)
            elif isinstance(v, Stmt):
                if isinstance(s, For) and f == "body":
                    self._enter(s.var, v)
                else:
                    self._stmt(v)


def invariant_exprs(body: Stmt, bound: set[int]) -> list[Expr]:
    """Maximal pure subexpressions of ``body`` using only variables in ``bound``."""
    probe = Var("_hoist_probe")
    out = HoistPlan(probe, body, bound, {}).for_body(body)
    assert out is not None
    return out
