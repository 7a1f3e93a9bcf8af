"""Visitor and rewriter bases for expressions and statements.

``Rewriter`` dispatches on the node's class name (``visit_Binary``, ``visit_For`` ...); the
default rebuilds a node only when a child changed, so an untouched tree comes back as the very
same object and ``new is old`` tells whether a pass did anything.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from tiletune.ir.expr import Expr, Var, field_names
from tiletune.ir.stmt import Stmt

_SCALAR_ANNOTATIONS = frozenset({"str", "int", "bool", "Buffer"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(n: Any) -> tuple[str, ...]:
    """The fields of a node's class that can hold a child node (not the op names, dtypes,
    lane counts and buffers that never do)."""
    cls = type(n)
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = _CHILD_FIELDS[cls] = tuple(
            f.name for f in fields(cls) if str(f.type) not in _SCALAR_ANNOTATIONS)
    return names


def rebuild(n: Any, changes: dict) -> Any:
    """``dataclasses.replace`` for IR nodes (every field is an init field), without its
    per-call field introspection."""
    d = n.__dict__
    return type(n)(*[changes[f] if f in changes else d[f] for f in field_names(n)])


class _Dispatch:
    """Per-class cache of ``visit_<Class>`` lookups (one dict per subclass)."""

    _methods: dict

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._methods = {}

    def _method(self, node_cls: type) -> Callable | None:
        methods = type(self)._methods
        try:
            return methods[node_cls]
        except KeyError:
            m = methods[node_cls] = getattr(type(self), "visit_" + node_cls.__name__, None)
            return m


class Rewriter(_Dispatch):
    """Rewrites expressions and statements bottom-up; override ``visit_<Class>``."""

    def __call__(self, n: Any) -> Any:
        return self.visit(n)

    def visit(self, n: Any) -> Any:
        if n is None:
            return None
        meth = self._method(type(n))
        if meth is not None:
            return meth(self, n)
        return self.generic(n)

    def generic(self, n: Any) -> Any:
        if isinstance(n, tuple):
            changed = False
            new = []
            for x in n:
                y = self.visit(x) if isinstance(x, (Expr, Stmt, tuple)) else x
                changed = changed or y is not x
                new.append(y)
            return tuple(new) if changed else n
        if not isinstance(n, (Expr, Stmt)) or isinstance(n, Var):
            return n
        changes = None
        d = n.__dict__
        for f in child_fields(n):
            v = d[f]
            if isinstance(v, (Expr, Stmt, tuple)):
                nv = self.visit(v)
                if nv is not v:
                    if changes is None:
                        changes = {}
                    changes[f] = nv
        if changes is None:
            return n
        return rebuild(n, changes)


class Visitor(_Dispatch):
    """Walks every node in pre-order; override ``visit_<Class>`` and call ``generic`` to recurse."""

    def __call__(self, n: Any) -> None:
        self.visit(n)

    def visit(self, n: Any) -> None:
        if n is None:
            return
        meth = self._method(type(n))
        if meth is not None:
            meth(self, n)
        else:
            self.generic(n)

    def generic(self, n: Any) -> None:
        if isinstance(n, tuple):
            for x in n:
                if isinstance(x, (Expr, Stmt, tuple)):
                    self.visit(x)
            return
        if not isinstance(n, (Expr, Stmt)):
            return
        d = n.__dict__
        for f in child_fields(n):
            v = d[f]
            if isinstance(v, (Expr, Stmt, tuple)):
                self.visit(v)


def collect(n: Any, pred: Callable[[Any], bool]) -> list:
    """Every node under ``n`` (pre-order) for which ``pred`` holds."""
    out: list = []

    class _C(Visitor):
        def visit(self, x: Any) -> None:
            if x is not None and pred(x):
                out.append(x)
            super().visit(x)

    _C().visit(n)
    return out


_NO_VARS: frozenset = frozenset()


def var_uids(n: Any) -> frozenset:
    """Uids of every Var a rewriter reaches under ``n`` (cached on each node: the IR is
    immutable, so a node's set never changes)."""
    if isinstance(n, Var):
        return frozenset((n.uid,))
    if isinstance(n, tuple):
        out = _NO_VARS
        for x in n:
            sub = var_uids(x)
            if sub:
                out = sub if not out else out | sub
        return out
    if not isinstance(n, (Expr, Stmt)):
        return _NO_VARS
    d = n.__dict__
    out = d.get("_vars")
    if out is not None:
        return out
    out = _NO_VARS
    for f in child_fields(n):
        v = d[f]
        if isinstance(v, (Expr, Stmt, tuple)):
            sub = var_uids(v)
            if sub and sub is not out:
                out = sub if not out else out | sub
    object.__setattr__(n, "_vars", out)
    return out


def uses_var(n: Any, var: Var | set) -> bool:
    """Does ``n`` mention ``var`` (or any Var of a set)?"""
    targets = var if isinstance(var, (set, frozenset)) else {var}
    return not var_uids(n).isdisjoint(v.uid for v in targets)


def free_vars(n: Any) -> set:
    return set(collect(n, lambda x: isinstance(x, Var)))


class Substitute(Rewriter):
    """Replace Vars by expressions: ``Substitute({i: j + 1})(expr)``."""

    def __init__(self, mapping: dict):
        self.mapping = {v.uid: e for v, e in mapping.items()}
        self._keys = frozenset(self.mapping)

    def visit(self, n: Any) -> Any:
        if isinstance(n, (Expr, Stmt)) and self._keys.isdisjoint(var_uids(n)):
            return n  # no variable to replace below: the very same subtree
        return super().visit(n)

    def visit_Var(self, v: Var) -> Expr:
        return self.mapping.get(v.uid, v)


def substitute(n: Any, mapping: dict) -> Any:
    if not mapping:
        return n
    return Substitute(mapping).visit(n)
