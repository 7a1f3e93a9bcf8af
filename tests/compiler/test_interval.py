"""Interval analysis: bound, prove, symbolic_bound (unit tests and hypothesis properties).

Also home of the reference evaluator and random-expression strategies that
test_simplify.py imports.
"""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiletune.compiler.interval import Interval, bound, prove, symbolic_bound
from tiletune.compiler.simplify import simplify
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
    max_,
    min_,
    select,
)

# ---------------------------------------------------------------- reference evaluator

MASK, TOP = (1 << 64) - 1, 1 << 63


def wrap64(v: int) -> int:
    v &= MASK
    return v - (1 << 64) if v >= TOP else v


def wrap_to(v: int, bits: int, signed: bool) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v


_CMP = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}


def bits_of(dtype: str) -> tuple[int, bool]:
    base = dtype.split("x")[0]
    return int(base.lstrip("uint")), not base.startswith("u")


def evaluate(e: Expr, env: dict[int, int]) -> Any:
    """Python ints with floor semantics and dtype wrap-around; vectors are tuples."""
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        return env[e.uid]
    if isinstance(e, Broadcast):
        return (evaluate(e.value, env),) * e.lanes
    if isinstance(e, Ramp):
        b, s = evaluate(e.base, env), evaluate(e.stride, env)
        return tuple(wrap64(b + s * i) for i in range(e.lanes))
    if isinstance(e, Binary):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        if isinstance(a, tuple):
            return tuple(_binary(e.op, x, y, e.dtype) for x, y in zip(a, b))
        return _binary(e.op, a, b, e.dtype)
    if isinstance(e, Compare):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        if isinstance(a, tuple):
            return tuple(_CMP[e.op](x, y) for x, y in zip(a, b))
        return _CMP[e.op](a, b)
    if isinstance(e, Not):
        return not evaluate(e.a, env)
    if isinstance(e, Select):
        return evaluate(e.a, env) if evaluate(e.cond, env) else evaluate(e.b, env)
    if isinstance(e, Cast):
        v = evaluate(e.a, env)
        return wrap_to(int(v), *bits_of(e.dtype))
    raise TypeError(type(e).__name__)


def _binary(op: str, a: Any, b: Any, dtype: str) -> Any:
    if op == "and":
        return a and b
    if op == "or":
        return a or b
    r = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
         "floordiv": lambda: a // b, "floormod": lambda: a % b,
         "min": lambda: min(a, b), "max": lambda: max(a, b)}[op]()
    return wrap_to(r, *bits_of(dtype))


# ---------------------------------------------------------------- strategies

VARS = [Var("x"), Var("y"), Var("z")]
nonzero = st.integers(-9, 9).filter(lambda v: v != 0)


