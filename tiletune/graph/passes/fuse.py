"""Epilogue fusion: a conv/dense absorbs the element-wise chain that follows it.

Repeatedly, while a conv2d/dense node has exactly one reader and that reader is

* ``add`` of a per-channel constant        -> a ``bias`` step (merged into an existing bias),
* ``mul`` by a per-channel constant         -> folded into the weights (and bias), when the
                                               epilogue is at most a bias,
* ``add`` of another tensor of its shape    -> a ``residual`` step,
* ``relu`` / ``clip``                       -> a ``relu`` / ``clip`` step,

the reader is removed and its users read the conv. Before / after::

    %c = conv2d(%x, %w) epilogue=bias           %c = conv2d(%x, %w, %b, %skip)
    %a = add(%c, %skip)                   ->         epilogue=bias+residual+relu
    %r = relu(%a)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tiletune.graph.ir import Graph

FUSABLE = ("conv2d", "dense")


def fuse_epilogues(g: Graph, ctx: Any = None) -> None:
    if ctx is not None and not getattr(ctx, "fusion", True):
        return
    changed = True
    while changed:
        changed = False
        for p in g.operators():
            if p in g and g.op(p) in FUSABLE and _fuse_one(g, p):
                changed = True


def _per_channel(g: Graph, p: str, value: np.ndarray) -> np.ndarray | None:
    """``value`` as a (K,) vector if it broadcasts along the output channel only."""
    out = g.type(p).shape
    k = out[1]
    if value.ndim > len(out):
        return None
    full = (1,) * (len(out) - value.ndim) + tuple(value.shape)
    if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] not in (1, k):
        return None
    return np.broadcast_to(value.reshape(-1), (k,)).astype(g.type(p).dtype)


def _fuse_one(g: Graph, p: str) -> bool:
    readers = g.consumers(p)
    if len(readers) != 1 or p in g.outputs:
        return False
    c = readers[0]
    d, cd = g.node(p), g.node(c)
    steps = tuple(d["attrs"].get("epilogue", ()))
    kinds = [s[0] for s in steps]
    bias = d["inputs"][2] if "bias" in kinds else None
    residual = d["inputs"][2 + (bias is not None)] if "residual" in kinds else None
    op = cd["op"]
    if op == "relu":
        steps += (("relu",),)
    elif op == "clip":
        lo, hi = cd["attrs"]["min"], cd["attrs"]["max"]
        if lo == 0.0 and hi == np.inf:
            steps += (("relu",),)
        elif np.isfinite(lo) and np.isfinite(hi):
            steps += (("clip", float(lo), float(hi)),)
        else:
            return False
    elif op in ("add", "mul"):
        if cd["inputs"].count(p) != 1:
            return False
        other = cd["inputs"][1 - cd["inputs"].index(p)]
        value = g.value(other)
        vec = _per_channel(g, p, value) if value is not None else None
        if op == "mul":
            if vec is None or steps not in ((), (("bias",),)):
                return False
            w = g.value(d["inputs"][1])
            scale = vec.reshape((-1,) + (1,) * (w.ndim - 1))
            new_w = g.constant(f"{p}_w_scaled", (w * scale).astype(w.dtype))
            d["inputs"][1] = new_w
            if bias is not None:
                bias = g.constant(f"{p}_b_scaled", g.value(bias) * vec)
        elif vec is not None:
            if bias is None:
                steps += (("bias",),)
                bias = g.constant(f"{p}_bias", vec)
            elif steps[-1] == ("bias",):
                bias = g.constant(f"{p}_bias", g.value(bias) + vec)
            else:
                return False
        elif value is None and g.type(other).shape == g.type(p).shape and residual is None:
            steps += (("residual",),)
            residual = other
        else:
            return False
    else:
        return False
    d["attrs"]["epilogue"] = steps
    g.set_inputs(p, d["inputs"][:2] + [t for t in (bias, residual) if t is not None])
    g.replace_uses(c, p)
    g.remove(c)
    return True
