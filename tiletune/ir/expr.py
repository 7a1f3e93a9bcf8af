"""Expression nodes: the whole grammar of scalar and vector expressions on one screen.

Every node is an immutable dataclass. Two nodes are structurally equal when their types and
fields are equal (``structural_equal``); ``Var`` and buffers compare by identity. Each node
finds, once, its canonical node (``canonical``: the first live node of its structure, hash-
consed); from then on hashing and structural equality are O(1) identity checks. Python
operators build nodes: ``a + b``, ``a < b``, ``a == b`` ... ``a == b`` returns an ``EQ``
comparison whose truth value is structural equality (so nodes work as dict keys); every other
truth test of an expression raises ``DSLError`` (no silent ``and``/``or``/``if``).

    Const(value, dtype)                  literal
    Var(name, dtype)                     loop / axis variable (identity)
    Binary(op, a, b)                     add sub mul div floordiv floormod min max and or
    Compare(op, a, b)                    lt le gt ge eq ne  -> bool
    Not(a)
    Select(cond, a, b)                   if_then_else (both sides evaluated)
    Cast(dtype, a)
    Call(name, args, dtype)              exp log sqrt tanh abs fmuladd
    TensorRead(tensor, indices)          DSL-level read of a tensor
    Reduce(combiner, source, axes, cond) sum / max / min over reduce axes
    Load(buffer, indices, dtype, pred)   read of a buffer (multi-dim before flatten, 1-D after)
    Ramp(base, stride, lanes)            vector [base, base+stride, ...]
    Broadcast(value, lanes)              vector of one value
"""
from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field, fields
from typing import Any

from tiletune.errors import DSLError
from tiletune.ir import dtype as dt

_uid = itertools.count()


class ExprOps:
    """Operator overloads shared by Expr and IterVar."""

    def _e(self) -> Expr:
        return as_expr(self)

    def __add__(self, o): return binary("add", self, o)
    def __radd__(self, o): return binary("add", o, self)
    def __sub__(self, o): return binary("sub", self, o)
    def __rsub__(self, o): return binary("sub", o, self)
    def __mul__(self, o): return binary("mul", self, o)
    def __rmul__(self, o): return binary("mul", o, self)
    def __truediv__(self, o): return binary("div", self, o)
    def __rtruediv__(self, o): return binary("div", o, self)
    def __floordiv__(self, o): return binary("floordiv", self, o)
    def __rfloordiv__(self, o): return binary("floordiv", o, self)
    def __mod__(self, o): return binary("floormod", self, o)
    def __rmod__(self, o): return binary("floormod", o, self)
    def __neg__(self): return binary("sub", 0, self)
    def __lt__(self, o): return compare("lt", self, o)
    def __le__(self, o): return compare("le", self, o)
    def __gt__(self, o): return compare("gt", self, o)
    def __ge__(self, o): return compare("ge", self, o)
    def __eq__(self, o): return compare("eq", self, o)  # type: ignore[override]
    def __ne__(self, o): return compare("ne", self, o)  # type: ignore[override]
    def __and__(self, o): return logical("and", self, o)
    def __rand__(self, o): return logical("and", o, self)
    def __or__(self, o): return logical("or", self, o)
    def __ror__(self, o): return logical("or", o, self)
    def __invert__(self): return Not(as_expr(self))

    def __bool__(self):
        raise DSLError("an expression has no Python truth value: use tt.if_then_else, "
                       "tt.all / tt.any or & | ~ instead of if / and / or / not")

    def astype(self, dtype: str) -> Expr:
        """Cast to ``dtype`` (the only way to mix dtypes)."""
        return cast(dt.check(dtype), as_expr(self))

    __hash__ = object.__hash__


class Expr(ExprOps):
    """Base of every expression node. Subclasses are frozen dataclasses with a ``dtype``."""

    dtype: str

    def __hash__(self) -> int:
        return object.__hash__(canonical(self))

    def __getstate__(self) -> dict:
        # the canonical-node cache is per process (identity based): never pickle it
        return {k: v for k, v in self.__dict__.items() if k != "_canon"}

    def __repr__(self) -> str:
        from tiletune.ir.printer import expr_str
        return expr_str(self)


_FIELDS: dict[type, tuple[str, ...]] = {}


