"""Constant folding and identity removal.

Before / after folding::

    %s = constant : int64[2]                 %r = constant : float32[1, 8]   # evaluated once
    %r = reshape(%c) shape=(1, -1)     ->
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tiletune.graph.ir import Graph
from tiletune.graph.reference import evaluate


def fold_constants(g: Graph, ctx: Any = None) -> None:
    """Evaluate (in NumPy) every operator whose operands are all constants."""
    for n in g.operators():
        d = g.node(n)
        if d["inputs"] and all(g.op(i) == "constant" for i in d["inputs"]):
            args = [g.value(i) for i in d["inputs"]]
            value = np.asarray(evaluate(d["op"], args, d["attrs"])).astype(g.type(n).dtype)
            c = g.constant(f"{n}_folded", value)
            g.replace_uses(n, c)
            g.remove(n)


def remove_identity(g: Graph, ctx: Any = None) -> None:
    """Readers of an Identity read its source (kept only when it copies an input to an
    output, which must own its buffer)."""
    for n in g.operators():
        if g.op(n) != "identity":
            continue
        src = g.node(n)["inputs"][0]
        if n in g.outputs and (src in g.inputs or src in g.outputs or g.op(src) == "constant"):
            continue
        g.replace_uses(n, src)
        g.remove(n)
