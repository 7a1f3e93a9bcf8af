"""Numeric evaluation of index expressions over loop grids, and affine (stride) analysis.

The VTA code generator runs the host loops of a loop nest concretely (as VTA's runtime does on
the CPU) and evaluates the index expressions of each innermost nest over the whole grid of its
loops at once, with NumPy broadcasting::

    compile = ExprCompiler()            # one per code generator, cached per node
    f = compile(e)                      # env (var uid -> int or array) -> value
    grid = Grid(loops)                  # loops: [(Var, extent), ...], outermost first
    idx = f({**env, **grid.axes})       # broadcasts over the grid (env: host var values)

``strides(arrays)`` then tells, for each grid axis, whether every array moves by a constant
step along it (the axis can become a hardware loop) and by how much.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tiletune.errors import LoweringError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Cast, Compare, Const, Expr, Not, Select, Var

Env = dict[int, Any]  # Var uid -> int or array
Fn = Callable[[Env], Any]

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "floordiv": operator.floordiv, "floormod": operator.mod,
    "min": np.minimum, "max": np.maximum, "and": np.logical_and, "or": np.logical_or,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "eq": np.equal, "ne": np.not_equal,
}
class ExprCompiler:
    """Compiles expressions to closures over an environment, cached by node identity.

    One per code generator (the cache lives as long as the nodes it was built from).
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Expr, Fn]] = {}

    def __call__(self, e: Expr) -> Fn:
        """A closure computing ``e`` from an environment."""
        hit = self._cache.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        fn = self._compile(e)
        self._cache[id(e)] = (e, fn)
        return fn

    def _compile(self, e: Expr) -> Fn:
        if isinstance(e, Const):
            value = e.value
            return lambda env: value
        if isinstance(e, Var):
            uid, name = e.uid, e.name

            def var(env: Env) -> Any:
                try:
                    return env[uid]
                except KeyError:
                    raise LoweringError(f"index variable {name} is not bound by an "
                                        "enclosing loop") from None
            return var
        if isinstance(e, Binary) and e.op in _BINARY:
            f, a, b = _BINARY[e.op], self(e.a), self(e.b)
            return lambda env: f(a(env), b(env))
        if isinstance(e, Compare):
            f, a, b = _COMPARE[e.op], self(e.a), self(e.b)
            return lambda env: f(a(env), b(env))
        if isinstance(e, Not):
            a = self(e.a)
            return lambda env: np.logical_not(a(env))
        if isinstance(e, Select):
            c, a, b = self(e.cond), self(e.a), self(e.b)
            return lambda env: np.where(c(env), a(env), b(env))
        if isinstance(e, Cast) and (dt.is_int(e.dtype) or dt.is_bool(e.dtype)):
            a = self(e.a)
            if dt.is_bool(e.dtype):
                return lambda env: np.not_equal(a(env), 0)
            return a
        raise LoweringError(f"cannot evaluate {e!r} as an index or condition on the host")


class Grid:
    """The iteration grid of some loops: each loop var becomes a broadcastable arange."""

    def __init__(self, loops: Sequence[tuple[Var, int]]) -> None:
        self.loops = list(loops)
        self.shape = tuple(int(n) for _, n in self.loops)
        n = len(self.shape)
        self.axes: Env = {}
        for k, (v, ext) in enumerate(self.loops):
            shape = [1] * n
            shape[k] = ext
            self.axes[v.uid] = np.arange(ext, dtype=np.int64).reshape(shape)


def strides(arrays: Sequence[np.ndarray]) -> list[tuple[int, ...] | None]:
    """Per grid axis: the constant step of every array along it, or None if not constant."""
    out: list[tuple[int, ...] | None] = []
    ndim = arrays[0].ndim if arrays else 0
    for axis in range(ndim):
        if arrays[0].shape[axis] == 1:
            out.append(tuple(0 for _ in arrays))
            continue
        steps = []
        for a in arrays:
            d = np.diff(a, axis=axis)
            first = d.flat[0]
            if not (d == first).all():
                steps = None
                break
            steps.append(int(first))
        out.append(None if steps is None else tuple(steps))
    return out