def field_names(node: Any) -> tuple[str, ...]:
    """The dataclass field names of a node's class (cached: ``dataclasses.fields`` is slow)."""
    cls = type(node)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


# structure key -> the live canonical node of that structure. A key holds the ids of its
# children's canonical nodes, which the canonical node keeps alive (through its children), so
# an id in a live key is never reused; the entry goes when its node does.
_CANON: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_SELF = object()  # the ``_canon`` of a canonical node


def _leaf_key(v: Any) -> Any:
    if v is None or isinstance(v, (str, int)):
        return (type(v), v)
    if isinstance(v, float):
        return (float, repr(v))  # NaN equals NaN; -0.0 stays apart from 0.0
    if isinstance(v, Expr):
        return id(canonical(v))
    if isinstance(v, (tuple, list)):
        return (tuple,) + tuple(_leaf_key(x) for x in v)
    return ("id", id(v))  # Vars' IterVars, buffers, tensors: identity (the node keeps v alive)


def canonical(e: Expr) -> Expr:
    """The canonical node structurally equal to ``e`` (computed once per node, then cached)."""
    d = e.__dict__
    c = d.get("_canon")
    if c is not None:
        return e if c is _SELF else c
    if isinstance(e, Var):
        c = e
    else:
        key = (type(e),) + tuple(_leaf_key(d[f]) for f in field_names(e))
        c = _CANON.get(key)
        if c is None:
            _CANON[key] = c = e
    object.__setattr__(e, "_canon", _SELF if c is e else c)  # no self-reference cycle
    return c


