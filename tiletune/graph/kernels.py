"""Kernels of the graph's non-convolution operators, as tensor expressions with a schedule.

Each ``lower_<op>(g, node)`` returns a :class:`KernelSpec`: a dedupe key, a function making
``(schedule, tensors)`` (the output tensor last) and where each other argument comes from (an
activation of the graph, in its planned layout, or a constant prepared here at compile time).
Activations are read and written in their *physical* layout: plain, or NCHW[b]c
(``[N, C/b, H, W, b]``); element-wise ops, pooling and padding work in either, the rest in
plain layout (the layout pass guarantees it). Simple schedules: outer loops fused and
parallel when the tensor is large, the innermost axis vectorized when it fills vectors.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tiletune as tt
from tiletune.errors import GraphError
from tiletune.graph.ir import Graph, TensorType
from tiletune.schedules.machine import host_machine

#: Elements below which a simple kernel runs serially (a parallel region costs more).
PARALLEL_MIN = 1 << 14


@dataclass
class KernelSpec:
    """How to compile one node and what to pass it (output last, not listed in ``args``)."""

    key: str
    make: Callable[[], tuple[Any, list[Any]]] | None  # None when ``module`` builds it
    args: list[tuple[str, Any]] = field(default_factory=list)  # ("act", node) | ("const", arr)
    flop: int = 0
    task: tuple[str, tuple] | None = None  # (template, args) when the kernel is tunable
    module: Callable[[str], Any] | None = None  # builds a loop-IR kernel (name) directly


def to_physical(arr: np.ndarray, t: TensorType) -> np.ndarray:
    """A logical array in layout ``t.layout`` (plain or NCHW[b]c)."""
    b = t.block
    if not b:
        return np.ascontiguousarray(arr)
    n, c, h, w = arr.shape
    return np.ascontiguousarray(arr.reshape(n, c // b, b, h, w).transpose(0, 1, 3, 4, 2))


def from_physical(arr: np.ndarray, t: TensorType) -> np.ndarray:
    """Inverse of :func:`to_physical`."""
    if not t.block:
        return arr.reshape(t.shape)
    n, cc, h, w, b = arr.shape
    return arr.transpose(0, 1, 4, 2, 3).reshape(n, cc * b, h, w)


def const_operand(arr: np.ndarray, out: TensorType) -> np.ndarray:
    """A constant broadcast operand laid out like ``out`` (size-1 dims kept for broadcasting).

    Plain: left-padded to the output's rank. Blocked: ``(1, C, 1, 1)`` becomes
    ``(1, C/b, 1, 1, b)``; a dimension of 1 stays 1 (``(1, 1, 1, 1, 1)`` for a scalar).
    """
    arr = np.asarray(arr, dtype=out.dtype)
    arr = arr.reshape((1,) * (len(out.shape) - arr.ndim) + arr.shape)
    b = out.block
    if not b:
        return np.ascontiguousarray(arr)
    n, c, h, w = arr.shape
    if c == 1:
        return np.ascontiguousarray(arr.reshape(n, 1, h, w, 1))
    return np.ascontiguousarray(arr.reshape(n, c // b, b, h, w).transpose(0, 1, 3, 4, 2))


def broadcast_read(t: tt.Tensor, idx: tuple) -> Any:
    """``t`` at output index ``idx`` with NumPy broadcasting (size-1 dims read index 0)."""
    off = len(idx) - len(t.shape)
    return t[tuple(0 if t.shape[d] == 1 else idx[d + off] for d in range(len(t.shape)))]


def simple_schedule(s: Any, t: tt.Tensor, vector_axis: int = -1) -> None:
    """Fuse the leading axes and run them in parallel (large tensors); vectorize the last
    axis by the SIMD width when it divides it."""
    lanes = host_machine().vector_lanes
    axes = list(s[t].axis)
    size = int(np.prod(t.shape))
    inner = axes[-1]
    if t.shape[-1] % lanes == 0:
        _, vi = s[t].split(inner, factor=lanes)
        s[t].vectorize(vi)
    elif t.shape[-1] in (4, 8, 16) and t.shape[-1] <= lanes:
        s[t].vectorize(inner)
    if len(axes) >= 3 and size >= PARALLEL_MIN:
        s[t].parallel(s[t].fuse(*axes[:2]))
    elif len(axes) >= 2 and size >= PARALLEL_MIN:
        s[t].parallel(axes[0])


def _ph(t: TensorType) -> tuple[int, ...]:
    return t.physical_shape


def _key(g: Graph, node: str, extra: Any = "") -> str:
    d = g.node(node)
    ins = ";".join(f"{g.type(i)}" for i in d["inputs"] if g.op(i) != "constant")
    return f"{d['op']}|{sorted(d['attrs'].items())}|{ins}|{d['type']}|{extra}"


# ---------------------------------------------------------------------------- element-wise
def lower_elementwise(g: Graph, node: str) -> KernelSpec:
    d = g.node(node)
    out_t = g.type(node)
    op = d["op"]
    args: list[tuple[str, Any]] = []
    shapes: list[tuple[int, ...]] = []
    const_sig = []
    for i in d["inputs"]:
        v = g.value(i)
        if v is not None:
            arr = const_operand(v, out_t)
            args.append(("const", arr))
            shapes.append(arr.shape)
            const_sig.append(arr.shape)
        else:
            args.append(("act", i))
            shapes.append(_ph(g.type(i)))
    attrs = d["attrs"]

    def make():
        ins = [tt.placeholder(sh, out_t.dtype, name=f"in{k}") for k, sh in enumerate(shapes)]
        zero = tt.const(0, out_t.dtype)

        def body(*idx):
            vals = [broadcast_read(x, idx) for x in ins]
            if op == "relu":
                return tt.max(vals[0], zero)
            if op == "clip":
                lo, hi = attrs["min"], attrs["max"]
                v = vals[0]
                if np.isfinite(lo):
                    v = tt.max(v, tt.const(lo, out_t.dtype))
                if np.isfinite(hi):
                    v = tt.min(v, tt.const(hi, out_t.dtype))
                return v
            return vals[0] + vals[1] if op == "add" else vals[0] * vals[1]

        out = tt.compute(_ph(out_t), body, name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, ins + [out]

    return KernelSpec(_key(g, node, const_sig), make, args)


# ---------------------------------------------------------------------------- pooling
def _spatial(t: TensorType, idx: tuple) -> tuple[Any, Any]:
    return (idx[2], idx[3])


def _at(x: tt.Tensor, blocked: bool, idx: tuple, h: Any, w: Any) -> Any:
    return x[idx[0], idx[1], h, w, idx[4]] if blocked else x[idx[0], idx[1], h, w]


def avg_pool_divisor(in_t: TensorType, out_t: TensorType, attrs: dict) -> np.ndarray:
    """1 / (the number of elements each average-pool window counts), per output position."""
    from tiletune.graph.reference import pool_counts
    return (1.0 / pool_counts(attrs, *in_t.shape[2:], *out_t.shape[2:])).astype(out_t.dtype)


def lower_pool(g: Graph, node: str) -> KernelSpec:
    d = g.node(node)
    (x_name,) = d["inputs"]
    in_t, out_t = g.type(x_name), g.type(node)
    a = d["attrs"]
    (kh, kw), (sh, sw) = a["kernel"], a["strides"]
    dh, dw = a.get("dilations", (1, 1))
    pt, pl = a["pads"][0], a["pads"][1]
    H, W = in_t.shape[2:]
    blocked = bool(out_t.block)
    is_max = d["op"] == "max_pool"
    args: list[tuple[str, Any]] = [("act", x_name)]
    if not is_max:
        args.append(("const", avg_pool_divisor(in_t, out_t, a)))

    def make():
        x = tt.placeholder(_ph(in_t), in_t.dtype, name="x")
        rh, rw = tt.reduce_axis(kh, "rh"), tt.reduce_axis(kw, "rw")
        fill = tt.min_value(in_t.dtype) if is_max else tt.const(0, in_t.dtype)

        def window(*idx):
            oh, ow = _spatial(out_t, idx)
            h, w = oh * sh + rh * dh - pt, ow * sw + rw * dw - pl
            inside = tt.all(h >= 0, h < H, w >= 0, w < W)
            v = tt.if_then_else(inside, _at(x, blocked, idx, tt.max(tt.min(h, H - 1), 0),
                                            tt.max(tt.min(w, W - 1), 0)), fill)
            return tt.max(v, axis=[rh, rw]) if is_max else tt.sum(v, axis=[rh, rw])

        acc = tt.compute(_ph(out_t), window, name="window")
        if is_max:
            s = tt.create_schedule(acc)
            simple_schedule(s, acc)
            return s, [x, acc]
        inv = tt.placeholder(args[1][1].shape, out_t.dtype, name="inv_count")
        out = tt.compute(_ph(out_t), lambda *idx: acc[idx] * inv[idx[2], idx[3]], name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, inv, out]

    return KernelSpec(_key(g, node), make, args)


def lower_global_avg_pool(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, out_t = g.type(x_name), g.type(node)
    H, W = in_t.shape[2:]
    blocked = bool(out_t.block)

    def make():
        x = tt.placeholder(_ph(in_t), in_t.dtype, name="x")
        rh, rw = tt.reduce_axis(H, "rh"), tt.reduce_axis(W, "rw")
        total = tt.compute(_ph(out_t), lambda *idx: tt.sum(
            _at(x, blocked, idx, rh, rw), axis=[rh, rw]), name="total")
        out = tt.compute(_ph(out_t), lambda *idx: total[idx] * tt.const(1.0 / (H * W),
                                                                          out_t.dtype),
                         name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(_key(g, node), make, [("act", x_name)])


def lower_pad(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, out_t = g.type(x_name), g.type(node)
    pt, pl = g.node(node)["attrs"]["pads"][:2]
    H, W = in_t.shape[2:]
    blocked = bool(out_t.block)

    def make():
        x = tt.placeholder(_ph(in_t), in_t.dtype, name="x")

        def body(*idx):
            h, w = idx[2] - pt, idx[3] - pl
            return tt.if_then_else(tt.all(h >= 0, h < H, w >= 0, w < W), _at(
                x, blocked, idx, tt.max(tt.min(h, H - 1), 0), tt.max(tt.min(w, W - 1), 0)),
                tt.const(0, in_t.dtype))

        out = tt.compute(_ph(out_t), body, name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(_key(g, node), make, [("act", x_name)])


# ---------------------------------------------------------------------------- layouts
def lower_layout_transform(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, out_t = g.type(x_name), g.type(node)
    bi, bo = in_t.block, out_t.block

    def make():
        x = tt.placeholder(_ph(in_t), in_t.dtype, name="x")

        def read(n, c, h, w):
            return x[n, c // bi, h, w, c % bi] if bi else x[n, c, h, w]

        if bo:
            out = tt.compute(_ph(out_t), lambda n, cc, h, w, cb: read(n, cc * bo + cb, h, w),
                             name="out")
        else:
            out = tt.compute(_ph(out_t), lambda n, c, h, w: read(n, c, h, w), name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(_key(g, node), make, [("act", x_name)])


# ---------------------------------------------------------------------------- plain-layout ops
def lower_matmul(g: Graph, node: str) -> KernelSpec:
    a_name, b_name = g.node(node)["inputs"]
    (M, K), (_, N) = g.type(a_name).shape, g.type(b_name).shape
    dtype = g.type(node).dtype
    args = [("const", g.value(n)) if g.value(n) is not None else ("act", n)
            for n in (a_name, b_name)]

    def make():
        A = tt.placeholder((M, K), dtype, name="A")
        B = tt.placeholder((K, N), dtype, name="B")
        k = tt.reduce_axis(K, "k")
        C = tt.compute((M, N), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
        s = tt.create_schedule(C)
        return s, [A, B, C]

    return KernelSpec(_key(g, node), make, args, flop=2 * M * N * K)


def lower_concat(g: Graph, node: str) -> KernelSpec:
    d = g.node(node)
    out_t = g.type(node)
    rank = len(out_t.shape)
    axis = d["attrs"]["axis"] % rank
    types = [g.type(i) for i in d["inputs"]]
    args = [("const", g.value(i)) if g.value(i) is not None else ("act", i) for i in d["inputs"]]

    def make():
        xs = [tt.placeholder(t.shape, t.dtype, name=f"x{k}") for k, t in enumerate(types)]

        def body(*idx):
            offsets = np.cumsum([0] + [t.shape[axis] for t in types])
            value = None
            for k in range(len(xs)):  # the last part whose start is <= idx wins
                lo, size = int(offsets[k]), types[k].shape[axis]
                pos = tt.max(tt.min(idx[axis] - lo, size - 1), 0)
                read = xs[k][tuple(pos if a == axis else i for a, i in enumerate(idx))]
                value = read if value is None else tt.if_then_else(idx[axis] >= lo, read, value)
            return value

        out = tt.compute(out_t.shape, body, name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, xs + [out]

    return KernelSpec(_key(g, node), make, args)


def lower_softmax(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    t = g.type(node)
    rank = len(t.shape)
    axis = g.node(node)["attrs"].get("axis", -1) % rank
    red_shape = tuple(1 if a == axis else n for a, n in enumerate(t.shape))

    def make():
        x = tt.placeholder(t.shape, t.dtype, name="x")

        def along(idx, r):
            return tuple(r if a == axis else i for a, i in enumerate(idx))

        r1 = tt.reduce_axis(t.shape[axis], "r1")
        mx = tt.compute(red_shape, lambda *idx: tt.max(x[along(idx, r1)], axis=r1), name="mx")
        ex = tt.compute(t.shape, lambda *idx: tt.exp(x[idx] - mx[along(idx, 0)]), name="ex")
        r2 = tt.reduce_axis(t.shape[axis], "r2")
        sm = tt.compute(red_shape, lambda *idx: tt.sum(ex[along(idx, r2)], axis=r2), name="sm")
        out = tt.compute(t.shape, lambda *idx: ex[idx] / sm[along(idx, 0)], name="out")
        s = tt.create_schedule(out)
        return s, [x, out]

    return KernelSpec(_key(g, node), make, [("act", x_name)])


def lower_transpose(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, t = g.type(x_name), g.type(node)
    perm = tuple(g.node(node)["attrs"].get("perm") or reversed(range(len(in_t.shape))))
    inv = [perm.index(a) for a in range(len(perm))]
    arg = ("const", g.value(x_name)) if g.value(x_name) is not None else ("act", x_name)

    def make():
        x = tt.placeholder(in_t.shape, in_t.dtype, name="x")
        out = tt.compute(t.shape, lambda *idx: x[tuple(idx[inv[a]] for a in range(len(perm)))],
                         name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(_key(g, node), make, [arg])


def lower_copy(g: Graph, node: str) -> KernelSpec:
    """A view op whose input cannot be aliased (e.g. it is a constant or a graph input that
    is also an output): a flat copy."""
    (x_name,) = g.node(node)["inputs"]
    t = g.type(node)
    arg = ("const", g.value(x_name)) if g.value(x_name) is not None else ("act", x_name)

    def make():
        x = tt.placeholder(t.shape, t.dtype, name="x")
        out = tt.compute(t.shape, lambda *idx: x[idx], name="out")
        return tt.create_schedule(out), [x, out]

    if arg[0] == "const":
        arg = ("const", np.ascontiguousarray(arg[1].reshape(t.shape)))
    return KernelSpec(_key(g, node), make, [arg])


LOWERINGS: dict[str, Callable[[Graph, str], KernelSpec]] = {
    "relu": lower_elementwise, "clip": lower_elementwise, "add": lower_elementwise,
    "mul": lower_elementwise, "max_pool": lower_pool, "avg_pool": lower_pool,
    "global_avg_pool": lower_global_avg_pool, "pad": lower_pad,
    "layout_transform": lower_layout_transform, "matmul": lower_matmul,
    "concat": lower_concat, "softmax": lower_softmax, "transpose": lower_transpose,
    "flatten": lower_copy, "reshape": lower_copy, "identity": lower_copy,
}


def lower_node(g: Graph, node: str) -> KernelSpec:
    """The kernel of one operator node (conv2d and dense go through ``lower_conv``)."""
    op = g.op(node)
    if op in ("conv2d", "dense"):
        from tiletune.graph.lower_conv import lower_conv2d, lower_dense
        return lower_conv2d(g, node) if op == "conv2d" else lower_dense(g, node)
    fn = LOWERINGS.get(op)
    if fn is None:
        raise GraphError(f"node {node!r}: no kernel for operator {op!r} (graph passes should "
                         "have removed it)")
    return fn(g, node)
