"""The tensor-expression DSL: placeholders, computes, reduce axes and reducers.

    A = tt.placeholder((M, K), "float32", name="A")
    k = tt.reduce_axis(K, name="k")
    C = tt.compute((M, N), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
"""
from __future__ import annotations

import builtins
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiletune.errors import DSLError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import (
    Call,
    Compare,
    Expr,
    ExprOps,
    Reduce,
    TensorRead,
    Var,
    as_expr,
    binary,
    logical,
    select,
)

_uid = itertools.count()


@dataclass(frozen=True, eq=False)
class IterVar(ExprOps):
    """An axis: a variable with a domain ``[lo, lo + extent)``; kind "data" or "reduce"."""

    var: Var
    lo: int
    extent: int
    kind: str = "data"

    @property
    def name(self) -> str:
        return self.var.name

    @property
    def dtype(self) -> str:
        return self.var.dtype

    def __repr__(self) -> str:
        r = f"{self.lo}, {self.lo + self.extent}" if self.lo else f"{self.extent}"
        return f"{'reduce_axis' if self.kind == 'reduce' else 'axis'}({self.name}, {r})"

    __hash__ = object.__hash__


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int,)) and not hasattr(x, "__index__"):
        raise DSLError(f"{what} must be an int, got {x!r}")
    return int(x)


def _dim(x: Any, what: str) -> int:
    """A shape dimension: an int, or a float with an integral value (TVM code writes
    ``(N / bn, K, bn)``, which is a float in Python 3)."""
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, float):
        raise DSLError(f"{what} must be an int, got {x!r} (not a whole number)")
    return _int(x, what)


def _shape(shape: Any, what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, float)) or hasattr(shape, "__index__"):
        shape = (shape,)
    out = tuple(_dim(s, f"{what} dimension") for s in shape)
    for s in out:
        if s <= 0:
            raise DSLError(f"{what} {out} has a non-positive dimension")
    return out


def reduce_axis(dom: int | tuple[int, int], name: str = "k") -> IterVar:
    """A reduction axis over ``range(dom)`` or ``range(lo, hi)``."""
    lo, hi = (0, dom) if not isinstance(dom, (tuple, list)) else dom
    lo, hi = _int(lo, "reduce_axis start"), _int(hi, "reduce_axis end")
    if hi <= lo:
        raise DSLError(f"reduce_axis {name} has an empty range [{lo}, {hi})")
    return IterVar(Var(name), lo, hi - lo, "reduce")


