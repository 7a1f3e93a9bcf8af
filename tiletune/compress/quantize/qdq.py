"""Import models already quantized in ONNX's QDQ form (what onnxruntime's quantizer writes).

The pattern around each quantized Conv / Gemm / MatMul::

    x_f -> QuantizeLinear(s_x, zp_x) -> DequantizeLinear -> Conv -> [Relu] -> QuantizeLinear
    W_q (int8 initializer) -> DequantizeLinear(s_w[k], axis=0) ---^     (s_y, zp_y)
    B_q (int32 initializer) -> DequantizeLinear(s_x * s_w[k]) -----^  (or a float bias)

becomes a :class:`QuantizedLayer` (s8 weight, int32 bias, u8 input/output parameters) that
the int8 kernels run. Every other node, and a Conv/Gemm that does not match (no QDQ
around it, groups, dilation, an asymmetric weight), stays in fp32 and is listed with the
reason in ``QDQModel.fp32``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tiletune.compress.quantize.layer import QuantizedLayer
from tiletune.compress.quantize.qparams import QParams

QUANTIZABLE = ("Conv", "Gemm", "MatMul")
_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class QDQModel:
    """The quantized layers of a QDQ model (in graph order) and what stays fp32, and why."""

    layers: list[QuantizedLayer] = field(default_factory=list)
    fp32: list[tuple[str, str]] = field(default_factory=list)  # (node, reason)

    def report(self) -> str:
        lines = [f"{len(self.layers)} int8 layers: " + ", ".join(q.name for q in self.layers)]
        lines += [f"kept in fp32: {n} ({why})" for n, why in self.fp32]
        return "\n".join(lines)


class _Graph:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def qparams(self, node: Any) -> tuple[float, int, np.ndarray, np.ndarray] | None:
        """(scale, zero point, scale array, zp array) of a Q/DQ node."""
        s = self.const(node.input[1])
        zp = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if s is None:
            return None
        zp = np.zeros(s.shape, np.uint8) if zp is None else zp
        return float(np.ravel(s)[0]), int(np.ravel(zp)[0]) if zp.size else 0, s, zp


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def read_qdq(model: Any) -> QDQModel:
    """The int8 layers of a QDQ ``onnx.ModelProto`` (or a path to one)."""
    import onnx
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = onnx.load(model)
    g = _Graph(model)
    out = QDQModel()
    absorbed: set[str] = set()
    for node in model.graph.node:
        if node.op_type in _QDQ or node.op_type == "Constant" or node.output[0] in absorbed:
            continue
        name = node.name or node.output[0]
        if node.op_type not in QUANTIZABLE:
            out.fp32.append((name, f"{node.op_type} has no int8 kernel"))
            continue
        layer = _match(g, node, name)
        if isinstance(layer, str):
            out.fp32.append((name, layer))
        else:
            out.layers.append(layer)
            if layer.relu:
                absorbed.add(g.consumers[node.output[0]][0].output[0])
    return out


def _match(g: _Graph, node: Any, name: str) -> QuantizedLayer | str:
    """The quantized layer of ``node``, or why it stays fp32."""
    dq_x = g.producer.get(node.input[0])
    dq_w = g.producer.get(node.input[1]) if len(node.input) > 1 else None
    if dq_x is None or dq_x.op_type != "DequantizeLinear":
        return "its input is not dequantized (no QDQ around it)"
    if dq_w is None or dq_w.op_type != "DequantizeLinear" or g.const(dq_w.input[0]) is None:
        return "its weight is not a dequantized constant"
    xq = g.qparams(dq_x)
    x_src = g.const(dq_x.input[0]) if dq_x.input[0] in g.consts else None
    if xq is None or xq[2].size != 1 or x_src is not None:
        return "its input quantization is not per-tensor"
    if np.asarray(xq[3]).dtype != np.uint8:
        return "its input is not u8"
    w_q = g.const(dq_w.input[0])
    wqp = g.qparams(dq_w)
    if w_q.dtype != np.int8 or wqp is None or np.any(np.asarray(wqp[3]) != 0):
        return "its weight is not symmetric s8"
    w_scale = np.broadcast_to(np.asarray(wqp[2], np.float64).ravel(), (w_q.shape[0],)) \
        if node.op_type == "Conv" else None
    attrs = _attrs(node)
    kind, stride, pad = "conv", 1, 0
    if node.op_type == "Conv":
        if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1])):
            return "grouped or dilated convolution has no int8 kernel"
        strides, pads = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0])
        if len(set(strides)) != 1 or len(set(pads)) != 1 or attrs.get("auto_pad", b"NOTSET") \
                not in (b"NOTSET", "NOTSET"):
            return "asymmetric strides or pads have no int8 kernel"
        stride, pad = int(strides[0]), int(pads[0])
        weight = w_q
    else:
        kind = "dense"
        trans_b = attrs.get("transB", 0) if node.op_type == "Gemm" else 0
        if node.op_type == "Gemm" and (attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                                       or attrs.get("beta", 1.0) != 1.0):
            return "Gemm with transA, alpha or beta has no int8 kernel"
        weight = w_q if trans_b else np.ascontiguousarray(w_q.T)  # [out, in]
        axis = dq_w.attribute and _attrs(dq_w).get("axis", 1)
        per = np.asarray(wqp[2], np.float64).ravel()
        if per.size not in (1, weight.shape[0]):
            return "its weight scales are not per output channel"
        if per.size > 1 and axis != (0 if trans_b else 1):
            return "its weight scales are not per output channel"
        w_scale = np.broadcast_to(per, (weight.shape[0],))
    bias = _bias(g, node, xq[0], w_scale)
    if isinstance(bias, str):
        return bias
    relu, q_out = _output(g, node)
    y = None
    if q_out is not None:
        yq = g.qparams(q_out)
        if yq is None or yq[2].size != 1 or np.asarray(yq[3]).dtype != np.uint8:
            return "its output quantization is not per-tensor u8"
        y = QParams(yq[0], yq[1], 255)
    return QuantizedLayer(name, kind, np.ascontiguousarray(weight, np.int8),
                          np.array(w_scale, np.float64), bias, QParams(xq[0], xq[1], 255), y,
                          stride, pad, relu, {"input": dq_x.input[0], "op": node.op_type,
                                              "output": (q_out.output[0] if q_out is not None
                                                         else node.output[0])})


def _bias(g: _Graph, node: Any, x_scale: float, w_scale: np.ndarray) -> np.ndarray | str:
    n_out = len(w_scale)
    if len(node.input) < 3 or not node.input[2]:
        return np.zeros(n_out, np.int32)
    src = g.producer.get(node.input[2])
    if src is not None and src.op_type == "DequantizeLinear" and g.const(src.input[0]) is not None:
        b_q = g.const(src.input[0]).astype(np.int64).ravel()
        b_s = np.broadcast_to(np.asarray(g.const(src.input[1]), np.float64).ravel(), (n_out,))
        real = b_q * b_s
    elif g.const(node.input[2]) is not None:
        real = np.asarray(g.const(node.input[2]), np.float64).ravel()
    else:
        return "its bias is not a constant"
    if real.size != n_out:
        return "its bias does not have one value per output channel"
    return np.round(real / (x_scale * w_scale)).astype(np.int32)


def _output(g: _Graph, node: Any) -> tuple[bool, Any | None]:
    """(a Relu sits between the node and its QuantizeLinear, that QuantizeLinear or None)."""
    relu, out = False, node.output[0]
    users = g.consumers.get(out, [])
    if len(users) == 1 and users[0].op_type == "Relu":
        relu, out = True, users[0].output[0]
        users = g.consumers.get(out, [])
    q = [u for u in users if u.op_type == "QuantizeLinear"]
    if len(users) == 1 and q:
        return relu, q[0]
    return False, None  # int32 output; a Relu after it stays an fp32 node
