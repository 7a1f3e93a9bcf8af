"""Quantized operators of the graph (written by ``tiletune.compress.quantize_graph``).

=================  ==============================  =========================================
op                 inputs                          attrs / node data
=================  ==============================  =========================================
quantize           x (float32)                     scale, zero_point, qmax      -> uint8
dequantize         x (uint8 or int32), scale       zero_point; ``scale`` a constant, scalar
                                                   or per channel (axis 1)      -> float32
pack_u8x4          x (uint8 [M, K])                -                            -> int32 [M, K/4]
qconv2d            x (uint8 NCHW)                  stride, pad, kernel, out_channels,
                                                   out_dtype; node data ``qlayer``
qdense             x (int32 [M, K/4], pack_u8x4)   out_channels, out_dtype; ``qlayer``
=================  ==============================  =========================================

``qlayer`` is a :class:`tiletune.compress.quantize.QuantizedLayer` (int8 weights, int32
bias, input/output quantization). Rounding is defined so that the kernels and the NumPy
semantics here agree bit for bit::

    quantize:    q = floor(clip(f32(x) * f32(1/scale), -zp, qmax - zp) + f32(zp + 0.5))
    dequantize:  y = f32(x - zp) * f32(scale[c])
    qconv2d / qdense: int32 accumulate of (x - zp_in) * w, + bias, then requantize (u8)
                      or the int32 accumulator (``out_dtype`` int32)

Importing this module registers the rules with ``graph.ops`` and the kernels with
``graph.kernels`` (``tiletune.graph`` imports it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import tiletune as tt
from tiletune.errors import GraphError
from tiletune.graph import kernels, ops
from tiletune.graph.ir import Graph, TensorType
from tiletune.graph.kernels import KernelSpec, simple_schedule

QOPS = ("quantize", "dequantize", "pack_u8x4", "qconv2d", "qdense")


def _fail(name: str, op: str, msg: str) -> GraphError:
    return GraphError(f"node {name!r} ({op}): {msg}")


# ---------------------------------------------------------------------------- types
def _quantize(name, op, ins, attrs, value) -> TensorType:
    if ins[0].dtype != "float32":
        raise _fail(name, op, f"quantizes float32, got {ins[0].dtype}")
    return TensorType(ins[0].shape, "uint8")


def _dequantize(name, op, ins, attrs, value) -> TensorType:
    x, s = ins
    if x.dtype not in ("uint8", "int32"):
        raise _fail(name, op, f"dequantizes uint8 or int32, got {x.dtype}")
    if s.shape not in ((), (1,)) and (len(x.shape) < 2 or s.shape != (x.shape[1],)):
        raise _fail(name, op, f"scale of shape {s.shape} is neither a scalar nor per channel "
                    f"of {x.shape}")
    return TensorType(x.shape, "float32")


def _pack(name, op, ins, attrs, value) -> TensorType:
    (x,) = ins
    if x.dtype != "uint8" or len(x.shape) != 2 or x.shape[1] % 4:
        raise _fail(name, op, f"packs uint8 [M, K] with K a multiple of 4, got {x}")
    return TensorType((x.shape[0], x.shape[1] // 4), "int32")


def _qconv2d(name, op, ins, attrs, value) -> TensorType:
    (x,) = ins
    if x.dtype != "uint8" or len(x.shape) != 4:
        raise _fail(name, op, f"needs uint8 NCHW data, got {x}")
    n, _, h, w = x.shape
    (r, s), st, p = attrs["kernel"], attrs["stride"], attrs["pad"]
    oh, ow = (h + 2 * p - r) // st + 1, (w + 2 * p - s) // st + 1
    return TensorType((n, attrs["out_channels"], oh, ow), attrs["out_dtype"])


def _qdense(name, op, ins, attrs, value) -> TensorType:
    (x,) = ins
    if x.dtype != "int32" or len(x.shape) != 2:
        raise _fail(name, op, f"needs packed int32 [M, K/4] data, got {x}")
    return TensorType((x.shape[0], attrs["out_channels"]), attrs["out_dtype"])


# ---------------------------------------------------------------------------- NumPy semantics
def quantize_numpy(x: np.ndarray, scale: float, zp: int, qmax: int) -> np.ndarray:
    """The ``quantize`` op on float32 data, bit-exact with its kernel."""
    t = np.asarray(x, np.float32) * np.float32(1.0 / scale)
    t = np.clip(t, np.float32(-zp), np.float32(qmax - zp))
    return np.floor(t + np.float32(zp + 0.5)).astype(np.uint8)


def dequantize_numpy(x: np.ndarray, scale: np.ndarray, zp: int) -> np.ndarray:
    s = np.asarray(scale, np.float32)
    if s.ndim == 1 and s.size > 1:
        s = s.reshape((1, -1) + (1,) * (x.ndim - 2))
    return (x.astype(np.int32) - np.int32(zp)).astype(np.float32) * s.reshape(
        s.shape if s.size > 1 else ())


def evaluate(g: Graph, node: str, args: list[np.ndarray]) -> np.ndarray:
    """One quantized op on logical arrays (integers exact, floats in float32)."""
    from tiletune.schedules import int8_conv2d, int8_dense
    d = g.node(node)
    op, a = d["op"], d["attrs"]
    if op == "quantize":
        return quantize_numpy(args[0], a["scale"], a["zero_point"], a["qmax"])
    if op == "dequantize":
        return dequantize_numpy(args[0], args[1], a["zero_point"])
    if op == "pack_u8x4":
        return np.ascontiguousarray(args[0]).view(np.int32)
    layer = d["qlayer"]
    mult, rq = layer.requant() if layer.y is not None else (None, None)
    if op == "qconv2d":
        return int8_conv2d.reference(args[0], layer.weight, layer.bias, layer.stride,
                                     layer.pad, layer.x.zero_point, mult, rq)
    if op == "qdense":
        a8 = np.ascontiguousarray(args[0]).view(np.uint8)
        return int8_dense.reference(a8, layer.weight.T, layer.bias, layer.x.zero_point,
                                    mult, rq)
    raise GraphError(f"node {node!r}: {op!r} is not a quantized operator")


# ---------------------------------------------------------------------------- kernels
def lower_quantize(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    a, t = g.node(node)["attrs"], g.type(node)
    scale, zp, qmax = a["scale"], a["zero_point"], a["qmax"]

    def make():
        x = tt.placeholder(t.shape, "float32", name="x")
        inv = tt.const(float(np.float32(1.0 / scale)), "float32")

        def body(*idx):
            v = tt.min(tt.max(x[idx] * inv, tt.const(float(-zp), "float32")),
                       tt.const(float(qmax - zp), "float32"))
            return (v + tt.const(zp + 0.5, "float32")).astype("int32").astype("uint8")

        out = tt.compute(t.shape, body, name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(f"quantize|{t}|{scale!r}|{zp}|{qmax}", make, [("act", x_name)])


def lower_dequantize(g: Graph, node: str) -> KernelSpec:
    x_name, s_name = g.node(node)["inputs"]
    in_t, t = g.type(x_name), g.type(node)
    zp = g.node(node)["attrs"]["zero_point"]
    scale = np.asarray(g.value(s_name), np.float32).reshape(-1)
    per_channel = scale.size > 1

    def make():
        x = tt.placeholder(in_t.shape, in_t.dtype, name="x")
        sc = tt.placeholder((scale.size,), "float32", name="scale")

        def body(*idx):
            v = x[idx].astype("int32") - tt.const(zp, "int32")
            return v.astype("float32") * sc[idx[1] if per_channel else 0]

        out = tt.compute(t.shape, body, name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, sc, out]

    return KernelSpec(f"dequantize|{in_t}|{scale.size}|{zp}", make,
                      [("act", x_name), ("const", np.ascontiguousarray(scale))])


def lower_pack(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, t = g.type(x_name), g.type(node)

    def make():
        x = tt.placeholder(in_t.shape, "uint8", name="x")

        def body(i, q):
            word = None
            for j in range(4):
                b = x[i, q * 4 + j].astype("int32")
                part = b if j == 0 else b * tt.const(1 << (8 * j), "int32")
                word = part if word is None else word + part
            return word

        out = tt.compute(t.shape, body, name="out")
        return tt.create_schedule(out), [x, out]

    return KernelSpec(f"pack_u8x4|{in_t}", make, [("act", x_name)])


def _qworkload(g: Graph, node: str) -> Any:
    """The int8 template workload of a ``qconv2d``/``qdense`` node."""
    from tiletune.schedules import int8_conv2d, int8_dense
    d = g.node(node)
    layer, (x_name,) = d["qlayer"], d["inputs"]
    out_dtype = g.type(node).dtype
    if d["op"] == "qconv2d":
        N, C, H, W = g.type(x_name).shape
        K, _, R, S = layer.weight.shape
        return int8_conv2d.Int8Conv2dWorkload(N, C, H, W, K, R, S, layer.stride, layer.pad,
                                              layer.path(), out_dtype)
    M, K4 = g.type(x_name).shape
    return int8_dense.Int8DenseWorkload(M, layer.out_channels, 4 * K4, layer.path(), out_dtype)


def int8_plan(g: Graph, node: str, configs: Any) -> Any:
    """The plan of a ``qconv2d``/``qdense`` node (plain u8 layout in and out): its tuning
    task ``int8_conv2d``/``int8_dense`` and the tuned config of ``configs`` (a
    :class:`TunedConfigs`) when it has a valid one, else the heuristic default. The layout
    pass stores it in the node's ``plan``, so ``extract_tasks`` and ``graph.build`` see it."""
    from tiletune.graph.lower_conv import ConvPlan
    from tiletune.schedules import int8_conv2d, int8_dense
    w = _qworkload(g, node)
    module, template = ((int8_conv2d, "int8_conv2d") if g.op(node) == "qconv2d"
                        else (int8_dense, "int8_dense"))
    args = tuple(vars(w).values())
    cfg = configs.get(template, args) if configs is not None else None
    space = module.space(w)
    tuned = cfg is not None and set(cfg) == set(space) and all(
        cfg[k] in space[k] for k in space) and bool(module.is_valid(w, cfg))
    return ConvPlan("int8", dict(cfg) if tuned else module.default_config(w), 0, 0, template,
                    args, tuned)


