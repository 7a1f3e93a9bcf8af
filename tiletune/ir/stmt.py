"""Loop-nest statements and buffers.

    Buffer(name, dtype, shape, scope)      storage; compared by identity
    For(var, lo, extent, kind, body)       kind: serial parallel unrolled vectorized spatial
    Seq(stmts)
    Store(buffer, indices, value, pred)    multi-dim before flatten, one index after
    Allocate(buffer, body)                 storage for an intermediate (global or local scope)
    IfThenElse(cond, then, else_)
    PrimFunc(name, params, body)           a kernel: params are the argument buffers in order
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tiletune.ir.expr import Expr, Var

_uid = itertools.count()

FOR_KINDS = ("serial", "parallel", "unrolled", "vectorized", "spatial")


@dataclass(frozen=True, eq=False)
class Buffer:
    name: str
    dtype: str
    shape: tuple[int, ...]
    scope: str = "global"  # "global" (argument or heap) | "local" (stack, registers)
    uid: int = field(default_factory=lambda: next(_uid))

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {self.dtype}, {self.shape}, {self.scope})"


class Stmt:
    """Base of statements (frozen dataclasses, structural identity via fields)."""

    def __repr__(self) -> str:
        from tiletune.ir.printer import stmt_str
        return stmt_str(self)


node = dataclass(frozen=True, eq=False, repr=False)


@node
class For(Stmt):
    var: Var
    lo: Expr
    extent: Expr
    kind: str
    body: Stmt


@node
class Seq(Stmt):
    stmts: tuple


@node
class Store(Stmt):
    buffer: Buffer
    indices: tuple
    value: Expr
    pred: Expr | None = None


@node
class Allocate(Stmt):
    buffer: Buffer
    body: Stmt


@node
class IfThenElse(Stmt):
    cond: Expr
    then: Stmt
    else_: Stmt | None = None


@dataclass(frozen=True, eq=False)
class PrimFunc:
    name: str
    params: tuple  # Buffers, in argument order
    body: Stmt
    attrs: dict = field(default_factory=dict)

    def with_body(self, body: Stmt) -> PrimFunc:
        return PrimFunc(self.name, self.params, body, self.attrs)

    def __repr__(self) -> str:
        from tiletune.ir.printer import func_str
        return func_str(self)

    def __str__(self) -> str:
        return self.__repr__()


def seq(*stmts: Any) -> Stmt:
    """A Seq of the given statements, flattening nested Seqs and dropping Nones."""
    out: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            out.extend(s.stmts)
        elif isinstance(s, (list, tuple)):
            inner = seq(*s)
            out.extend(inner.stmts if isinstance(inner, Seq) else [inner])
        else:
            out.append(s)
    return out[0] if len(out) == 1 else Seq(tuple(out))
