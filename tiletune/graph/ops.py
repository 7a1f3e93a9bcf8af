"""The graph's operators: their operands, attributes and shape/dtype inference.

Operands are the node's ``inputs`` in order; ``[...]`` ones are optional.

=================  ==================================  ========================================
op                 inputs                              attrs
=================  ==================================  ========================================
input              -                                   shape, dtype
constant           -                                   (the array is the node's ``value``)
conv2d             x, w(OIHW), [bias], [residual]      strides, pads (t, l, b, r), dilations,
                                                       groups, epilogue (steps, see below)
dense              x(M, K), w(N, K), [bias], [resid.]  epilogue               y = x @ w.T
matmul             a(M, K), b(K, N)                    -
relu, clip         x                                   clip: min, max
add, mul           a, b (NumPy broadcasting)           -
batch_norm         x, scale, bias, mean, var           epsilon
max_pool           x                                   kernel, strides, pads, dilations,
avg_pool                                               ceil_mode, (avg) count_include_pad
global_avg_pool    x                                   -
pad                x                                   pads (t, l, b, r) of H and W, zeros
flatten            x                                   axis
reshape            x                                   shape (ONNX semantics: 0 copies, -1)
concat             x1, x2, ...                         axis
softmax            x                                   axis
transpose          x                                   perm
identity           x                                   -
layout_transform   x                                   layout (the output's)
=================  ==================================  ========================================

``epilogue`` is a tuple of steps applied in order to the conv/dense result (the format of
:class:`tiletune.schedules.epilogue.Epilogue`): ``("bias",)`` reads the bias operand,
``("residual",)`` adds the residual operand, ``("relu",)``, ``("clip", lo, hi)``. The extra
operands always come in the order bias, residual (whatever the order of the steps).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tiletune.errors import GraphError
from tiletune.graph.ir import TensorType

if TYPE_CHECKING:
    from tiletune.graph.ir import Graph

ELEMENTWISE = ("relu", "clip", "add", "mul")
POOLS = ("max_pool", "avg_pool")
#: Ops that only reinterpret the bytes of a plain tensor (no kernel: the output aliases).
VIEWS = ("flatten", "reshape", "identity")


def _fail(name: str, op: str, msg: str) -> GraphError:
    return GraphError(f"node {name!r} ({op}): {msg}")


def broadcast_shape(name: str, op: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise _fail(name, op, f"shapes {shapes} do not broadcast") from None


def conv_out(size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """Output length of a window op (ceil mode drops a window starting in the end padding)."""
    span = (k - 1) * dilation + 1
    num = size + pad_lo + pad_hi - span
    out = (math.ceil(num / stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_lo:
        out -= 1
    return out


def reshape_target(name: str, shape: tuple[int, ...], target: tuple[int, ...],
                   allowzero: bool = False) -> tuple[int, ...]:
    """ONNX Reshape: 0 copies the input's dimension (unless allowzero), -1 is inferred."""
    out = [shape[i] if (d == 0 and not allowzero and i < len(shape)) else d
           for i, d in enumerate(target)]
    total = int(np.prod(shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise _fail(name, "reshape", f"more than one -1 in {target}")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise _fail(name, "reshape", f"cannot reshape {shape} to {target}")
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise _fail(name, "reshape", f"cannot reshape {shape} ({total} elements) to {target}")
    return tuple(int(d) for d in out)


def infer_type(g: Graph, name: str, op: str, ins: list[TensorType], attrs: dict[str, Any],
               value: np.ndarray | None) -> TensorType:
    """The output type of a node from its operand types (raises GraphError on a mismatch)."""
    rule = _RULES.get(op)
    if rule is None:
        raise _fail(name, op, f"unknown graph operator; known: {', '.join(sorted(_RULES))}")
    return rule(name, op, ins, attrs, value)


def _input(name, op, ins, attrs, value) -> TensorType:
    return TensorType(tuple(attrs["shape"]), attrs.get("dtype", "float32"))


def _constant(name, op, ins, attrs, value) -> TensorType:
    if value is None:
        raise _fail(name, op, "constant without a value")
    return TensorType(tuple(int(d) for d in value.shape), str(value.dtype))


def _conv2d(name, op, ins, attrs, value) -> TensorType:
    x, w = ins[0], ins[1]
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise _fail(name, op, f"needs 4-D data and weight, got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    groups = attrs.get("groups", 1)
    if c != cg * groups or k % groups:
        raise _fail(name, op, f"data has {c} channels, weight {w.shape} with groups={groups}")
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    pt, pl, pb, pr = attrs["pads"]
    oh, ow = conv_out(h, r, sh, pt, pb, dh), conv_out(wd, s, sw, pl, pr, dw)
    if oh < 1 or ow < 1:
        raise _fail(name, op, f"output would be empty ({oh} x {ow})")
    out = TensorType((n, k, oh, ow), x.dtype)
    _check_epilogue(name, op, ins, attrs, out, (k,))
    return out


def _check_epilogue(name, op, ins, attrs, out: TensorType, bias_shape) -> None:
    steps = [s[0] for s in attrs.get("epilogue", ())]
    extra = ins[2:]
    want = [k for k in ("bias", "residual") if k in steps]  # operands: bias, then residual
    if len(extra) != len(want):
        raise _fail(name, op, f"epilogue {steps} needs {len(want)} extra operands, got "
                    f"{len(extra)}")
    for kind, t in zip(want, extra):
        need = bias_shape if kind == "bias" else out.shape
        if tuple(t.shape) != tuple(need):
            raise _fail(name, op, f"{kind} operand has shape {t.shape}, expected {need}")


def _dense(name, op, ins, attrs, value) -> TensorType:
    x, w = ins[0], ins[1]
    if len(x.shape) != 2 or len(w.shape) != 2 or x.shape[1] != w.shape[1]:
        raise _fail(name, op, f"needs x (M, K) and w (N, K), got {x.shape} and {w.shape}")
    out = TensorType((x.shape[0], w.shape[0]), x.dtype)
    _check_epilogue(name, op, ins, attrs, out, (w.shape[0],))
    return out


def _matmul(name, op, ins, attrs, value) -> TensorType:
    a, b = ins
    if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
        raise _fail(name, op, f"supports 2-D (M, K) x (K, N) only, got {a.shape} x {b.shape}")
    return TensorType((a.shape[0], b.shape[1]), a.dtype)


def _same(name, op, ins, attrs, value) -> TensorType:
    return TensorType(ins[0].shape, ins[0].dtype)


def _binary(name, op, ins, attrs, value) -> TensorType:
    if ins[0].dtype != ins[1].dtype:
        raise _fail(name, op, f"operand dtypes differ: {ins[0].dtype} and {ins[1].dtype}")
    return TensorType(broadcast_shape(name, op, [ins[0].shape, ins[1].shape]), ins[0].dtype)


def _batch_norm(name, op, ins, attrs, value) -> TensorType:
    x = ins[0]
    if len(x.shape) < 2 or any(t.shape != (x.shape[1],) for t in ins[1:]):
        raise _fail(name, op, f"needs per-channel parameters of shape ({x.shape[1]},)")
    return TensorType(x.shape, x.dtype)


def _pool(name, op, ins, attrs, value) -> TensorType:
    x = ins[0]
    if len(x.shape) != 4:
        raise _fail(name, op, f"supports 4-D NCHW data only, got {x.shape}")
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    pt, pl, pb, pr = attrs["pads"]
    dh, dw = attrs.get("dilations", (1, 1))
    ceil = bool(attrs.get("ceil_mode", 0))
    oh, ow = conv_out(h, kh, sh, pt, pb, dh, ceil), conv_out(w, kw, sw, pl, pr, dw, ceil)
    if oh < 1 or ow < 1:
        raise _fail(name, op, f"output would be empty ({oh} x {ow})")
    return TensorType((n, c, oh, ow), x.dtype)


def _global_pool(name, op, ins, attrs, value) -> TensorType:
    x = ins[0]
    if len(x.shape) != 4:
        raise _fail(name, op, f"supports 4-D NCHW data only, got {x.shape}")
    return TensorType((x.shape[0], x.shape[1], 1, 1), x.dtype)


def _pad(name, op, ins, attrs, value) -> TensorType:
    n, c, h, w = ins[0].shape
    pt, pl, pb, pr = attrs["pads"]
    return TensorType((n, c, h + pt + pb, w + pl + pr), ins[0].dtype)


def _flatten(name, op, ins, attrs, value) -> TensorType:
    shape = ins[0].shape
    axis = attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise _fail(name, op, f"axis {attrs.get('axis')} out of range for {shape}")
    lead = int(np.prod(shape[:axis], dtype=np.int64))
    return TensorType((lead, int(np.prod(shape[axis:], dtype=np.int64))), ins[0].dtype)


def _reshape(name, op, ins, attrs, value) -> TensorType:
    return TensorType(reshape_target(name, ins[0].shape, tuple(attrs["shape"]),
                                     bool(attrs.get("allowzero", 0))), ins[0].dtype)


def _concat(name, op, ins, attrs, value) -> TensorType:
    rank = len(ins[0].shape)
    axis = attrs["axis"] + rank if attrs["axis"] < 0 else attrs["axis"]
    if not 0 <= axis < rank:
        raise _fail(name, op, f"axis {attrs['axis']} out of range for rank {rank}")
    for t in ins[1:]:
        if len(t.shape) != rank or any(a != b for i, (a, b) in
                                       enumerate(zip(t.shape, ins[0].shape)) if i != axis):
            raise _fail(name, op, f"operand shapes {[t.shape for t in ins]} differ off axis "
                        f"{axis}")
    shape = list(ins[0].shape)
    shape[axis] = sum(t.shape[axis] for t in ins)
    return TensorType(tuple(shape), ins[0].dtype)


def _softmax(name, op, ins, attrs, value) -> TensorType:
    rank = len(ins[0].shape)
    if not -rank <= attrs.get("axis", -1) < rank:
        raise _fail(name, op, f"axis {attrs.get('axis')} out of range for rank {rank}")
    return TensorType(ins[0].shape, ins[0].dtype)


def _transpose(name, op, ins, attrs, value) -> TensorType:
    shape = ins[0].shape
    perm = tuple(attrs.get("perm") or reversed(range(len(shape))))
    if sorted(perm) != list(range(len(shape))):
        raise _fail(name, op, f"perm {perm} is not a permutation of {len(shape)} axes")
    return TensorType(tuple(shape[p] for p in perm), ins[0].dtype)


def _layout_transform(name, op, ins, attrs, value) -> TensorType:
    return TensorType(ins[0].shape, ins[0].dtype, attrs["layout"])


_RULES = {
    "input": _input, "constant": _constant, "conv2d": _conv2d, "dense": _dense,
    "matmul": _matmul, "relu": _same, "clip": _same, "add": _binary, "mul": _binary,
    "batch_norm": _batch_norm, "max_pool": _pool, "avg_pool": _pool,
    "global_avg_pool": _global_pool, "pad": _pad, "flatten": _flatten, "reshape": _reshape,
    "concat": _concat, "softmax": _softmax, "transpose": _transpose, "identity": _same,
    "layout_transform": _layout_transform,
}
OPS = tuple(_RULES)