def _config(g: Graph, node: str, w: Any, module: Any) -> dict[str, Any]:
    """The planned config (after the layout pass), else the dispatch context's or default."""
    from tiletune.schedules import dispatch
    plan = g.node(node).get("plan")
    if plan is not None and plan.config is not None:
        return dict(plan.config)
    return dict(dispatch.lookup(w.key(), module.default_config(w), w))


def lower_qconv2d(g: Graph, node: str) -> KernelSpec:
    from tiletune.schedules import int8_conv2d
    d = g.node(node)
    layer, (x_name,) = d["qlayer"], d["inputs"]
    w = _qworkload(g, node)
    cfg = _config(g, node, w, int8_conv2d)
    zp = layer.x.zero_point
    mult, rq = layer.requant() if w.out_dtype == "uint8" else (None, None)
    args: list[tuple[str, Any]] = [
        ("act", x_name), ("const", int8_conv2d.pack_weight(layer.weight, cfg)),
        ("const", int8_conv2d.fold_bias(layer.bias, layer.weight, zp))]
    if mult is not None:
        args.append(("const", np.ascontiguousarray(mult, np.int32)))
    return KernelSpec(f"qconv2d|{w}|{sorted(cfg.items())}|{zp}|{rq}",
                      lambda: int8_conv2d.schedule(w, cfg, zp, rq), args, w.flop,
                      ("int8_conv2d", tuple(vars(w).values())))


