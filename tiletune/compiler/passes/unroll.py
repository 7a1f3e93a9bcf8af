"""Unroll loops marked ``unrolled``: the body is copied once per iteration.

Before: ``for k in unrolled(3): S(k)``
After:  ``S(0); S(1); S(2)``
"""
from __future__ import annotations

from tiletune.compiler.passes.fold_indices import FoldIndices
from tiletune.errors import LoweringError
from tiletune.ir.expr import Const, const
from tiletune.ir.functor import Rewriter, substitute
from tiletune.ir.stmt import For, PrimFunc, Stmt, seq

MAX_UNROLLED_STMTS = 1 << 16


def unroll_loop(loop: For) -> Stmt:
    if not isinstance(loop.extent, Const) or not isinstance(loop.lo, Const):
        raise LoweringError(f"cannot unroll loop {loop.var.name}: its extent {loop.extent!r} is "
                            f"not a constant")
    lo, n = int(loop.lo.value), int(loop.extent.value)
    fold = FoldIndices()
    return seq(*[fold.visit(substitute(loop.body, {loop.var: const(lo + k, loop.var.dtype)}))
                 for k in range(n)])


class _Unroll(Rewriter):
    def visit_For(self, s: For) -> Stmt:
        body = self.visit(s.body)
        loop = s if body is s.body else For(s.var, s.lo, s.extent, s.kind, body)
        if s.kind == "unrolled":
            return unroll_loop(loop)
        return loop


def unroll(func: PrimFunc) -> PrimFunc:
    body = _Unroll().visit(func.body)
    return func if body is func.body else func.with_body(body)
