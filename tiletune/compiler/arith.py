"""Integer index arithmetic: constant values, linear forms and row-major flat indices.

The one home of this arithmetic for the simplifier (``interval.Analyzer.linear``), the
lowering passes (``passes/fold_indices.py``, ``passes/flatten.py``), the VTA code generator
and the tuner's features::

    const_value(e)                     -> value of a Const (or a Broadcast of one), else None
    const_int(e)                       -> int value of an integer Const (through int casts)
    linear(e)                          -> ({term: coeff}, const)   sum(coeff * term) + const
    var_linear(e)                      -> ({var uid: coeff}, const) or None if not affine
    flat_index(indices, shape)         -> one row-major index expression
    flat_linear(indices, shape)        -> the flat index as a var_linear form (or None)
    evaluate(e, env)                   -> the integer value of an index expression at a point

A linear form keeps its terms in order of first appearance (a term whose coefficient cancels
is dropped), so rebuilding an expression from it is deterministic. A *term* is any
sub-expression that is not ``+``, ``-``, or ``*`` by a constant: a variable, a floordiv, a
load, ... With a ``dtype`` the coefficients wrap as that dtype's arithmetic does; without one
they are exact integers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tiletune.ir import dtype as dt
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
    const_value,
)

__all__ = ["Linear", "const_value", "const_int", "wrap", "lin_combine", "lin_scale", "linear",
           "var_linear", "flat_index", "flat_linear", "evaluate"]

Linear = tuple[dict, int]  # ({term: coeff}, const): sum(coeff * term) + const
Memo = dict[int, tuple[Expr, Any]]  # id(node) -> (node, form): keeps the node alive


def const_int(e: Expr) -> int | None:
    """The value of an integer Const, looking through integer casts; None otherwise."""
    while isinstance(e, Cast) and dt.is_int(e.dtype) and dt.is_int(e.a.dtype):
        e = e.a
    if isinstance(e, Const) and dt.is_int(e.dtype):
        return int(e.value)
    return None


def wrap(v: int, dtype: str) -> int:
    """``v`` reduced into ``dtype``'s range (two's complement wrap-around)."""
    lo, hi = dt.int_range(dtype)
    if lo <= v <= hi:
        return v
    return (v - lo) % (hi - lo + 1) + lo


def lin_combine(a: Linear, b: Linear, sign: int, dtype: str | None) -> Linear:
    """``a + sign*b``; coefficients wrapped into ``dtype`` (exact integers when None)."""
    terms = dict(a[0])
    for t, k in b[0].items():
        v = terms.get(t, 0) + sign * k
        if dtype is not None:
            v = wrap(v, dtype)
        if v:
            terms[t] = v
        else:
            terms.pop(t, None)
    c = a[1] + sign * b[1]
    return terms, (c if dtype is None else wrap(c, dtype))


def lin_scale(a: Linear, k: int, dtype: str | None) -> Linear:
    """``k * a``; coefficients wrapped into ``dtype`` (exact integers when None)."""
    if k == 0:
        return {}, 0
    terms = {}
    for t, v in a[0].items():
        w = v * k if dtype is None else wrap(v * k, dtype)
        if w:
            terms[t] = w
    c = a[1] * k
    return terms, (c if dtype is None else wrap(c, dtype))


def linear(e: Expr, dtype: str | None = None, memo: Memo | None = None,
           through_casts: bool = False) -> Linear:
    """``e`` as ``sum(coeff * term) + const`` over its non-linear sub-expressions.

    ``dtype``: wrap the coefficients into it (None: exact). ``memo``: a cache by node
    identity the caller owns. ``through_casts``: integer-to-integer casts are transparent
    (exact forms only) instead of being terms.
    """
    if memo is not None:
        hit = memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
    out = _linear(e, dtype, memo, through_casts)
    if memo is not None:
        memo[id(e)] = (e, out)
    return out


def _linear(e: Expr, dtype: str | None, memo: Memo | None, casts: bool) -> Linear:
    if isinstance(e, Const) and dt.is_int(e.dtype):
        v = int(e.value)
        return {}, (v if dtype is None else wrap(v, dtype))
    if isinstance(e, Binary) and e.op in ("add", "sub", "mul") and dt.lanes(e.dtype) == 1:
        la, lb = linear(e.a, dtype, memo, casts), linear(e.b, dtype, memo, casts)
        if e.op != "mul":
            return lin_combine(la, lb, 1 if e.op == "add" else -1, dtype)
        if not lb[0]:
            return lin_scale(la, lb[1], dtype)
        if not la[0]:
            return lin_scale(lb, la[1], dtype)
    if casts and isinstance(e, Cast) and dt.is_int(e.dtype) and dt.is_int(e.a.dtype):
        return linear(e.a, dtype, memo, casts)
    return {e: 1}, 0


def var_linear(e: Expr, memo: Memo | None = None) -> Linear | None:
    """``e`` as an exact affine form ``({var uid: coeff}, const)``, or None if it is not one.

    Only +, -, * by a constant and integer casts keep a form affine; floordiv, mod, min, max,
    selects and loads make it None.
    """
    terms, c = linear(e, None, memo, through_casts=True)
    if not all(isinstance(t, Var) for t in terms):
        return None
    return {t.uid: k for t, k in terms.items()}, c


def flat_index(indices: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """One row-major index expression for a multi-dimensional access into ``shape``.

    ``A[i, j, k]`` of shape (I, J, K) -> ``i * (J*K) + (j * K + k)``.
    """
    if not indices:
        return Const(0, dt.INDEX)
    out = indices[-1]
    stride = int(shape[-1])
    for i, n in zip(reversed(indices[:-1]), reversed(shape[:-1])):
        out = i * stride + out
        stride *= int(n)
    return out


def flat_linear(indices: Sequence[Expr], shape: Sequence[int],
                memo: Memo | None = None) -> Linear | None:
    """The row-major flat index of ``indices`` into ``shape`` as a :func:`var_linear` form."""
    out: Linear = ({}, 0)
    for e, n in zip(indices, shape):
        form = var_linear(e, memo)
        if form is None:
            return None
        out = lin_combine(lin_scale(out, int(n), None), form, 1, None)
    return out


# -- the value of an index expression at one point -------------------------------------------
_BIN: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a // b if b else 0, "floordiv": lambda a, b: a // b if b else 0,
    "floormod": lambda a, b: a % b if b else 0, "min": min, "max": max,
    "and": lambda a, b: a and b, "or": lambda a, b: a or b,
}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
}


def evaluate(e: Any, env: dict[int, int]) -> Any:
    """Value of an index expression with loop variables bound by ``env`` (uid -> value).

    Total, for estimates: unbound variables, loads and calls count as 0, and so does a
    division by zero; a Ramp is its base and a Broadcast its value.
    """
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        return env.get(e.uid, 0)
    if isinstance(e, Binary):
        return _BIN.get(e.op, lambda a, b: 0)(evaluate(e.a, env), evaluate(e.b, env))
    if isinstance(e, Compare):
        return _CMP[e.op](evaluate(e.a, env), evaluate(e.b, env))
    if isinstance(e, Not):
        return not evaluate(e.a, env)
    if isinstance(e, Select):
        return evaluate(e.a if evaluate(e.cond, env) else e.b, env)
    if isinstance(e, Cast):
        v = evaluate(e.a, env)
        return int(v) if dt.is_int(e.dtype) else v
    if isinstance(e, Ramp):
        return evaluate(e.base, env)
    if isinstance(e, Broadcast):
        return evaluate(e.value, env)
    return 0
