"""Rule-table simplifier with a linear canonicaliser for integer index arithmetic.

``simplify(node, ranges)`` rewrites an Expr, a Stmt or a PrimFunc bottom-up:

* integer ``+ - *`` (scalar) go through a *linear canonicaliser*: the expression becomes
  ``sum(coeff * term) + const`` (terms collected, constants folded, ``x//c*c + x%c -> x``)
  and is rebuilt in a canonical order: ``x*4 + 3 + x*2 - 3 -> x*6``;
* ``// %`` split off multiples of the divisor and use ranges (``y // 8 -> 0`` for y in [0, 7]);
* min / max / comparisons / select are decided by interval analysis when possible;
* the remaining rewrites live in ``RULES``, one line each (pattern, replacement, comment);
* constants fold for every op and dtype (ints wrap, float32 rounds like numpy float32).
  Float rules are only the bit-exact ones (``x*1``, ``x/1``, ``x-0.0``, ``x+(-0.0)``).

On statements it also drops loops of extent <= 0, substitutes extent-1 loops, tracks loop
var ranges, decides ``if`` conditions, and flattens ``Seq``. Unchanged nodes come back as the
same object. Division rules assume int32/int64 index arithmetic does not overflow.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import numpy as np

from tiletune.compiler.arith import const_value as _cval
from tiletune.compiler.arith import lin_combine, wrap
from tiletune.compiler.interval import (
    Analyzer,
    Interval,
    as_interval,
    decide_diff,
    is_index_int,
    var_of,
)
from tiletune.ir import dtype as dt
from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Not,
    Ramp,
    Select,
    Var,
    max_,
    min_,
    structural_equal,
)
from tiletune.ir.functor import substitute
from tiletune.ir.stmt import Allocate, For, IfThenElse, PrimFunc, Seq, Stmt, Store

EMPTY = Seq(())
_COMMUTATIVE = {"add", "mul", "min", "max", "and", "or"}
_CMP_SWAP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}
_CMP_NOT = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}


# ---------------------------------------------------------------- constant folding

def _f32(x: float) -> float:
    return float(np.float32(x))


def fold(op: str, x: Any, y: Any, dtype: str) -> Any:
    """The folded value of ``x op y`` in ``dtype`` (element type), or None if not foldable."""
    if dt.is_bool(dtype):
        x, y = bool(x), bool(y)
        return {"and": x and y, "or": x or y, "min": x and y, "max": x or y}.get(op)
    if dt.is_int(dtype):
        if op in ("floordiv", "floormod") and y == 0:
            return None
        r = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
             "floordiv": lambda: x // y, "floormod": lambda: x % y,
             "min": lambda: min(x, y), "max": lambda: max(x, y)}.get(op)
        return None if r is None else wrap(r(), dtype)
    # floats: only finite, exactly representable results
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    if op in ("min", "max"):
        if x == y and math.copysign(1, x) != math.copysign(1, y):
            return None  # min(0.0, -0.0) is backend-defined
        return min(x, y) if op == "min" else max(x, y)
    single = dt.element(dtype) == "float32"
    a, b = (np.float32(x), np.float32(y)) if single else (x, y)
    with np.errstate(all="ignore"):
        if op == "add":
            r = a + b
        elif op == "sub":
            r = a - b
        elif op == "mul":
            r = a * b
        elif op == "div" and y != 0:
            r = a / b
        else:
            return None
    r = float(r)
    return r if math.isfinite(r) else None


def fold_compare(op: str, x: Any, y: Any) -> bool:
    return {"lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y, "eq": x == y,
            "ne": x != y}[op]


def fold_cast(dtype: str, x: Any, src: str) -> Any:
    """The value of ``Cast(dtype, Const(x, src))`` or None."""
    if dt.is_bool(dtype):
        return bool(x)
    if dt.is_int(dtype):
        if dt.is_float(src):
            if not math.isfinite(x):
                return None
            t = math.trunc(x)
            lo, hi = dt.int_range(dtype)
            return t if lo <= t <= hi else None  # out of range: undefined, leave it
        return wrap(int(x), dtype)
    v = float(x)
    return _f32(v) if dt.element(dtype) == "float32" else v


def _const(v: Any, dtype: str) -> Expr:
    """A constant of ``dtype`` (a Broadcast of one for vector dtypes)."""
    base, n = dt.split_lanes(dtype)
    c = Const(bool(v) if base == "bool" else v, base)
    return c if n == 1 else Broadcast(c, n)


# ---------------------------------------------------------------- rule patterns

class W(Expr):
    """Pattern wildcard: matches any expression (or only constants with ``const=True``)."""

    def __init__(self, name: str, const: bool = False, dtype: str = dt.INDEX):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "const", const)
        object.__setattr__(self, "dtype", dtype)

    __hash__ = object.__hash__


class Env(dict):
    """Bindings of a match, readable as attributes in replacements: ``m.x``."""

    __getattr__ = dict.__getitem__


Matcher = Callable[[Expr, Env], bool]


def _compile(p: Expr) -> Matcher:
    if isinstance(p, W):
        name, only_const = p.name, p.const

        def m_w(e: Expr, env: Env) -> bool:
            if only_const and not isinstance(e, Const):
                return False
            old = env.get(name)
            if old is None:
                env[name] = e
                return True
            return old is e or structural_equal(old, e)
        return m_w
    if isinstance(p, (Binary, Compare)):
        T, op, ma, mb = type(p), p.op, _compile(p.a), _compile(p.b)
        return lambda e, env: (type(e) is T and e.op == op and ma(e.a, env)
                               and mb(e.b, env))
    if isinstance(p, Not):
        ma = _compile(p.a)
        return lambda e, env: type(e) is Not and ma(e.a, env)
    if isinstance(p, Select):
        mc, ma, mb = _compile(p.cond), _compile(p.a), _compile(p.b)
        return lambda e, env: (type(e) is Select and mc(e.cond, env) and ma(e.a, env)
                               and mb(e.b, env))
    raise TypeError(f"unsupported pattern node {type(p).__name__}")


def _key(e: Expr) -> str:
    return type(e).__name__ + ":" + getattr(e, "op", "")


x, y, z = W("x"), W("y"), W("z")
c1, c2 = W("c1", True), W("c2", True)
bx, by = W("x", dtype="bool"), W("y", dtype="bool")


def _cfold(op: str) -> Callable[[Env], Expr]:
    """Replacement ``x op fold(c1, c2)`` for re-associating constants."""
    def f(m: Env) -> Expr | None:
        v = fold(op, m.c1.value, m.c2.value, m.c1.dtype)
        return None if v is None else Binary(op, m.x, Const(v, m.c1.dtype))
    return f


def _int(m: Env) -> bool:
    return is_index_int(m.x.dtype)


# (pattern, replacement: a wildcard or fn(Env) -> Expr | None (None = does not apply))
# Integer + - * never reach the table: the linear canonicaliser owns them. Commutative
# operands arrive with any constant on the right.
RULES: list[tuple[Expr, Any]] = [
    (min_(x, x), x),                                            # min(x, x) -> x
    (max_(x, x), x),                                            # max(x, x) -> x
    (min_(x, max_(x, y)), x),                                   # absorption
    (min_(x, max_(y, x)), x),                                   # absorption
    (min_(max_(x, y), x), x),                                   # absorption
    (min_(max_(y, x), x), x),                                   # absorption
    (max_(x, min_(x, y)), x),                                   # absorption
    (max_(x, min_(y, x)), x),                                   # absorption
    (max_(min_(x, y), x), x),                                   # absorption
    (max_(min_(y, x), x), x),                                   # absorption
    (min_(min_(x, c1), c2), _cfold("min")),                     # min(min(x,c1),c2) -> min(x,c)
    (max_(max_(x, c1), c2), _cfold("max")),                     # max(max(x,c1),c2) -> max(x,c)
    (min_(min_(x, y), x), lambda m: Binary("min", m.x, m.y)),   # min(min(x,y),x) -> min(x,y)
    (max_(max_(x, y), x), lambda m: Binary("max", m.x, m.y)),   # max(max(x,y),x) -> max(x,y)
    (x // c1 // c2, lambda m: (Binary("floordiv", m.x, Const(m.c1.value * m.c2.value,
                                                             m.c1.dtype))
                               if m.c1.value > 0 and m.c2.value > 0 and _int(m)
                               else None)),             # (x//c1)//c2 -> x//(c1*c2), c1,c2 > 0
    (x % c1 % c2, lambda m: (Binary("floormod", m.x, m.c2)
                             if m.c2.value > 0 and m.c1.value % m.c2.value == 0
                             else None)),               # (x%c1)%c2 -> x%c2 when c2 | c1
    (bx & bx, bx),                                              # x & x -> x
    (bx | bx, bx),                                              # x | x -> x
    (bx & ~bx, lambda m: _const(False, m.x.dtype)),             # x & ~x -> False
    (~bx & bx, lambda m: _const(False, m.x.dtype)),             # ~x & x -> False
    (bx | ~bx, lambda m: _const(True, m.x.dtype)),              # x | ~x -> True
    (~bx | bx, lambda m: _const(True, m.x.dtype)),              # ~x | x -> True
    (bx & (bx | by), bx),                                       # absorption
    (bx | (bx & by), bx),                                       # absorption
    (~~bx, bx),                                                 # ~~x -> x
    (Select(bx, y, y), y),                                      # select(c, y, y) -> y
    (Select(~bx, y, z), lambda m: Select(m.x, m.z, m.y)),       # select(~c,a,b) -> select(c,b,a)
    (Select(bx, Select(bx, y, W("_")), z),
     lambda m: Select(m.x, m.y, m.z)),                          # same condition nested (then)
    (Select(bx, y, Select(bx, W("_"), z)),
     lambda m: Select(m.x, m.y, m.z)),                          # same condition nested (else)
]

_TABLE: dict[str, list[tuple[Matcher, Any]]] = {}
for _pat, _rep in RULES:
    _TABLE.setdefault(_key(_pat), []).append((_compile(_pat), _rep))


def apply_rules(e: Expr) -> Expr | None:
    """The first rule of ``RULES`` that rewrites ``e``, or None."""
    for match, rep in _TABLE.get(_key(e), ()):
        env = Env()
        if match(e, env):
            r = env[rep.name] if isinstance(rep, W) else rep(env)
            if r is not None:
                return r
    return None


# ---------------------------------------------------------------- the simplifier

def _as_ranges(ranges: dict | None) -> dict[int, Interval]:
    return {var_of(v).uid: as_interval(r) for v, r in (ranges or {}).items()}


def _is_empty(s: Stmt | None) -> bool:
    return isinstance(s, Seq) and not s.stmts


class Simplifier:
    """One simplification run: memoised per loop scope (ranges change inside loops)."""

    MAX_DEPTH = 64

    def __init__(self, ranges: dict | None = None):
        self.ranges = _as_ranges(ranges)
        self.an = Analyzer(by_uid=self.ranges)
        self.memo: dict[int, tuple[Expr, Expr]] = {}
        self.depth = 0

    # ------------------------------------------------ scopes
    def _enter(self, extra: dict[int, Interval]) -> tuple:
        saved = (self.ranges, self.an, self.memo)
        self.ranges = {**self.ranges, **extra}
        self.an = Analyzer(by_uid=self.ranges)
        self.memo = {}
        return saved

    def _leave(self, saved: tuple) -> None:
        self.ranges, self.an, self.memo = saved

    # ------------------------------------------------ expressions
    def expr(self, e: Expr) -> Expr:
        hit = self.memo.get(id(e))
        if hit is not None:
            return hit[1]
        r = self._expr(e)
        self.memo[id(e)] = (e, r)
        if r is not e:
            self.memo.setdefault(id(r), (r, r))
        return r

    def _again(self, new: Expr | None, old: Expr) -> Expr:
        """Simplify the result of a rewrite (its children are simplified already)."""
        if new is None or new is old:
            return old
        if self.depth >= self.MAX_DEPTH:  # safety net against rule cycles
            return new
        self.depth += 1
        try:
            return self.expr(new)
        finally:
            self.depth -= 1

    def _expr(self, e: Expr) -> Expr:
        if isinstance(e, Const):
            return e
        if isinstance(e, Var):
            iv = self.ranges.get(e.uid)
            return Const(iv.lo, e.dtype) if iv is not None and iv.is_point else e
        if isinstance(e, Binary):
            return self._binary(e)
        if isinstance(e, Compare):
            return self._compare(e)
        if isinstance(e, Not):
            return self._not(e)
        if isinstance(e, Select):
            return self._select(e)
        if isinstance(e, Cast):
            return self._cast(e)
        if isinstance(e, Ramp):
            base, stride = self.expr(e.base), self.expr(e.stride)
            if _cval(stride) == 0 and isinstance(stride, Const):
                return self.expr(Broadcast(base, e.lanes))          # ramp(b, 0, n) -> x_n(b)
            return e if base is e.base and stride is e.stride else Ramp(base, stride, e.lanes)
        if isinstance(e, Load):
            idx = tuple(self.expr(i) for i in e.indices)
            pred = None if e.pred is None else self.expr(e.pred)
            if pred is not None and self.an.decide(pred) is True:
                pred = None                                          # all lanes read
            same = pred is e.pred and all(a is b for a, b in zip(idx, e.indices))
            return e if same else replace(e, indices=idx, pred=pred)
        return self._generic(e)

    def _generic(self, e: Any) -> Any:
        changes = {}
        for f in fields(e):
            v = getattr(e, f.name)
            if isinstance(v, Expr):
                nv = self.expr(v)
            elif isinstance(v, tuple) and any(isinstance(t, Expr) for t in v):
                nv = tuple(self.expr(t) if isinstance(t, Expr) else t for t in v)
                if all(a is b for a, b in zip(nv, v)):
                    nv = v
            else:
                continue
            if nv is not v:
                changes[f.name] = nv
        return replace(e, **changes) if changes else e

    # ------------------------------------------------ binary operators
    def _binary(self, e: Binary) -> Expr:
        op = e.op
        a, b = self.expr(e.a), self.expr(e.b)
        if op in _COMMUTATIVE and _cval(a) is not None and _cval(b) is None:
            a, b = b, a                                  # constants to the right
        node = e if a is e.a and b is e.b else Binary(op, a, b)
        dtype = node.dtype
        va, vb = _cval(a), _cval(b)
        if va is not None and vb is not None:            # fold constants
            v = fold(op, va, vb, dtype)
            if v is not None:
                return _const(v, dtype)
        if dt.lanes(dtype) > 1:
            r = self._vector(op, a, b, dtype)
            if r is not None:
                return self._again(r, node)
        if dt.is_float(dtype):
            return self._float(op, a, b, node)
        if is_index_int(dtype):
            if op in ("add", "sub", "mul") and dt.lanes(dtype) == 1:
                return self._linear(node)
            if op == "floordiv":
                r = self._floordiv(a, b, node)
                if r is not None:
                    return r
            elif op == "floormod":
                r = self._floormod(a, b, node)
                if r is not None:
                    return r
            elif op in ("min", "max"):
                d = self.an.diff(a, b)                   # a - b
                if d.hi is not None and d.hi <= 0:
                    return a if op == "min" else b       # a <= b
                if d.lo is not None and d.lo >= 0:
                    return b if op == "min" else a       # a >= b
        elif dt.is_bool(dtype) and op in ("and", "or") and vb is not None:
            keep = bool(vb) if op == "and" else not bool(vb)   # x & True -> x, x | True -> True
            return a if keep else _const(vb, dtype)
        return self._again(apply_rules(node), node)

    def _float(self, op: str, a: Expr, b: Expr, node: Expr) -> Expr:
        vb = _cval(b)
        if vb is not None:
            neg = math.copysign(1.0, vb) < 0
            if op in ("mul", "div") and vb == 1:
                return a                                 # x*1 -> x, x/1 -> x (bit exact)
            if op == "sub" and vb == 0 and not neg:
                return a                                 # x - 0.0 -> x (-0.0 - 0.0 = -0.0)
            if op == "add" and vb == 0 and neg:
                return a                                 # x + -0.0 -> x
        if op in ("min", "max") and structural_equal(a, b):
            return a                                     # min(x, x) -> x (NaN too)
        return node  # other float identities are not exact (NaN, -0.0, rounding)

    def _vector(self, op: str, a: Expr, b: Expr, dtype: str) -> Expr | None:
        """Broadcast/Ramp rules; the result is simplified again by the caller."""
        n = dt.lanes(dtype)
        if isinstance(a, Broadcast) and isinstance(b, Broadcast):
            return Broadcast(Binary(op, a.value, b.value), n)    # x(a) op x(b) -> x(a op b)
        if not is_index_int(dtype):
            return None
        ra, rb = isinstance(a, Ramp), isinstance(b, Ramp)
        ba, bb = isinstance(a, Broadcast), isinstance(b, Broadcast)
        if op == "add":
            if ra and bb:
                return Ramp(Binary("add", a.base, b.value), a.stride, n)  # ramp + x(c)
            if ba and rb:
                return Ramp(Binary("add", a.value, b.base), b.stride, n)  # x(c) + ramp
            if ra and rb:
                return Ramp(Binary("add", a.base, b.base),
                            Binary("add", a.stride, b.stride), n)         # ramp + ramp
        elif op == "sub":
            if ra and bb:
                return Ramp(Binary("sub", a.base, b.value), a.stride, n)  # ramp - x(c)
            if ba and rb:
                zero = Const(0, b.stride.dtype)
                return Ramp(Binary("sub", a.value, b.base),
                            Binary("sub", zero, b.stride), n)             # x(c) - ramp
            if ra and rb:
                return Ramp(Binary("sub", a.base, b.base),
                            Binary("sub", a.stride, b.stride), n)         # ramp - ramp
        elif op == "mul":
            if ra and bb:
                return Ramp(Binary("mul", a.base, b.value),
                            Binary("mul", a.stride, b.value), n)          # ramp * x(c)
        elif op in ("floordiv", "floormod") and ra and bb:
            k, s = _cval(b), _cval(a.stride)
            if not isinstance(k, int) or k <= 0 or not isinstance(s, int):
                return None
            kc = b.value
            if s % k == 0:   # every lane moves by whole blocks
                if op == "floordiv":
                    return Ramp(Binary("floordiv", a.base, kc), Const(s // k, kc.dtype), n)
                return Broadcast(Binary("floormod", a.base, kc), n)
            r = self.an.bound(self.expr(Binary("floormod", a.base, kc)))
            span = s * (n - 1)
            same = (r.hi is not None and r.hi + span < k) if s >= 0 else (
                r.lo is not None and r.lo + span >= 0)
            if same:         # all lanes fall in the block of the base
                if op == "floordiv":
                    return Broadcast(Binary("floordiv", a.base, kc), n)
                return Ramp(Binary("floormod", a.base, kc), a.stride, n)
        return None

    # ------------------------------------------------ linear canonical form
    def _linear(self, node: Expr) -> Expr:
        lin = self.an.linear(node)
        terms, c = _merge_divmod(lin, node.dtype)
        out = _from_linear(terms, c, node.dtype)
        if out is node or structural_equal(out, node):
            return node
        return out

    def _floordiv(self, a: Expr, b: Expr, node: Expr) -> Expr | None:
        c = _cval(b)
        if not isinstance(b, Const) or c == 0:
            return None
        if c == 1:
            return a                                           # x // 1 -> x
        iv = self.an.bound(node)
        if iv.is_point:
            return Const(iv.lo, node.dtype)                    # decided by ranges
        lin = self.an.linear(a)
        if lin is None or not _index(node.dtype) or c < 0:
            return None
        terms, k = lin
        out = {t: v // c for t, v in terms.items() if v % c == 0}
        q, r = divmod(k, c)
        if out or q:   # (A*c + B + q*c) // c -> A + q + B // c
            keep = {t: v for t, v in terms.items() if v % c}
            rest = Binary("floordiv", _from_linear(keep, r, node.dtype), b) if keep else None
            head = _from_linear(out, q, node.dtype)
            return self.expr(head if rest is None else Binary("add", head, rest))
        g = math.gcd(c, *terms.values())
        if g > 1:   # (g*A + k) // (g*c') -> (A + k//g) // c'
            scaled = {t: v // g for t, v in terms.items()}
            inner = _from_linear(scaled, k // g, node.dtype)
            return self.expr(Binary("floordiv", inner, Const(c // g, b.dtype)))
        return None

    def _floormod(self, a: Expr, b: Expr, node: Expr) -> Expr | None:
        c = _cval(b)
        if not isinstance(b, Const) or c == 0:
            return None
        if c in (1, -1):
            return Const(0, node.dtype)                        # x % 1 -> 0
        iv = self.an.bound(a)
        if iv.bounded and iv.lo // c == iv.hi // c:            # one block: x % c -> x - q*c
            q = iv.lo // c
            if q == 0:
                return a
            return self.expr(Binary("sub", a, Const(q * c, node.dtype)))
        lin = self.an.linear(a)
        if lin is None or not _index(node.dtype) or c < 0:
            return None
        terms, k = lin
        keep = {t: v for t, v in terms.items() if v % c}
        if len(keep) < len(terms) or k % c != k:
            inner = _from_linear(keep, k % c, node.dtype)      # (A*c + B) % c -> B % c
            return self.expr(Binary("floormod", inner, b))
        g = math.gcd(c, k, *terms.values())
        if g > 1:   # (g*A) % (g*c') -> (A % c') * g
            inner = _from_linear({t: v // g for t, v in terms.items()}, k // g, node.dtype)
            m = Binary("floormod", inner, Const(c // g, b.dtype))
            return self.expr(Binary("mul", m, Const(g, b.dtype)))
        return None

    # ------------------------------------------------ comparisons and logic
    def _compare(self, e: Compare) -> Expr:
        a, b = self.expr(e.a), self.expr(e.b)
        op = e.op
        if _cval(a) is not None and _cval(b) is None:
            a, b, op = b, a, _CMP_SWAP[op]                     # constants to the right
        node = e if a is e.a and b is e.b and op == e.op else Compare(op, a, b)
        va, vb = _cval(a), _cval(b)
        if va is not None and vb is not None:
            return _const(fold_compare(op, va, vb), node.dtype)
        if isinstance(a, Broadcast) and isinstance(b, Broadcast):
            return self.expr(Broadcast(Compare(op, a.value, b.value), dt.lanes(a.dtype)))
        if not dt.is_int(a.dtype):
            return node
        d = decide_diff(op, self.an.diff(a, b))
        if d is not None:
            return _const(d, node.dtype)                       # decided by ranges
        if dt.lanes(a.dtype) == 1 and _index(a.dtype):        # P + k op N -> P op N - k
            la, lb = self.an.linear(a), self.an.linear(b)
            terms, k = lin_combine(la, lb, -1, a.dtype)       # a - b = D + k
            g = math.gcd(*terms.values()) if terms else 1
            if g > 1:                                          # g*D' op -k -> D' op K'
                K = -k
                if op in ("eq", "ne") and K % g:
                    return _const(op == "ne", node.dtype)
                K = -(-K // g) if op in ("lt", "ge") else K // g
                terms, k = {t: v // g for t, v in terms.items()}, -K
            pos = {t: v for t, v in terms.items() if v > 0}
            neg = {t: -v for t, v in terms.items() if v < 0}
            if pos:
                out = Compare(op, _from_linear(pos, 0, a.dtype), _from_linear(neg, -k, a.dtype))
            else:
                out = Compare(op, Const(k, a.dtype), _from_linear(neg, 0, a.dtype))
            if not structural_equal(out, node):
                return out
        return node

    def _not(self, e: Not) -> Expr:
        a = self.expr(e.a)
        v = _cval(a)
        if v is not None:
            return _const(not v, e.dtype)                      # ~True -> False
        if isinstance(a, Compare) and dt.is_int(a.a.dtype):
            return self.expr(Compare(_CMP_NOT[a.op], a.a, a.b))  # ~(a < b) -> a >= b (ints)
        node = e if a is e.a else Not(a)
        return self._again(apply_rules(node), node)

    def _select(self, e: Select) -> Expr:
        cond = self.expr(e.cond)
        d = self.an.decide(cond)
        if d is not None:
            return self.expr(e.a if d else e.b)                # constant condition
        a, b = self.expr(e.a), self.expr(e.b)
        node = e if cond is e.cond and a is e.a and b is e.b else Select(cond, a, b)
        return self._again(apply_rules(node), node)

    def _cast(self, e: Cast) -> Expr:
        a = self.expr(e.a)
        if a.dtype == e.dtype:
            return a                                           # no-op cast
        v = _cval(a)
        if v is not None:
            r = fold_cast(dt.element(e.dtype), v, a.dtype)
            if r is not None:
                return _const(r, e.dtype)
        if isinstance(a, Broadcast):                           # cast(x(a)) -> x(cast(a))
            return self.expr(Broadcast(Cast(dt.element(e.dtype), a.value), a.lanes))
        return e if a is e.a else Cast(e.dtype, a)

    # ------------------------------------------------ statements
    def stmt(self, s: Stmt) -> Stmt:
        if isinstance(s, For):
            return self._for(s)
        if isinstance(s, Seq):
            return self._seq(s)
        if isinstance(s, IfThenElse):
            return self._if(s)
        if isinstance(s, Store):
            idx = tuple(self.expr(i) for i in s.indices)
            value = self.expr(s.value)
            pred = None if s.pred is None else self.expr(s.pred)
            if pred is not None:
                d = self.an.decide(pred)
                if d is False:
                    return EMPTY                               # no lane is written
                if d is True:
                    pred = None
            same = value is s.value and pred is s.pred and all(
                a is b for a, b in zip(idx, s.indices))
            return s if same else replace(s, indices=idx, value=value, pred=pred)
        if isinstance(s, Allocate):
            body = self.stmt(s.body)
            if _is_empty(body):
                return EMPTY
            return s if body is s.body else replace(s, body=body)
        return self._generic_stmt(s)

    def _generic_stmt(self, s: Stmt) -> Stmt:
        changes = {}
        for f in fields(s):
            v = getattr(s, f.name)
            nv = self.stmt(v) if isinstance(v, Stmt) else self.expr(v) if isinstance(
                v, Expr) else v
            if nv is not v:
                changes[f.name] = nv
        return replace(s, **changes) if changes else s

    def _for(self, s: For) -> Stmt:
        lo, ext = self.expr(s.lo), self.expr(s.extent)
        n = _cval(ext)
        if isinstance(ext, Const) and n <= 0:
            return EMPTY                                       # loop never runs
        if isinstance(ext, Const) and n == 1:
            return self.stmt(substitute(s.body, {s.var: lo}))  # for i in range(1) -> i := lo
        ilo, iext = self.an.bound(lo), self.an.bound(ext)
        hi = None if ilo.hi is None or iext.hi is None else ilo.hi + iext.hi - 1
        saved = self._enter({s.var.uid: Interval(ilo.lo, hi)})
        try:
            body = self.stmt(s.body)
        finally:
            self._leave(saved)
        if _is_empty(body):
            return EMPTY
        if lo is s.lo and ext is s.extent and body is s.body:
            return s
        return replace(s, lo=lo, extent=ext, body=body)

    def _seq(self, s: Seq) -> Stmt:
        out: list[Stmt] = []
        changed = False
        for x0 in s.stmts:
            x1 = self.stmt(x0)
            if isinstance(x1, Seq):                            # flatten, drop empty Seqs
                out.extend(x1.stmts)
                changed = True
            else:
                out.append(x1)
                changed = changed or x1 is not x0
        if not changed:
            return s
        return out[0] if len(out) == 1 else Seq(tuple(out))

    def _if(self, s: IfThenElse) -> Stmt:
        cond = self.expr(s.cond)
        d = self.an.decide(cond)
        if d is True:
            return self.stmt(s.then)                           # condition always holds
        if d is False:
            return EMPTY if s.else_ is None else self.stmt(s.else_)
        saved = self._enter(_facts(cond, self.an))
        try:
            then = self.stmt(s.then)
        finally:
            self._leave(saved)
        saved = self._enter(_facts(_negate(cond), self.an))
        try:
            else_ = None if s.else_ is None else self.stmt(s.else_)
        finally:
            self._leave(saved)
        if _is_empty(else_):
            else_ = None
        if _is_empty(then) and else_ is None:
            return EMPTY
        if _is_empty(then):  # if c: pass else: b -> if ~c: b
            return IfThenElse(self.expr(Not(cond)), else_, None)
        if cond is s.cond and then is s.then and else_ is s.else_:
            return s
        return IfThenElse(cond, then, else_)


def _negate(cond: Expr) -> Expr:
    if isinstance(cond, Compare) and dt.is_int(cond.a.dtype):
        return Compare(_CMP_NOT[cond.op], cond.a, cond.b)
    return Not(cond)


def _facts(cond: Expr, an: Analyzer) -> dict[int, Interval]:
    """Var ranges implied by a condition (``i < 10``, ``j >= 2`` and conjunctions of them)."""
    out: dict[int, Interval] = {}

    def add(c: Expr) -> None:
        if isinstance(c, Binary) and c.op == "and":
            add(c.a)
            add(c.b)
            return
        if not isinstance(c, Compare) or dt.lanes(c.a.dtype) != 1:
            return
        op, a, b = c.op, c.a, c.b
        if not isinstance(a, Var):
            if not isinstance(b, Var):
                return
            a, b, op = b, a, _CMP_SWAP[op]
        if not dt.is_int(a.dtype) or dt.is_bool(a.dtype):
            return
        ib = an.bound(b)
        new = {"lt": Interval(None, None if ib.hi is None else ib.hi - 1),
               "le": Interval(None, ib.hi),
               "gt": Interval(None if ib.lo is None else ib.lo + 1, None),
               "ge": Interval(ib.lo, None),
               "eq": ib}.get(op)
        if new is not None:
            cur = out.get(a.uid) or an.bound(a)
            out[a.uid] = cur.intersect(new)

    add(cond)
    return out


def _index(dtype: str) -> bool:
    """Signed 32/64-bit ints: index arithmetic assumed not to overflow (division rules)."""
    return dt.is_signed(dtype) and dt.bits(dtype) >= 32


def _merge_divmod(lin: tuple[dict, int], dtype: str) -> tuple[dict, int]:
    """``x//c * (k*c) + x%c * k -> x * k`` inside a linear form."""
    terms, c = lin
    mods = [(t, v) for t, v in terms.items()
            if isinstance(t, Binary) and t.op == "floormod" and isinstance(t.b, Const)]
    if not mods:
        return lin
    terms = dict(terms)
    for t, k in mods:
        div = Binary("floordiv", t.a, t.b)
        kd = terms.get(div)
        if kd is not None and wrap(k * t.b.value, dtype) == kd and t in terms:
            del terms[t], terms[div]
            terms = lin_combine((terms, 0), ({t.a: k}, 0), 1, dtype)[0]
    return terms, c