class Operation:
    """What produces a tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def output(self, i: int = 0) -> Tensor:
        return self._output

    @property
    def input_tensors(self) -> list[Tensor]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class PlaceholderOp(Operation):
    def __init__(self, name: str, shape: tuple[int, ...], dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.axis: tuple[IterVar, ...] = ()
        self.reduce_axis: tuple[IterVar, ...] = ()
        self._output = Tensor(self)


class ComputeOp(Operation):
    def __init__(self, name: str, axis: tuple[IterVar, ...], body: Expr, tag: str = "",
                 attrs: dict | None = None):
        self.name, self.axis, self.body, self.tag = name, axis, body, tag
        self.attrs = dict(attrs or {})
        self.shape = tuple(a.extent for a in axis)
        self.dtype = dt.element(body.dtype)
        self.reduce_axis: tuple[IterVar, ...] = body.axes if isinstance(body, Reduce) else ()
        self._output = Tensor(self)

    @property
    def input_tensors(self) -> list[Tensor]:
        from tiletune.ir.functor import collect
        seen: dict[int, Tensor] = {}
        for r in collect(self.body, lambda e: isinstance(e, TensorRead)):
            seen.setdefault(id(r.tensor), r.tensor)
        return list(seen.values())


@dataclass(frozen=True, eq=False)
class Tensor:
    """The output of an Operation. Index it to read: ``A[i, j]``."""

    op: Operation
    uid: int = field(default_factory=lambda: next(_uid))

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.op.shape

    @property
    def dtype(self) -> str:
        return self.op.dtype

    @property
    def ndim(self) -> int:
        return len(self.op.shape)

    def __getitem__(self, idx: Any) -> TensorRead:
        if not isinstance(idx, tuple):
            idx = (idx,)
        if len(idx) != self.ndim:
            raise DSLError(f"{self.name} has {self.ndim} dimensions {self.shape} but was indexed "
                           f"with {len(idx)} indices")
        exprs = []
        for i in idx:
            if isinstance(i, slice):
                raise DSLError(f"{self.name}[...] takes index expressions, not slices")
            e = as_expr(i, dt.INDEX)
            if not dt.is_int(e.dtype) or dt.lanes(e.dtype) != 1:
                raise DSLError(f"index of {self.name} must be a scalar integer, got {e.dtype} "
                               f"({e!r})")
            if e.dtype != dt.INDEX:
                e = e.astype(dt.INDEX)
            exprs.append(e)
        return TensorRead(self, tuple(exprs))

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {self.shape}, {self.dtype})"

    def __add__(self, o):
        raise DSLError(f"tensor {self.name} used as a value: index it, e.g. {self.name}[i, j]")

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__


def placeholder(shape: Any, dtype: str = "float32", name: str = "placeholder") -> Tensor:
    """An input tensor of the given shape and dtype."""
    return PlaceholderOp(name, _shape(shape, f"placeholder {name} shape"), dt.check(dtype)).output()


def compute(shape: Any, fcompute: Callable[..., Any], name: str = "compute", tag: str = "",
            attrs: dict | None = None) -> Tensor:
    """A tensor whose element at ``(i, j, ...)`` is ``fcompute(i, j, ...)``."""
    shape = _shape(shape, f"compute {name} shape")
    try:
        sig = inspect.signature(fcompute).parameters.values()
        # ``lambda *idx: ...`` takes any rank: the axes get generated names
        variadic = [p for p in sig if p.kind == p.VAR_POSITIONAL]
        params = [] if variadic else [p.name for p in sig]
    except (TypeError, ValueError):
        params = []
    if params and len(params) != len(shape):
        raise DSLError(f"compute {name}: shape {shape} has {len(shape)} dimensions but the "
                       f"function takes {len(params)} arguments")
    names = params if len(params) == len(shape) else [f"i{d}" for d in range(len(shape))]
    axis = tuple(IterVar(Var(n), 0, s, "data") for n, s in zip(names, shape))
    body = as_expr(fcompute(*axis))
    if dt.lanes(body.dtype) != 1:
        raise DSLError(f"compute {name} body must be scalar, got {body.dtype}")
    _check_reduce_position(body, name)
    return ComputeOp(name, axis, body, tag, attrs).output()


def _check_reduce_position(body: Expr, name: str) -> None:
    from tiletune.ir.functor import collect
    reduces = collect(body, lambda e: isinstance(e, Reduce))
    if reduces and not isinstance(body, Reduce):
        raise DSLError(f"compute {name}: a reduction (tt.sum/max/min) must be the whole body, "
                       f"not part of it; compute it as its own stage")
    if isinstance(body, Reduce) and collect(body.source, lambda e: isinstance(e, Reduce)):
        raise DSLError(f"compute {name}: nested reductions; put the inner one in its own stage")


def _is_axes(x: Any) -> bool:
    if isinstance(x, IterVar):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and builtins.all(isinstance(a, IterVar) and
                                                               a.kind == "reduce" for a in x)


def _reducer(combiner: str) -> Callable[..., Expr]:
    def reduce(expr: Any, axis: Any = None, where: Any = None) -> Expr:
        if combiner != "sum" and axis is not None and not _is_axes(axis):
            return binary(combiner, expr, axis)  # elementwise tt.max(a, b) / tt.min(a, b)
        if axis is None:
            raise DSLError(f"tt.{combiner} needs axis= (reduce axes)")
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        if not axes:
            raise DSLError(f"tt.{combiner} needs at least one reduce axis")
        for a in axes:
            if not isinstance(a, IterVar) or a.kind != "reduce":
                raise DSLError(f"tt.{combiner} axis must come from tt.reduce_axis, got {a!r}")
        if len({id(a) for a in axes}) != len(axes):
            raise DSLError(f"tt.{combiner} lists an axis twice")
        cond = None if where is None else as_expr(where, "bool")
        src = as_expr(expr)
        if dt.is_bool(src.dtype):
            raise DSLError(f"tt.{combiner} over bool values; cast them first")
        return Reduce(combiner, src, axes, cond)
    reduce.__name__ = combiner
    reduce.__doc__ = (f"Reduce with {combiner} over one or more reduce axes"
                      + ("." if combiner == "sum" else f"; tt.{combiner}(a, b) is elementwise."))
    return reduce


sum = _reducer("sum")  # noqa: A001
max = _reducer("max")  # noqa: A001
min = _reducer("min")  # noqa: A001


def if_then_else(cond: Any, then_value: Any, else_value: Any) -> Expr:
    """``then_value`` where ``cond`` holds, else ``else_value`` (both must be safe to evaluate)."""
    return select(cond, then_value, else_value)


def _fold_logical(op: str, conds: tuple) -> Expr:
    if not conds:
        raise DSLError(f"tt.{'all' if op == 'and' else 'any'} needs at least one condition")
    out = as_expr(conds[0], "bool")
    for c in conds[1:]:
        out = logical(op, out, c)
    return out


def all(*conds: Any) -> Expr:  # noqa: A001
    """Logical and of one or more bool conditions."""
    return _fold_logical("and", conds)


def any(*conds: Any) -> Expr:  # noqa: A001
    """Logical or of one or more bool conditions."""
    return _fold_logical("or", conds)


def _math(name: str) -> Callable[[Any], Expr]:
    def f(x: Any) -> Expr:
        e = as_expr(x)
        if name != "abs" and not dt.is_float(e.dtype):
            raise DSLError(f"tt.{name} needs a float argument, got {e.dtype}; cast it first")
        return Call(name, (e,), e.dtype)
    f.__name__ = name
    f.__doc__ = f"Element-wise {name}."
    return f


exp, log, sqrt, tanh, abs = (_math(n) for n in ("exp", "log", "sqrt", "tanh", "abs"))  # noqa: A001


def const(value: Any, dtype: str) -> Expr:
    """A literal of an explicit dtype."""
    from tiletune.ir.expr import const as _const
    return _const(value, dt.check(dtype))


def max_value(dtype: str) -> Expr:
    return const(_limit(dtype, True), dtype)


def min_value(dtype: str) -> Expr:
    return const(_limit(dtype, False), dtype)


def _limit(dtype: str, upper: bool) -> Any:
    if dt.is_float(dtype):
        return float("inf") if upper else float("-inf")
    lo, hi = dt.int_range(dtype)
    return hi if upper else lo


__all__ = ["IterVar", "Tensor", "Operation", "PlaceholderOp", "ComputeOp", "placeholder",
           "compute", "reduce_axis", "sum", "max", "min", "if_then_else", "all", "any", "exp",
           "log", "sqrt", "tanh", "abs", "const", "Compare", "binary"]


def indexdiv(a: Any, b: Any) -> Expr:
    """Index division (floor semantics, as ``//``); TVM's ``tvm.tir.indexdiv``."""
    return as_expr(a) // b


def indexmod(a: Any, b: Any) -> Expr:
    """Index remainder (floor semantics, as ``%``); TVM's ``tvm.tir.indexmod``."""
    return as_expr(a) % b


floordiv, floormod = indexdiv, indexmod
