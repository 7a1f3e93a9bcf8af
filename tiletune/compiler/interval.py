"""Integer interval analysis over index expressions: bounds, proofs and symbolic bounds.

    bound(expr, ranges)            -> Interval        every value ``expr`` can take
    prove(cond, ranges)            -> bool            True only if ``cond`` holds everywhere
    symbolic_bound(expr, relax)    -> (lo, hi)        relax some vars to symbolic ranges

``ranges`` maps ``Var -> Interval | (lo, hi)`` (inclusive, ``None`` = unbounded). A var
without a range is unbounded (dtypes narrower than int64: the dtype's range).

Overflow: arithmetic wraps in the dtype. A finite result that leaves the dtype's range
becomes the whole range (sound). Unbounded (``None``) sides are assumed not to overflow, as
Halide and TVM assume for index arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tiletune.compiler.arith import Linear, lin_combine, linear
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Broadcast, Cast, Compare, Const, Expr, Not, Ramp, Select, Var

Bound = int | None


@dataclass(frozen=True)
class Interval:
    """Inclusive integer interval ``[lo, hi]``; ``None`` means unbounded on that side."""

    lo: Bound = None
    hi: Bound = None

    @staticmethod
    def point(v: int) -> Interval:
        return Interval(v, v)

    @property
    def is_point(self) -> bool:
        return self.lo is not None and self.lo == self.hi

    @property
    def bounded(self) -> bool:
        return self.lo is not None and self.hi is not None

    def contains(self, v: int) -> bool:
        return (self.lo is None or self.lo <= v) and (self.hi is None or v <= self.hi)

    def union(self, o: Interval) -> Interval:
        lo = None if self.lo is None or o.lo is None else min(self.lo, o.lo)
        hi = None if self.hi is None or o.hi is None else max(self.hi, o.hi)
        return Interval(lo, hi)

    def intersect(self, o: Interval) -> Interval:
        lo = o.lo if self.lo is None else self.lo if o.lo is None else max(self.lo, o.lo)
        hi = o.hi if self.hi is None else self.hi if o.hi is None else min(self.hi, o.hi)
        return Interval(lo, hi)

    def __repr__(self) -> str:
        lo = "-inf" if self.lo is None else self.lo
        return f"[{lo}, {'inf' if self.hi is None else self.hi}]"


EVERYTHING = Interval()
_INF = math.inf


def as_interval(r: Any) -> Interval:
    """Accept an Interval, a ``(lo, hi)`` pair or a single int."""
    if isinstance(r, Interval):
        return r
    if isinstance(r, int):
        return Interval(r, r)
    lo, hi = r
    return Interval(lo, hi)


def var_of(v: Any) -> Var:
    """The Var of a Var or an IterVar (range dicts may use either as keys)."""
    return v if isinstance(v, Var) else v.var


# ---------------------------------------------------------------- interval arithmetic
# Bounds are turned into numbers with +-inf for the corner formulas, then back.

def _l(v: Bound) -> Any:
    return -_INF if v is None else v


def _h(v: Bound) -> Any:
    return _INF if v is None else v


def _fin(v: Any) -> Bound:
    return None if v in (_INF, -_INF) else int(v)


def _m(a: Any, b: Any) -> Any:
    return 0 if a == 0 or b == 0 else a * b


def iv_add(a: Interval, b: Interval) -> Interval:
    return Interval(None if a.lo is None or b.lo is None else a.lo + b.lo,
                    None if a.hi is None or b.hi is None else a.hi + b.hi)


def iv_neg(a: Interval) -> Interval:
    return Interval(None if a.hi is None else -a.hi, None if a.lo is None else -a.lo)


def iv_sub(a: Interval, b: Interval) -> Interval:
    return iv_add(a, iv_neg(b))


def iv_mul(a: Interval, b: Interval) -> Interval:
    cs = [_m(x, y) for x in (_l(a.lo), _h(a.hi)) for y in (_l(b.lo), _h(b.hi))]
    return Interval(_fin(min(cs)), _fin(max(cs)))


def iv_scale(a: Interval, c: int) -> Interval:
    return iv_mul(a, Interval(c, c))


def iv_floordiv(a: Interval, b: Interval) -> Interval:
    """Floor division; unbounded when the divisor may be zero."""
    if b.is_point:
        c = b.lo
        if c == 0:
            return EVERYTHING
        lo = None if a.lo is None else a.lo // c
        hi = None if a.hi is None else a.hi // c
        return Interval(lo, hi) if c > 0 else Interval(hi, lo)
    if not (b.lo is not None and b.lo > 0 or b.hi is not None and b.hi < 0):
        return EVERYTHING
    if a.bounded and b.bounded:  # floor(x/y) is monotone in x and y: extremes at the corners
        cs = [x // y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
        return Interval(min(cs), max(cs))
    return EVERYTHING


def iv_floormod(a: Interval, b: Interval) -> Interval:
    """Floor modulo (result has the divisor's sign)."""
    if b.is_point:
        c = b.lo
        if c == 0:
            return EVERYTHING
        if a.bounded and a.lo // c == a.hi // c:  # one block: x % c = x - q*c is increasing
            return Interval(a.lo % c, a.hi % c)
        return Interval(0, c - 1) if c > 0 else Interval(c + 1, 0)
    if b.lo is not None and b.lo > 0:
        hi = None if b.hi is None else b.hi - 1
        if a.lo is not None and a.lo >= 0 and a.hi is not None:
            hi = a.hi if hi is None else min(hi, a.hi)
        return Interval(0, hi)
    if b.hi is not None and b.hi < 0:
        return Interval(None if b.lo is None else b.lo + 1, 0)
    return EVERYTHING


def iv_min(a: Interval, b: Interval) -> Interval:
    lo = None if a.lo is None or b.lo is None else min(a.lo, b.lo)
    hi = b.hi if a.hi is None else a.hi if b.hi is None else min(a.hi, b.hi)
    return Interval(lo, hi)


def iv_max(a: Interval, b: Interval) -> Interval:
    lo = b.lo if a.lo is None else a.lo if b.lo is None else max(a.lo, b.lo)
    hi = None if a.hi is None or b.hi is None else max(a.hi, b.hi)
    return Interval(lo, hi)


_IV_OPS = {"add": iv_add, "sub": iv_sub, "mul": iv_mul, "floordiv": iv_floordiv,
           "floormod": iv_floormod, "min": iv_min, "max": iv_max}


def dtype_interval(dtype: str) -> Interval:
    """What an unknown value of ``dtype`` can be (int64: unbounded)."""
    if dt.is_bool(dtype):
        return Interval(0, 1)
    if dt.is_int(dtype) and dt.bits(dtype) < 64:
        return Interval(*dt.int_range(dtype))
    return EVERYTHING


def fits(iv: Interval, dtype: str) -> bool:
    """Do the finite bounds of ``iv`` lie inside ``dtype``'s range (no wrap-around)?"""
    lo, hi = dt.int_range(dtype)
    return not (iv.lo is not None and iv.lo < lo or iv.hi is not None and iv.hi > hi)


def _fit(iv: Interval, dtype: str) -> Interval:
    return iv if fits(iv, dtype) else Interval(*dt.int_range(dtype))


def is_index_int(dtype: str) -> bool:
    """Scalar or vector non-bool integer dtype."""
    return dt.is_int(dtype) and not dt.is_bool(dtype)


# ---------------------------------------------------------------- the analyzer



class Analyzer:
    """Bounds, linear forms and decisions under fixed ranges, memoised per node."""

    def __init__(self, ranges: dict | None = None, *, by_uid: dict | None = None):
        self.ranges: dict[int, Interval] = dict(by_uid or {})
        for v, r in (ranges or {}).items():
            self.ranges[var_of(v).uid] = as_interval(r)
        self._bounds: dict[int, tuple[Expr, Interval]] = {}
        self._lin: dict[int, tuple[Expr, Linear]] = {}

    # ------------------------------------------------ bounds
    def bound(self, e: Expr) -> Interval:
        hit = self._bounds.get(id(e))
        if hit is not None:
            return hit[1]
        iv = self._bound(e)
        self._bounds[id(e)] = (e, iv)
        return iv

    def _bound(self, e: Expr) -> Interval:
        if isinstance(e, Const):
            if isinstance(e.value, (bool, int)):
                return Interval.point(int(e.value))
            return EVERYTHING
        dtype = e.dtype
        if dt.is_float(dtype):
            return EVERYTHING
        if isinstance(e, Var):
            r = self.ranges.get(e.uid)
            return dtype_interval(dtype) if r is None else r
        if isinstance(e, Binary):
            f = _IV_OPS.get(e.op)
            if f is not None and not dt.is_bool(dtype):
                if e.op in ("add", "sub", "mul") and dt.lanes(dtype) == 1:
                    lin = self.linear(e)
                    if lin is not None and not (len(lin[0]) == 1 and next(iter(lin[0])) is e):
                        return _fit(self.linear_bound(lin), dtype)
                return _fit(f(self.bound(e.a), self.bound(e.b)), dtype)
        if isinstance(e, (Compare, Not)) or isinstance(e, Binary) and e.op in ("and", "or"):
            d = self.decide(e)
            return Interval(0, 1) if d is None else Interval.point(int(d))
        if isinstance(e, Select):
            d = self.decide(e.cond)
            if d is not None:
                return self.bound(e.a if d else e.b)
            return self.bound(e.a).union(self.bound(e.b))
        if isinstance(e, Cast):
            src = e.a.dtype
            if dt.is_int(src):  # ints and bools
                iv = self.bound(e.a)
                return iv if fits(iv, dtype) else dtype_interval(dtype)
            return dtype_interval(dtype)
        if isinstance(e, Ramp):
            span = iv_scale(self.bound(e.stride), e.lanes - 1)
            return _fit(iv_add(self.bound(e.base), span.union(Interval(0, 0))), dtype)
        if isinstance(e, Broadcast):
            return self.bound(e.value)
        return dtype_interval(dtype)

    # ------------------------------------------------ linear forms
    def linear(self, e: Expr) -> Linear | None:
        """``e`` as ``sum(coeff * term) + const`` (scalar non-bool ints only; wrapped coeffs)."""
        if not is_index_int(e.dtype) or dt.lanes(e.dtype) != 1:
            return None
        return linear(e, e.dtype, self._lin)

    def linear_bound(self, lin: Linear) -> Interval:
        terms, c = lin
        iv = Interval.point(c)
        for t, k in terms.items():
            iv = iv_add(iv, iv_scale(self.bound(t), k))
            if iv.lo is None and iv.hi is None:
                break
        return iv

    # ------------------------------------------------ decisions
    def diff(self, a: Expr, b: Expr) -> Interval:
        """Bounds of ``a - b`` over the actual (wrapped) values of ``a`` and ``b`` (no wrap)."""
        ia, ib = self.bound(a), self.bound(b)
        iv = iv_sub(ia, ib)
        la, lb = self.linear(a), self.linear(b)
        if la is not None and lb is not None and (la[0] or lb[0]):
            dtype = a.dtype
            # the linear forms equal the actual values only when they cannot wrap
            if fits(self.linear_bound(la), dtype) and fits(self.linear_bound(lb), dtype):
                d = lin_combine(la, lb, -1, None)
                iv = iv.intersect(self.linear_bound(d))
        return iv

    def decide(self, cond: Expr) -> bool | None:
        """True / False when ``cond`` (every lane) is decided by the ranges, else None."""
        if isinstance(cond, Const):
            return bool(cond.value)
        if isinstance(cond, Broadcast):
            return self.decide(cond.value)
        if isinstance(cond, Not):
            d = self.decide(cond.a)
            return None if d is None else not d
        if isinstance(cond, Binary) and cond.op in ("and", "or"):
            da, db = self.decide(cond.a), self.decide(cond.b)
            if cond.op == "and":
                return False if da is False or db is False else (
                    True if da and db else None)
            return True if da or db else (False if da is False and db is False else None)
        if isinstance(cond, Compare):
            if not dt.is_int(cond.a.dtype):
                return None
            return decide_diff(cond.op, self.diff(cond.a, cond.b))
        if isinstance(cond, Select):
            da, db = self.decide(cond.a), self.decide(cond.b)
            if da is not None and da == db:
                return da
            dc = self.decide(cond.cond)
            if dc is not None:
                return da if dc else db
        return None

    def prove(self, cond: Expr) -> bool:
        return self.decide(cond) is True


def decide_diff(op: str, d: Interval) -> bool | None:
    """Decide ``a op b`` from the bounds ``d`` of ``a - b``."""
    lo, hi = d.lo, d.hi
    if op == "lt":
        return True if hi is not None and hi < 0 else False if lo is not None and lo >= 0 else None
    if op == "le":
        return True if hi is not None and hi <= 0 else False if lo is not None and lo > 0 else None
    if op == "gt":
        return True if lo is not None and lo > 0 else False if hi is not None and hi <= 0 else None
    if op == "ge":
        return True if lo is not None and lo >= 0 else False if hi is not None and hi < 0 else None
    if op == "eq":
        if d.is_point and lo == 0:
            return True
        return False if lo is not None and lo > 0 or hi is not None and hi < 0 else None
    if op == "ne":
        r = decide_diff("eq", d)
        return None if r is None else not r
    raise ValueError(f"unknown comparison {op!r}")


def bound(expr: Expr, ranges: dict | None = None) -> Interval:
    """Every value the integer expression ``expr`` takes when vars lie in ``ranges``."""
    return Analyzer(ranges).bound(expr)


def prove(cond: Expr, ranges: dict | None = None) -> bool:
    """True only if ``cond`` holds (all lanes) for every assignment inside ``ranges``."""
    return Analyzer(ranges).prove(cond)


def symbolic_bound(expr: Expr, relax: dict, ranges: dict | None = None) -> tuple[Expr, Expr]:
    """Inclusive bounds of ``expr`` when each var of ``relax`` spans ``(lo_expr, hi_expr)``.

    Other vars stay symbolic. Exact for expressions monotonic in each relaxed var (sums of
    constant multiples, floordiv by a constant, min/max, select); elsewhere the numeric bounds
    (from constant relax ranges and ``ranges``) are used, and ValueError is raised when there
    are none. ``io*32 + ii*2 + rk`` with ii in (0, 15), rk in (0, 2) -> (io*32, io*32 + 32).
    """
    from tiletune.compiler.simplify import simplify

    rel: dict[int, tuple[Expr, Expr]] = {}
    num: dict[int, Interval] = {}
    for v, r in relax.items():
        v = var_of(v)
        lo, hi = (r.lo, r.hi) if isinstance(r, Interval) else r
        if lo is None or hi is None:
            raise ValueError(f"symbolic_bound: relax range of {v.name} must be bounded")
        lo = lo if isinstance(lo, Expr) else Const(int(lo), v.dtype)
        hi = hi if isinstance(hi, Expr) else Const(int(hi), v.dtype)
        rel[v.uid] = (lo, hi)
        if isinstance(lo, Const) and isinstance(hi, Const):
            num[v.uid] = Interval(int(lo.value), int(hi.value))
    for v, r in (ranges or {}).items():
        num.setdefault(var_of(v).uid, as_interval(r))
    an = Analyzer(by_uid=num)
    lo, hi = _SymBound(rel, an)(simplify(expr))
    return simplify(lo), simplify(hi)


class _SymBound:
    def __init__(self, rel: dict[int, tuple[Expr, Expr]], an: Analyzer):
        self.rel, self.an = rel, an
        self._uses: dict[int, tuple[Expr, bool]] = {}

    def uses(self, e: Expr) -> bool:
        hit = self._uses.get(id(e))
        if hit is not None:
            return hit[1]
        if isinstance(e, Var):
            r = e.uid in self.rel
        elif isinstance(e, Const):
            r = False
        else:
            from dataclasses import fields
            r = False
            for f in fields(e):
                v = getattr(e, f.name)
                vs = v if isinstance(v, tuple) else (v,)
                if any(isinstance(x, Expr) and self.uses(x) for x in vs):
                    r = True
                    break
        self._uses[id(e)] = (e, r)
        return r

    def __call__(self, e: Expr) -> tuple[Expr, Expr]:
        if not self.uses(e):
            return e, e
        if isinstance(e, Var):
            return self.rel[e.uid]
        r = self._mono(e)
        if r is not None:
            return r
        iv = self.an.bound(e)
        if iv.bounded:
            return Const(iv.lo, e.dtype), Const(iv.hi, e.dtype)
        raise ValueError(f"cannot bound {e!r}: not monotonic in the relaxed vars and unbounded")

    def _sign(self, e: Expr) -> int | None:
        if self.uses(e):
            return None
        iv = self.an.bound(e)
        if iv.lo is not None and iv.lo >= 0:
            return 1
        if iv.hi is not None and iv.hi <= 0:
            return -1
        return None

    def _mono(self, e: Expr) -> tuple[Expr, Expr] | None:
        if isinstance(e, Binary):
            op = e.op
            if op in ("add", "sub", "min", "max"):
                (alo, ahi), (blo, bhi) = self(e.a), self(e.b)
                if op == "add":
                    return alo + blo, ahi + bhi
                if op == "sub":
                    return alo - bhi, ahi - blo
                f = Binary
                return f(op, alo, blo), f(op, ahi, bhi)
            if op == "mul":
                for x, y in ((e.a, e.b), (e.b, e.a)):
                    s = self._sign(y)
                    if s is not None:
                        lo, hi = self(x)
                        return (lo * y, hi * y) if s > 0 else (hi * y, lo * y)
                return None
            if op == "floordiv" and isinstance(e.b, Const) and e.b.value != 0:
                lo, hi = self(e.a)
                return (lo // e.b, hi // e.b) if e.b.value > 0 else (hi // e.b, lo // e.b)
            return None
        if isinstance(e, Select):
            (alo, ahi), (blo, bhi) = self(e.a), self(e.b)
            return Binary("min", alo, blo), Binary("max", ahi, bhi)
        if isinstance(e, Cast) and is_index_int(e.dtype) and is_index_int(e.a.dtype):
            lo, hi = self(e.a)
            return Cast(e.dtype, lo), Cast(e.dtype, hi)
        if isinstance(e, Broadcast):
            lo, hi = self(e.value)
            return Broadcast(lo, e.lanes), Broadcast(hi, e.lanes)
        if isinstance(e, Ramp) and isinstance(e.stride, Const):
            lo, hi = self(e.base)
            span = e.stride * (e.lanes - 1)
            return (lo, hi + span) if e.stride.value >= 0 else (lo + span, hi)
        return None
