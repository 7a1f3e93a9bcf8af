"""Flatten multi-dimensional buffer accesses to one row-major element index.

Before: ``C[i, j] = A[i, k] * B[k, j]`` (A: 64x32, B: 32x16)
After:  ``C[i * 16 + j] = A[i * 32 + k] * B[k * 16 + j]``
"""
from __future__ import annotations

from tiletune.compiler.arith import flat_index
from tiletune.ir.expr import Expr, Load
from tiletune.ir.functor import Rewriter
from tiletune.ir.stmt import PrimFunc, Store


class _Flatten(Rewriter):
    def visit_Load(self, e: Load) -> Expr:
        idx = tuple(self.visit(i) for i in e.indices)
        pred = self.visit(e.pred)
        if len(idx) == 1 and all(a is b for a, b in zip(idx, e.indices)) and pred is e.pred:
            return e
        return Load(e.buffer, (flat_index(idx, e.buffer.shape),), e.dtype, pred)

    def visit_Store(self, s: Store) -> Store:
        idx = tuple(self.visit(i) for i in s.indices)
        value, pred = self.visit(s.value), self.visit(s.pred)
        if len(idx) == 1 and value is s.value and pred is s.pred and idx[0] is s.indices[0]:
            return s
        return Store(s.buffer, (flat_index(idx, s.buffer.shape),), value, pred)


def flatten(func: PrimFunc) -> PrimFunc:
    body = _Flatten().visit(func.body)
    return func if body is func.body else func.with_body(body)