def structural_equal(a: Any, b: Any) -> bool:
    """True when two IR values have the same structure (Vars and buffers by identity)."""
    if a is b:
        return True
    if isinstance(a, Expr) or isinstance(b, Expr):
        if type(a) is not type(b) or isinstance(a, Var):
            return False
        return canonical(a) is canonical(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(structural_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


node = dataclass(frozen=True, eq=False, repr=False)


@node
class Const(Expr):
    value: Any
    dtype: str


@node
class Var(Expr):
    name: str
    dtype: str = dt.INDEX
    uid: int = field(default_factory=lambda: next(_uid))

    def __hash__(self) -> int:
        return hash(("Var", self.uid))


@node
class Binary(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@node
class Compare(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return dt.with_lanes("bool", dt.lanes(self.a.dtype))

    def __bool__(self) -> bool:
        if self.op == "eq":
            return structural_equal(self.a, self.b)
        if self.op == "ne":
            return not structural_equal(self.a, self.b)
        return ExprOps.__bool__(self)


@node
class Not(Expr):
    a: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@node
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@node
class Cast(Expr):
    dtype: str
    a: Expr


@node
class Call(Expr):
    name: str
    args: tuple
    dtype: str


@node
class TensorRead(Expr):
    tensor: Any  # ir.tensor.Tensor
    indices: tuple

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.tensor.dtype


@node
class Reduce(Expr):
    combiner: str  # "sum" | "max" | "min"
    source: Expr
    axes: tuple  # IterVars
    cond: Expr | None = None

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.source.dtype


@node
class Load(Expr):
    buffer: Any  # ir.stmt.Buffer
    indices: tuple
    dtype: str
    pred: Expr | None = None  # vector mask; lanes outside it are not read


@node
class Ramp(Expr):
    base: Expr
    stride: Expr
    lanes: int

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return dt.with_lanes(self.base.dtype, self.lanes)


@node
class Broadcast(Expr):
    value: Expr
    lanes: int

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return dt.with_lanes(self.value.dtype, self.lanes)


# ---------------------------------------------------------------- construction helpers

def const(value: Any, dtype: str) -> Const:
    if dt.is_bool(dtype):
        return Const(bool(value), dtype)
    if dt.is_int(dtype):
        if isinstance(value, float) and value != int(value):
            raise DSLError(f"the float {value} cannot be an {dtype} constant")
        return Const(int(value), dtype)
    return Const(float(value), dtype)


def as_expr(x: Any, like: str | None = None) -> Expr:
    """Convert a Python value, IterVar or Expr to an Expr (Python numbers adopt ``like``)."""
    if isinstance(x, Expr):
        return x
    if hasattr(x, "var") and isinstance(x.var, Var):  # IterVar
        return x.var
    if isinstance(x, bool):
        return const(x, like or "bool")
    if isinstance(x, int):
        return const(x, like if like and not dt.is_bool(like) else dt.INDEX)
    if isinstance(x, float):
        if like and dt.is_float(like):
            return const(x, like)
        if like and not dt.is_float(like):
            raise DSLError(f"the float {x} meets an {like} expression; cast one side first")
        return const(x, "float32")
    type_name = getattr(type(x), "__name__", str(type(x)))
    if type_name == "Tensor":
        raise DSLError(f"tensor {x.name} used as a value: index it, e.g. {x.name}[i, j]")
    if hasattr(x, "dtype") and hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy scalar
        return const(x.item(), dt.check(x.dtype))
    raise DSLError(f"cannot use {x!r} of type {type_name} in an expression")


def _unify(a: Any, b: Any, what: str) -> tuple[Expr, Expr]:
    a_is, b_is = isinstance(a, (Expr, ExprOps)), isinstance(b, (Expr, ExprOps))
    if a_is and not b_is:
        ea = as_expr(a)
        return ea, as_expr(b, dt.element(ea.dtype))
    if b_is and not a_is:
        eb = as_expr(b)
        return as_expr(a, dt.element(eb.dtype)), eb
    ea, eb = as_expr(a), as_expr(b)
    if dt.element(ea.dtype) != dt.element(eb.dtype):
        raise DSLError(f"{what} mixes dtypes {ea.dtype} and {eb.dtype} in ({ea!r}, {eb!r}); "
                       f"cast one side with .astype(...)")
    la, lb = dt.lanes(ea.dtype), dt.lanes(eb.dtype)
    if la != lb:
        if la == 1:
            ea = Broadcast(ea, lb)
        elif lb == 1:
            eb = Broadcast(eb, la)
        else:
            raise DSLError(f"{what} mixes vectors of {la} and {lb} lanes")
    return ea, eb


_OP_NAMES = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//",
             "floormod": "%", "min": "min", "max": "max"}


def binary(op: str, a: Any, b: Any) -> Expr:
    ea, eb = _unify(a, b, f"'{_OP_NAMES.get(op, op)}'")
    if dt.is_bool(ea.dtype) and op not in ("and", "or", "min", "max"):
        raise DSLError(f"arithmetic '{_OP_NAMES.get(op, op)}' on bool values; cast them first")
    if op == "div" and not dt.is_float(ea.dtype):
        raise DSLError(f"'/' on integers ({ea.dtype}); use // (floor division) or cast to float")
    if op in ("floordiv", "floormod") and dt.is_float(ea.dtype):
        raise DSLError(f"'{_OP_NAMES[op]}' on {ea.dtype}; it is for integers only")
    return Binary(op, ea, eb)


def compare(op: str, a: Any, b: Any) -> Expr:
    ea, eb = _unify(a, b, f"comparison '{op}'")
    return Compare(op, ea, eb)


def logical(op: str, a: Any, b: Any) -> Expr:
    ea, eb = as_expr(a, "bool"), as_expr(b, "bool")
    for e in (ea, eb):
        if not dt.is_bool(e.dtype):
            raise DSLError(f"'{'&' if op == 'and' else '|'}' needs bool operands, got {e.dtype}"
                           f" ({e!r}); compare first, e.g. (x > 0)")
    return Binary(op, *_unify(ea, eb, op))


def cast(dtype: str, a: Expr) -> Expr:
    if a.dtype == dtype:
        return a
    return Cast(dt.with_lanes(dtype, dt.lanes(a.dtype)), a)


def select(cond: Any, a: Any, b: Any) -> Expr:
    c = as_expr(cond, "bool")
    if not dt.is_bool(c.dtype):
        raise DSLError(f"if_then_else condition must be bool, got {c.dtype} ({c!r})")
    ea, eb = _unify(a, b, "if_then_else")
    return Select(c, ea, eb)


def min_(a: Any, b: Any) -> Expr:
    return binary("min", a, b)


def max_(a: Any, b: Any) -> Expr:
    return binary("max", a, b)


def const_value(e: Expr) -> Any:
    """The Python value of a Const (or of a Broadcast of one); None otherwise."""
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Broadcast) and isinstance(e.value, Const):
        return e.value.value
    return None