def lower_qdense(g: Graph, node: str) -> KernelSpec:
    from tiletune.schedules import int8_dense
    d = g.node(node)
    layer, (x_name,) = d["qlayer"], d["inputs"]
    w = _qworkload(g, node)
    cfg = _config(g, node, w, int8_dense)
    B = np.ascontiguousarray(layer.weight.T)
    zp = layer.x.zero_point
    mult, rq = layer.requant() if w.out_dtype == "uint8" else (None, None)
    args: list[tuple[str, Any]] = [
        ("act", x_name), ("const", int8_dense.pack_weight(B, cfg["nr"])),
        ("const", int8_dense.fold_bias(layer.bias, B, zp))]
    if mult is not None:
        args.append(("const", np.ascontiguousarray(mult, np.int32)))
    return KernelSpec(f"qdense|{w}|{sorted(cfg.items())}|{rq}",
                      lambda: int8_dense.schedule(w, cfg, rq), args, w.flop,
                      ("int8_dense", tuple(vars(w).values())))


ops._RULES.update({"quantize": _quantize, "dequantize": _dequantize, "pack_u8x4": _pack,
                   "qconv2d": _qconv2d, "qdense": _qdense})
kernels.LOWERINGS.update({"quantize": lower_quantize, "dequantize": lower_dequantize,
                          "pack_u8x4": lower_pack, "qconv2d": lower_qconv2d,
                          "qdense": lower_qdense})
