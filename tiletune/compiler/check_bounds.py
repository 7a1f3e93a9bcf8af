"""Reject accesses that are out of bounds on every run: ``A[i + 1]`` for ``i < n``.

    check_bounds(func)        # raises LoweringError naming the access, the index's range
                              # and the buffer's extent

An access is *provably* out of bounds when it runs unconditionally (not under an ``if``, a
``select`` branch or a predicate) inside loops of constant, non-empty ranges, and its index
is linear in those loop variables: the minimum and maximum of a linear form over a box are
taken at its corners, so they are values the index really takes. Everything else (indices
with other terms, symbolic ranges, guarded accesses) is left to ``bounds_check=True``,
which checks at run time.

Before (a user's compute ``B[i] = A[i + 1]`` over ``i < 16``, A of 16 elements)::

    for i in range(16): B[i] = A[i + 1]      # reads A[16]

After: ``LoweringError: read of A[i + 1] is out of bounds: axis 0 ranges over [1, 16] but
A has 16 elements on it``.
"""
from __future__ import annotations

from tiletune.compiler.arith import linear
from tiletune.errors import LoweringError
from tiletune.ir.expr import Const, Expr, Load, Select, Var
from tiletune.ir.functor import Visitor
from tiletune.ir.stmt import For, IfThenElse, PrimFunc, Store


def check_bounds(func: PrimFunc) -> PrimFunc:
    """Raise :class:`LoweringError` for an access provably outside its buffer."""
    _Checker().visit(func.body)
    return func


def index_range(index: Expr, ranges: dict[int, tuple[int, int]]) -> tuple[int, int] | None:
    """The exact (min, max) of ``index`` over the loop ranges, when it is linear in loop
    variables of known range (None otherwise)."""
    try:
        terms, const = linear(index, None, through_casts=True)
    except Exception:  # noqa: BLE001 - not an integer form: nothing to prove
        return None
    lo = hi = int(const)
    for term, k in terms.items():
        if not isinstance(term, Var) or term.uid not in ranges:
            return None
        a, b = ranges[term.uid]
        lo += min(k * a, k * b)
        hi += max(k * a, k * b)
    return lo, hi


class _Checker(Visitor):
    def __init__(self) -> None:
        self.ranges: dict[int, tuple[int, int]] = {}
        self.guarded = 0  # > 0: inside an if, a select branch or a predicated access

    def visit_For(self, s: For) -> None:
        if isinstance(s.lo, Const) and isinstance(s.extent, Const):
            if int(s.extent.value) <= 0:
                return  # never runs
            lo = int(s.lo.value)
            self.ranges[s.var.uid] = (lo, lo + int(s.extent.value) - 1)
        try:
            self.generic(s)
        finally:
            self.ranges.pop(s.var.uid, None)

    def visit_IfThenElse(self, s: IfThenElse) -> None:
        self.visit(s.cond)
        self.guarded += 1
        try:
            self.visit(s.then)
            self.visit(s.else_)
        finally:
            self.guarded -= 1

    def visit_Select(self, e: Select) -> None:
        self.visit(e.cond)
        self.guarded += 1
        try:
            self.visit(e.a)
            self.visit(e.b)
        finally:
            self.guarded -= 1

    def visit_Store(self, s: Store) -> None:
        self._check("write to", s.buffer, s.indices, s.pred)
        self.generic(s)

    def visit_Load(self, e: Load) -> None:
        self._check("read of", e.buffer, e.indices, e.pred)
        self.generic(e)

    def _check(self, what: str, buf, indices: tuple, pred: Expr | None) -> None:
        if self.guarded or pred is not None:
            return
        shape = tuple(buf.shape)
        if len(indices) != len(shape):
            return
        for axis, (index, extent) in enumerate(zip(indices, shape)):
            if not isinstance(extent, int) and not isinstance(extent, Const):
                continue
            n = int(extent.value if isinstance(extent, Const) else extent)
            r = index_range(index, self.ranges)
            if r is None or (r[0] >= 0 and r[1] < n):
                continue
            where = ", ".join(map(str, indices))
            raise LoweringError(
                f"{what} {buf.name}[{where}] is out of bounds: axis {axis} ranges over "
                f"[{r[0]}, {r[1]}] but {buf.name} has {n} elements on it")