def int_exprs(max_leaves: int = 12) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(st.sampled_from(VARS), st.integers(-10, 10).map(lambda v: Const(v, "int64")))

    def extend(sub: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        return st.one_of(
            st.tuples(sub, sub).map(lambda t: t[0] + t[1]),
            st.tuples(sub, sub).map(lambda t: t[0] - t[1]),
            st.tuples(sub, sub).map(lambda t: t[0] * t[1]),
            st.tuples(sub, st.integers(-6, 6)).map(lambda t: t[0] * t[1]),
            st.tuples(sub, nonzero).map(lambda t: t[0] // t[1]),
            st.tuples(sub, nonzero).map(lambda t: t[0] % t[1]),
            st.tuples(sub, sub).map(lambda t: min_(t[0], t[1])),
            st.tuples(sub, sub).map(lambda t: max_(t[0], t[1])),
            st.tuples(cmp_of(sub), sub, sub).map(lambda t: select(*t)),
        )
    return st.recursive(leaves, extend, max_leaves=max_leaves)


def cmp_of(sub: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    ops = st.sampled_from(["lt", "le", "gt", "ge", "eq", "ne"])
    return st.tuples(ops, sub, sub).map(lambda t: Compare(*t))


def conds(max_leaves: int = 6) -> st.SearchStrategy[Expr]:
    base = cmp_of(int_exprs(max_leaves))

    def extend(sub: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        return st.one_of(st.tuples(sub, sub).map(lambda t: t[0] & t[1]),
                         st.tuples(sub, sub).map(lambda t: t[0] | t[1]),
                         sub.map(lambda c: ~c))
    return st.recursive(base, extend, max_leaves=4)


@st.composite
def ranges(draw: Any) -> dict:
    out = {}
    for v in VARS:
        lo = draw(st.integers(-20, 20))
        out[v] = (lo, lo + draw(st.integers(0, 30)))
    return out


def points(draw: Any, rng: dict, n: int = 8) -> list[dict[int, int]]:
    return [{v.uid: draw(st.integers(lo, hi)) for v, (lo, hi) in rng.items()} for _ in range(n)]


x, y, z = VARS
PROPS = settings(max_examples=200, deadline=None)


def c(v: int, dtype: str = "int64") -> Const:
    return Const(v, dtype)


def test_arithmetic_bounds():
    r = {x: (0, 3), y: (-2, 5)}
    assert bound(x * 32 + y, r) == Interval(-2, 101)
    assert bound(x - y, r) == Interval(-5, 5)
    assert bound(x * y, r) == Interval(-6, 15)
    assert bound(y * -2, r) == Interval(-10, 4)
    assert bound(min_(x, y), r) == Interval(-2, 3)
    assert bound(max_(x, y), r) == Interval(0, 5)
    assert bound(select(x < 2, x, y + 10), r) == Interval(0, 15)


def test_floor_division_and_modulo():
    r = {y: (-9, 9)}
    assert bound(y // 4, r) == Interval(-3, 2)
    assert bound(y // -4, r) == Interval(-3, 2)
    assert bound(y % 4, r) == Interval(0, 3)
    assert bound(y % -4, r) == Interval(-3, 0)
    assert bound(y % 16, {y: (3, 9)}) == Interval(3, 9)      # one block: exact
    assert bound(y // 8, {y: (8, 15)}) == Interval(1, 1)
    assert bound(x // y, {x: (1, 10), y: (2, 5)}) == Interval(0, 5)


def test_unbounded_and_unknown():
    assert bound(x + 1) == Interval(None, None)
    assert bound(x + 1, {x: (0, None)}) == Interval(1, None)
    assert bound(x * -1, {x: (0, None)}) == Interval(None, 0)
    assert bound(x * 0, {}) == Interval(0, 0)
    assert bound(x % 8) == Interval(0, 7)
    assert not prove(x < 10)


def test_vectors_cast_and_overflow():
    r = {x: (0, 10)}
    assert bound(Ramp(x, c(2), 4), r) == Interval(0, 16)
    assert bound(Ramp(x, c(-1), 4), r) == Interval(-3, 10)
    assert bound(Broadcast(x, 8), r) == Interval(0, 10)
    v8 = Var("v", "int8")
    assert bound(v8) == Interval(-128, 127)
    assert bound(v8 + c(100, "int8"), {v8: (0, 100)}) == Interval(-128, 127)  # may wrap
    assert bound(v8 + c(20, "int8"), {v8: (0, 100)}) == Interval(20, 120)
    assert bound(Cast("int8", x), {x: (0, 300)}) == Interval(-128, 127)
    assert bound(Cast("int8", x), {x: (0, 100)}) == Interval(0, 100)


def test_prove():
    r = {x: (0, 3), y: (0, 31)}
    assert prove(x * 32 + y < 128, r)
    assert not prove(x * 32 + y < 127, r)
    assert prove((x * 32 + y) - x * 32 < 32, {y: (0, 31)})       # cancels without a range on x
    assert prove((x < 4) & (y >= 0), r)
    assert prove((x < 0) | (y < 32), r)
    assert prove(~(x > 3), r)
    assert prove(x == x)
    assert prove(Ramp(y, c(1), 4) < Broadcast(c(40), 4), r)
    assert not prove(Ramp(y, c(1), 4) < Broadcast(c(34), 4), r)
    int8 = Var("b", "int8")
    assert not prove(int8 + c(100, "int8") > c(50, "int8"), {int8: (0, 100)})  # wraps


def test_symbolic_bound_affine():
    io, ii, rk = Var("io"), Var("ii"), Var("rk")
    lo, hi = symbolic_bound(io * 32 + ii * 2 + rk, {ii: (0, 15), rk: (0, 2)})
    assert repr(lo) == "io * 32" and repr(hi) == "io * 32 + 32"
    assert simplify(hi - lo + 1) == c(33)
    lo, hi = symbolic_bound(io * 8 - ii, {ii: (0, 7)})
    assert simplify(hi - lo + 1) == c(8)
    n = Var("n")
    lo, hi = symbolic_bound(ii + 1, {ii: (0, n - 1)})               # symbolic relax range
    assert repr(lo) == "1" and repr(hi) == "n"


def test_symbolic_bound_monotone_and_fallback():
    io, ii = Var("io"), Var("ii")
    lo, hi = symbolic_bound((io * 32 + ii) // 4, {ii: (0, 31)})
    assert repr(lo) == "io * 8" and repr(hi) == "io * 8 + 7"
    lo, hi = symbolic_bound(min_(io + ii, c(100)), {ii: (0, 3)})
    assert repr(lo) == "min(io, 100)" and repr(hi) == "min(io + 3, 100)"
    lo, hi = symbolic_bound((io + ii) % 8, {ii: (0, 3)})             # not monotonic: numeric
    assert (lo, hi) == (c(0), c(7))
    lo, hi = symbolic_bound(ii * ii, {ii: (0, 3)})
    assert (lo, hi) == (c(0), c(9))
    with pytest.raises(ValueError):
        symbolic_bound(io * ii, {ii: (0, 3)})                         # sign of io unknown
    lo, hi = symbolic_bound(io * ii, {ii: (0, 3)}, ranges={io: (1, 5)})
    assert repr(lo) == "0" and repr(hi) == "io * 3"


# ---------------------------------------------------------------- properties

@PROPS
@given(e=int_exprs(), rng=ranges(), data=st.data())
def test_bound_contains_every_value(e, rng, data):
    iv = bound(e, rng)
    for env in points(data.draw, rng):
        assert iv.contains(evaluate(e, env)), (e, iv, env)


@PROPS
@given(cond=conds(), rng=ranges(), data=st.data())
def test_prove_never_proves_false(cond, rng, data):
    proved, disproved = prove(cond, rng), prove(~cond, rng)
    assert not (proved and disproved)
    for env in points(data.draw, rng):
        v = evaluate(cond, env)
        assert not proved or v, (cond, env)
        assert not disproved or not v, (cond, env)


@PROPS
@given(coeffs=st.lists(st.integers(-5, 5), min_size=3, max_size=3), k=st.integers(-9, 9),
       div=st.sampled_from([None, 2, 4, -3]), rng=ranges(), data=st.data())
def test_symbolic_bound_contains_every_value(coeffs, k, div, rng, data):
    e = x * coeffs[0] + y * coeffs[1] + z * coeffs[2] + k
    if div is not None:
        e = e // div
    relax = {y: rng[y], z: rng[z]}
    lo, hi = symbolic_bound(e, relax)
    for env in points(data.draw, rng):
        assert evaluate(lo, env) <= evaluate(e, env) <= evaluate(hi, env)
