"""The pass pipeline, in order. ``tt.lower(..., dump=dir)`` writes the IR after each one.

The schedule-level steps (inline -> bounds -> loop nest) run first in ``compiler.lower`` and
produce the loop nest these passes transform.
"""
from __future__ import annotations

from collections.abc import Callable

from tiletune.compiler.passes.flatten import flatten
from tiletune.compiler.passes.guard_loads import guard_select_loads
from tiletune.compiler.passes.simplify_pass import simplify_func
from tiletune.compiler.passes.spatial import lower_spatial
from tiletune.compiler.passes.unroll import unroll
from tiletune.compiler.passes.vectorize import vectorize
from tiletune.ir.stmt import PrimFunc

Pass = Callable[[PrimFunc], PrimFunc]

# Passes that keep the loop nest readable (what tt.lower prints by default).
FRONT: list[tuple[str, Pass]] = [
    ("simplify", simplify_func),
]

# Passes that prepare the nest for a SIMD CPU backend.
CPU: list[tuple[str, Pass]] = [
    ("flatten", flatten),
    ("simplify_flat", simplify_func),
    ("guard_select_loads", guard_select_loads),
    ("lower_spatial", lower_spatial),
    ("unroll", unroll),
    ("vectorize", vectorize),
]


def pipeline(target: str = "llvm") -> list[tuple[str, Pass]]:
    """The full list of passes run before code generation for ``target``."""
    if target == "llvm":
        return FRONT + CPU
    return list(FRONT)
