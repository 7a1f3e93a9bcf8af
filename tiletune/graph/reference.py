"""NumPy semantics of every graph operator, on logical (plain-layout) arrays.

Used by constant folding and as the reference a compiled graph is checked against::

    outputs = reference.run(g, {"input": x})          # float64 internally, cast back
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tiletune.errors import GraphError
from tiletune.graph.ir import Graph


def _conv2d(x, w, attrs) -> np.ndarray:
    (sh, sw), (dh, dw), groups = attrs["strides"], attrs["dilations"], attrs.get("groups", 1)
    pt, pl, pb, pr = attrs["pads"]
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - (r - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (s - 1) * dw - 1) // sw + 1
    out = np.zeros((n, k, oh, ow), dtype=np.result_type(x, w))
    kg = k // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * kg:(g + 1) * kg]
        for i in range(r):
            for j in range(s):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, ws[:, :, i, j])
    return out


def epilogue(y: np.ndarray, steps, extra: list[np.ndarray], channel_axis: int) -> np.ndarray:
    """Apply epilogue steps to ``y``; ``extra`` holds [bias], [residual] (in that order)."""
    kinds = [s[0] for s in steps]
    it = iter(extra)
    operand = {k: next(it) for k in ("bias", "residual") if k in kinds}
    for step in steps:
        if step[0] == "bias":
            shape = [1] * y.ndim
            shape[channel_axis] = -1
            y = y + operand["bias"].reshape(shape)
        elif step[0] == "residual":
            y = y + operand["residual"]
        elif step[0] == "relu":
            y = np.maximum(y, 0)
        else:
            y = np.clip(y, step[1], step[2])
    return y


def _pool(x, attrs, kind: str) -> np.ndarray:
    """Max/average pooling; ceil-mode windows may overhang the end padding (ignored)."""
    from tiletune.graph.ops import conv_out
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    pt, pl, pb, pr = attrs["pads"]
    ceil = bool(attrs.get("ceil_mode", 0))
    n, c, h, w = x.shape
    oh, ow = conv_out(h, kh, sh, pt, pb, dh, ceil), conv_out(w, kw, sw, pl, pr, dw, ceil)
    full_h = max(h + pt + pb, (oh - 1) * sh + (kh - 1) * dh + 1)
    full_w = max(w + pl + pr, (ow - 1) * sw + (kw - 1) * dw + 1)
    fill = -np.inf if kind == "max" else 0.0
    pads = ((pt, full_h - h - pt), (pl, full_w - w - pl))
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=fill)
    acc = np.full((n, c, oh, ow), fill)
    for i in range(kh):
        for j in range(kw):
            hs = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            ws = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            acc = np.maximum(acc, xp[:, :, hs, ws]) if kind == "max" else acc + xp[:, :, hs, ws]
    return acc if kind == "max" else acc / pool_counts(attrs, h, w, oh, ow)


def pool_counts(attrs, h: int, w: int, oh: int, ow: int) -> np.ndarray:
    """How many elements each average-pool window counts: the data it covers, plus the
    declared padding with ``count_include_pad`` (never a ceil-mode overhang)."""
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    pt, pl, pb, pr = attrs["pads"]
    lo_h, hi_h, lo_w, hi_w = (-pt, h + pb, -pl, w + pr) if attrs.get("count_include_pad", 0) \
        else (0, h, 0, w)
    rows = np.array([sum(lo_h <= i * sh - pt + r * dh < hi_h for r in range(kh))
                     for i in range(oh)])
    cols = np.array([sum(lo_w <= j * sw - pl + q * dw < hi_w for q in range(kw))
                     for j in range(ow)])
    return np.maximum(np.outer(rows, cols), 1).astype(np.float64)


def _softmax(x, axis) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def evaluate(op: str, args: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    """One operator on logical arrays."""
    from tiletune.graph.ops import reshape_target
    if op == "conv2d":
        y = _conv2d(args[0], args[1], attrs)
        return epilogue(y, attrs.get("epilogue", ()), args[2:], 1)
    if op == "dense":
        return epilogue(args[0] @ args[1].T, attrs.get("epilogue", ()), args[2:], 1)
    if op == "matmul":
        return args[0] @ args[1]
    if op == "relu":
        return np.maximum(args[0], 0)
    if op == "clip":
        return np.clip(args[0], attrs["min"], attrs["max"])
    if op == "add":
        return args[0] + args[1]
    if op == "mul":
        return args[0] * args[1]
    if op == "batch_norm":
        x, scale, bias, mean, var = args
        shape = (1, -1) + (1,) * (x.ndim - 2)
        inv = scale / np.sqrt(var + attrs.get("epsilon", 1e-5))
        return (x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)
    if op in ("max_pool", "avg_pool"):
        return _pool(args[0], attrs, op[:3])
    if op == "global_avg_pool":
        return args[0].mean(axis=(2, 3), keepdims=True)
    if op == "pad":
        pt, pl, pb, pr = attrs["pads"]
        return np.pad(args[0], ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    if op == "flatten":
        axis = attrs.get("axis", 1)
        axis = axis + args[0].ndim if axis < 0 else axis
        return args[0].reshape(int(np.prod(args[0].shape[:axis])), -1)
    if op == "reshape":
        return args[0].reshape(reshape_target("reshape", args[0].shape, tuple(attrs["shape"]),
                                              bool(attrs.get("allowzero", 0))))
    if op == "concat":
        return np.concatenate(args, axis=attrs["axis"])
    if op == "softmax":
        return _softmax(args[0], attrs.get("axis", -1))
    if op == "transpose":
        return np.transpose(args[0], attrs.get("perm") or None)
    if op in ("identity", "layout_transform"):
        return args[0]
    raise GraphError(f"no NumPy semantics for operator {op!r}")


def run(g: Graph, inputs: Mapping[str, np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Evaluate the graph in float64 on logical arrays; returns the outputs (input dtype)."""
    if isinstance(inputs, np.ndarray):
        inputs = {g.inputs[0]: inputs}
    values: dict[str, np.ndarray] = {}
    for n in g.topo():
        d = g.node(n)
        if d["op"] == "input":
            if n not in inputs:
                raise GraphError(f"no value for graph input {n!r}")
            values[n] = np.asarray(inputs[n], dtype=np.float64)
        elif d["op"] == "constant":
            values[n] = d["value"].astype(np.float64) if d["value"].dtype.kind == "f" \
                else d["value"]
        else:
            values[n] = evaluate(d["op"], [values[i] for i in d["inputs"]], d["attrs"])
    return [values[o].astype(g.type(o).dtype) for o in g.outputs]
