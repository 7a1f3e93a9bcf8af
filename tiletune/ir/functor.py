"""Visitor and rewriter bases for expressions and statements.

``Rewriter`` dispatches on the node's class name (``visit_Binary``, ``visit_For`` ...); the
default rebuilds a node only when a child changed, so an untouched tree comes back as the very
same object and ``new is old`` tells whether a pass did anything.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tiletune.ir.expr import Expr, Var, field_names
from tiletune.ir.stmt import Stmt


class Rewriter:
    """Rewrites expressions and statements bottom-up; override ``visit_<Class>``."""

    def __call__(self, n: Any) -> Any:
        return self.visit(n)

    def visit(self, n: Any) -> Any:
        if n is None:
            return None
        meth = getattr(self, "visit_" + type(n).__name__, None)
        if meth is not None:
            return meth(n)
        return self.generic(n)

    def generic(self, n: Any) -> Any:
        if isinstance(n, tuple):
            new = tuple(self.visit(x) if isinstance(x, (Expr, Stmt, tuple)) else x for x in n)
            return n if all(a is b for a, b in zip(new, n)) else new
        if not isinstance(n, (Expr, Stmt)) or isinstance(n, Var):
            return n
        changes = {}
        d = n.__dict__
        for f in field_names(n):
            v = d[f]
            if isinstance(v, (Expr, Stmt, tuple)):
                nv = self.visit(v)
                if nv is not v:
                    changes[f] = nv
        if not changes:
            return n
        out = replace(n, **changes)
        return out


class Visitor:
    """Walks every node in pre-order; override ``visit_<Class>`` and call ``generic`` to recurse."""

    def __call__(self, n: Any) -> None:
        self.visit(n)

    def visit(self, n: Any) -> None:
        if n is None:
            return
        meth = getattr(self, "visit_" + type(n).__name__, None)
        if meth is not None:
            meth(n)
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
        for f in field_names(n):
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


def uses_var(n: Any, var: Var | set) -> bool:
    """Does ``n`` mention ``var`` (or any Var of a set)?"""
    targets = var if isinstance(var, (set, frozenset)) else {var}
    uids = {v.uid for v in targets}
    found = False

    class _U(Visitor):
        def visit_Var(self, v: Var) -> None:
            nonlocal found
            if v.uid in uids:
                found = True

        def visit(self, x: Any) -> None:
            if not found:
                super().visit(x)

    _U().visit(n)
    return found


def free_vars(n: Any) -> set:
    return set(collect(n, lambda x: isinstance(x, Var)))


class Substitute(Rewriter):
    """Replace Vars by expressions: ``Substitute({i: j + 1})(expr)``."""

    def __init__(self, mapping: dict):
        self.mapping = {v.uid: e for v, e in mapping.items()}

    def visit_Var(self, v: Var) -> Expr:
        return self.mapping.get(v.uid, v)


def substitute(n: Any, mapping: dict) -> Any:
    if not mapping:
        return n
    return Substitute(mapping).visit(n)
