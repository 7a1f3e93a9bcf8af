"""Lower ``spatial_for`` blocks for a SIMD CPU: innermost loop vectorized, the rest unrolled.

Before: ``for c in spatial(4): for k in spatial(16): acc[k] += x[c] * w[c, k]``
After:  ``for c in unrolled(4): for k in vectorized(16): ...`` (unroll-and-jam of lanes)
"""
from __future__ import annotations

from tiletune.ir.functor import Rewriter, collect
from tiletune.ir.stmt import For, PrimFunc, Stmt


class _Spatial(Rewriter):
    def visit_For(self, s: For) -> Stmt:
        body = self.visit(s.body)
        if s.kind != "spatial":
            return s if body is s.body else For(s.var, s.lo, s.extent, s.kind, body)
        inner = collect(s.body, lambda n: isinstance(n, For) and n.kind in ("spatial",
                                                                             "vectorized"))
        kind = "unrolled" if inner else "vectorized"
        return For(s.var, s.lo, s.extent, kind, body)


def lower_spatial(func: PrimFunc) -> PrimFunc:
    body = _Spatial().visit(func.body)
    return func if body is func.body else func.with_body(body)