def _from_linear(terms: dict, c: int, dtype: str) -> Expr:
    """Rebuild ``sum(coeff * term) + c``: positive terms first, then subtractions."""
    out: Expr | None = None
    neg = []
    top = dt.int_range(dtype)[1]
    for t, k in terms.items():
        if k < 0 and dt.is_signed(dtype) and -k <= top:
            neg.append((t, -k))
            continue
        term = t if k == 1 else Binary("mul", t, Const(k, dtype))
        out = term if out is None else Binary("add", out, term)
    if out is None:
        out = Const(c, dtype)
        c = 0
    for t, k in neg:
        term = t if k == 1 else Binary("mul", t, Const(k, dtype))
        out = Binary("sub", out, term)
    if c > 0 or c < 0 and -c > top:
        out = Binary("add", out, Const(c, dtype))
    elif c < 0:
        out = Binary("sub", out, Const(-c, dtype))
    return out


# ---------------------------------------------------------------- public API

def simplify(node: Any, ranges: dict | None = None) -> Any:
    """Simplify an Expr, Stmt or PrimFunc; ``ranges`` maps Var -> Interval | (lo, hi).

    Returns the very same object when nothing changed.
    """
    s = Simplifier(ranges)
    if isinstance(node, PrimFunc):
        body = s.stmt(node.body)
        return node if body is node.body else node.with_body(body)
    if isinstance(node, Stmt):
        return s.stmt(node)
    if isinstance(node, Expr):
        return s.expr(node)
    raise TypeError(f"simplify: expected an Expr, Stmt or PrimFunc, got {type(node).__name__}")
