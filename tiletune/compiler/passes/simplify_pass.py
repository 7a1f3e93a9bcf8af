"""Run the rule-table simplifier over a whole kernel (loop ranges are tracked as it descends).

Before: ``for i in range(4): for j in range(1): if i * 8 + j * 8 < 40: A[i * 8 + j * 8] = 0``
After:  ``for i in range(4): A[i * 8] = 0``
"""
from __future__ import annotations

from tiletune.compiler.simplify import simplify
from tiletune.ir.stmt import PrimFunc


def simplify_func(func: PrimFunc) -> PrimFunc:
    body = simplify(func.body)
    return func if body is func.body else func.with_body(body)
