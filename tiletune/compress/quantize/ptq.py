"""Post-training quantization of an ONNX model's conv / dense layers from calibration data.

1. Run the fp32 model on the user's calibration batches and stream every activation that
   feeds or leaves a Conv / Gemm / MatMul into an :class:`Observer` (``executor`` maps a
   feed to ``{tensor name: array}``; the default is onnxruntime with every node output
   exposed, and a tiletune graph executor can take its place).
2. Each Conv / Gemm / MatMul with a constant weight becomes a :class:`QuantizedLayer`:
   per-channel symmetric s8 weights, per-tensor u8 activations from the calibrated ranges
   (``minmax``, ``percentile`` or ``kl``), a following Relu folded into the output clip.
3. Every other operator, and a layer that cannot be quantized (a non-constant weight,
   groups, dilation), stays fp32 and is listed with the reason.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from tiletune.compress.quantize.calibrate import METHODS, Observer, Range
from tiletune.compress.quantize.layer import QuantizedLayer, quantize_layer
from tiletune.compress.quantize.qdq import QUANTIZABLE, QDQModel
from tiletune.errors import CompressError

Executor = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def onnxruntime_executor(model: Any, names: list[str]) -> Executor:
    """Runs ``model`` with onnxruntime and returns the tensors ``names`` (fp32)."""
    import onnx
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    produced = {o for n in m.graph.node for o in n.output}
    for n in names:
        if n not in have and n in produced:
            m.graph.output.append(onnx.helper.make_tensor_value_info(
                n, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]

    def run(feed: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return dict(zip(outs, sess.run(None, dict(feed))))
    return run


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def quantize_model(model: Any, batches: Iterable[Mapping[str, np.ndarray]],
                   method: str = "kl", *, percentile: float = 99.99, qmax: int | None = None,
                   executor: Executor | None = None) -> QDQModel:
    """Quantized layers of ``model`` (an ``onnx.ModelProto``) calibrated on ``batches``
    (feeds ``{input name: array}``); unquantizable operators are listed as fp32."""
    from onnx import numpy_helper
    if method not in METHODS:
        raise CompressError(f"unknown calibration method {method!r}; use one of {METHODS}")
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = QDQModel()
    plans: list[tuple[Any, str, str, bool]] = []  # node, input, output tensor, relu
    for node in model.graph.node:
        name = node.name or node.output[0]
        if node.op_type not in QUANTIZABLE:
            if not (node.op_type == "Relu" and any(p[2] == node.output[0] for p in plans)):
                out.fp32.append((name, f"{node.op_type} has no int8 kernel"))
            continue
        why = _unquantizable(node, consts)
        if why:
            out.fp32.append((name, why))
            continue
        users = consumers.get(node.output[0], [])
        relu = len(users) == 1 and users[0].op_type == "Relu"
        plans.append((node, node.input[0], users[0].output[0] if relu else node.output[0],
                      relu))
    names = sorted({p[1] for p in plans} | {p[2] for p in plans})
    run = executor or onnxruntime_executor(model, names)
    observers = {n: Observer() for n in names}
    seen = 0
    for feed in batches:
        acts = run(feed)
        for n in names:
            if n in acts:
                observers[n].update(acts[n])
            elif n in feed:
                observers[n].update(feed[n])
        seen += 1
    if seen == 0:
        raise CompressError("the calibration set is empty: give at least one input batch")
    ranges = {n: o.range(method, percentile) for n, o in observers.items()}
    for node, x_name, y_name, relu in plans:
        out.layers.append(_layer(node, consts, ranges[x_name], ranges[y_name], relu, qmax,
                                 x_name, y_name))
    return out


def _unquantizable(node: Any, consts: Mapping[str, np.ndarray]) -> str | None:
    if len(node.input) < 2 or node.input[1] not in consts:
        return "its weight is not a constant"
    if len(node.input) > 2 and node.input[2] and node.input[2] not in consts:
        return "its bias is not a constant"
    a = _attrs(node)
    if node.op_type == "Conv":
        if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1])):
            return "grouped or dilated convolution has no int8 kernel"
        if len(set(a.get("strides", [1]))) != 1 or len(set(a.get("pads", [0]))) != 1:
            return "asymmetric strides or pads have no int8 kernel"
        if consts[node.input[1]].ndim != 4:
            return "only 2-D convolutions have an int8 kernel"
    if node.op_type == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0
                                   or a.get("beta", 1.0) != 1.0):
        return "Gemm with transA, alpha or beta has no int8 kernel"
    return None


def _layer(node: Any, consts: Mapping[str, np.ndarray], x_range: Range, y_range: Range,
           relu: bool, qmax: int | None, x_name: str, y_name: str) -> QuantizedLayer:
    a = _attrs(node)
    w = consts[node.input[1]].astype(np.float32)
    b = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
    name = node.name or node.output[0]
    if node.op_type == "Conv":
        layer = quantize_layer(name, "conv", w, b, x_range, y_range,
                               stride=int(a.get("strides", [1])[0]),
                               pad=int(a.get("pads", [0])[0]), relu=relu, qmax=qmax)
    else:
        wt = w if node.op_type == "Gemm" and a.get("transB", 0) else w.T  # [out, in]
        layer = quantize_layer(name, "dense", np.ascontiguousarray(wt), b, x_range, y_range,
                               relu=relu, qmax=qmax)
    layer.attrs.update({"input": x_name, "output": y_name, "op": node.op_type})
    return layer
