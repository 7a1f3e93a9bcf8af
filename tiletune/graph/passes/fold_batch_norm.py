"""BatchNorm folding. After a conv whose only reader it is (and whose epilogue is at most a
bias), the normalisation goes into the conv's weights and bias::

    %c = conv2d(%x, %w, %b) epilogue=bias          %c = conv2d(%x, %w', %b') epilogue=bias
    %y = batch_norm(%c, %s, %t, %m, %v)      ->    w' = w * s / sqrt(v + eps)  (per out channel)
                                                   b' = (b - m) * s / sqrt(v + eps) + t

Any other BatchNorm becomes ``mul(x, scale) -> add(shift)`` with per-channel constants (the
fusion pass can still fold those into a preceding conv).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tiletune.graph.ir import Graph


def fold_batch_norm(g: Graph, ctx: Any = None) -> None:
    for n in g.operators():
        if g.op(n) != "batch_norm":
            continue
        d = g.node(n)
        x, *params = d["inputs"]
        values = [g.value(p) for p in params]
        if any(v is None for v in values):
            continue  # non-constant statistics: left as is (the kernel set has no BN op)
        scale, shift, mean, var = (v.astype(np.float64) for v in values)
        inv = scale / np.sqrt(var + d["attrs"].get("epsilon", 1e-5))
        dtype = g.type(n).dtype
        if _foldable_conv(g, x, n):
            c = g.node(x)
            w = g.value(c["inputs"][1]).astype(np.float64)
            b = g.value(c["inputs"][2]).astype(np.float64) if len(c["inputs"]) > 2 \
                else np.zeros(w.shape[0])
            w2 = g.constant(f"{x}_w_bn", (w * inv[:, None, None, None]).astype(dtype))
            b2 = g.constant(f"{x}_b_bn", ((b - mean) * inv + shift).astype(dtype))
            c["attrs"]["epilogue"] = (("bias",),)
            g.set_inputs(x, [c["inputs"][0], w2, b2])
            g.replace_uses(n, x)
            g.remove(n)
            continue
        rank = len(g.type(x).shape)
        shape = (1, -1) + (1,) * (rank - 2)
        s = g.constant(f"{n}_scale", inv.reshape(shape).astype(dtype))
        t = g.constant(f"{n}_shift", (shift - mean * inv).reshape(shape).astype(dtype))
        m = g.add(g.unique_name(f"{n}_mul"), "mul", [x, s])
        a = g.add(g.unique_name(f"{n}_add"), "add", [m, t])
        g.replace_uses(n, a)
        g.remove(n)


def _foldable_conv(g: Graph, x: str, bn: str) -> bool:
    if g.op(x) != "conv2d" or g.consumers(x) != [bn] or x in g.outputs:
        return False
    steps = g.node(x)["attrs"].get("epilogue", ())
    return steps in ((), (("bias",),)) and g.value(g.node(x)["inputs"][1]) is not None
