"""Post-training quantization of a tiletune graph (``tiletune.compress.quantize_graph``).

    qg = quantize_graph(g, [x1, x2, ...], method="kl")     # or "percentile", "minmax"
    print(qg.report())                                      # what stayed fp32 and why
    m = tiletune.graph.build(qg.graph)                      # int8 kernels on the CPU
    y = m(x); ref = run_reference(qg.graph, x)              # equal bit for bit

1. BatchNorm, constants and identities are folded (the graph's own passes), then the fp32
   graph runs in NumPy on the calibration inputs and every conv/dense input and output
   is observed (``executor`` may replace that run: feed -> ``{node: array}``).
2. Each conv2d/dense with constant weights (and bias) becomes ``qconv2d``/``qdense``
   carrying a :class:`QuantizedLayer`; a ReLU that is its only reader is folded into the
   requantize clip. Before / after::

       %c = conv2d(%x, %w, %b) epilogue=bias         %q  = quantize(%x) scale=.. zero_point=..
       %r = relu(%c)                          ->     %qc = qconv2d(%q) ... : uint8[...]
       %o = add(%r, %s)                              %d  = dequantize(%qc, %scale)
                                                     %o  = add(%d, %s)

   Consecutive quantized layers hand u8 tensors to each other directly; a layer whose
   output no quantized layer reads keeps its int32 accumulator (dequantized per channel).
3. A layer the int8 kernels cannot run (grouped, dilated, asymmetric pads or strides,
   dense input features not a multiple of 4, non-constant weights) stays fp32 and is listed in
   ``QuantizedGraph.fp32`` with the reason; so is every other operator kind.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tiletune.compress.quantize.calibrate import METHODS, Observer, Range
from tiletune.compress.quantize.layer import QuantizedLayer, quantize_layer
from tiletune.compress.quantize.qparams import QParams, quantize_bias
from tiletune.compress.quantize.vta_layer import pow2_scale, quantize_layer_pow2
from tiletune.errors import CompressError
from tiletune.graph import qops, sparse_ops, vta_ops
from tiletune.graph.ir import Graph
from tiletune.graph.passes.fold_batch_norm import fold_batch_norm
from tiletune.graph.passes.fold_constants import fold_constants, remove_identity
from tiletune.graph.reference import evaluate

GraphExecutor = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
#: Operators that need no quantization and are not reported (data movement, graph I/O).
_SILENT = ("input", "constant", "flatten", "reshape", "identity")


@dataclass
class QuantizedGraph:
    """The quantized graph, its layers and what stayed fp32 (node, reason)."""

    graph: Graph
    layers: dict[str, QuantizedLayer] = field(default_factory=dict)
    fp32: list[tuple[str, str]] = field(default_factory=list)
    method: str = "kl"

    def report(self) -> str:
        lines = [f"{len(self.layers)} layers int8 ({self.method} calibration), "
                 f"{len(self.fp32)} operators fp32"]
        lines += [f"  fp32 {n}: {why}" for n, why in self.fp32]
        return "\n".join(lines)


def node_values(g: Graph, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every node's value on ``feed`` (NumPy; float32 results): the calibration executor."""
    values: dict[str, np.ndarray] = {}
    for n in g.topo():
        d = g.node(n)
        if d["op"] == "input":
            if n not in feed:
                raise CompressError(f"calibration feed has no value for graph input {n!r}")
            values[n] = np.asarray(feed[n], np.float32)
        elif d["op"] == "constant":
            values[n] = d["value"]
        elif d["op"] in qops.QOPS:
            values[n] = qops.evaluate(g, n, [values[i] for i in d["inputs"]])
        elif d["op"] in vta_ops.VTA_OPS:
            values[n] = vta_ops.evaluate(g, n, [values[i] for i in d["inputs"]])
        elif d["op"] in sparse_ops.SPARSE_OPS:
            values[n] = sparse_ops.evaluate(g, n, [values[i] for i in d["inputs"]])
        else:
            values[n] = np.asarray(evaluate(d["op"], [values[i] for i in d["inputs"]],
                                            d["attrs"]), g.type(n).dtype)
    return values


def run_reference(g: Graph, inputs: Mapping[str, np.ndarray] | np.ndarray
                  ) -> list[np.ndarray]:
    """The NumPy reference of a (quantized) graph: integer ops exact, float ops in float32."""
    if isinstance(inputs, np.ndarray):
        inputs = {g.inputs[0]: inputs}
    values = node_values(g, inputs)
    return [values[o] for o in g.outputs]


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(|ref|^2 / |ref - approx|^2)`` (dB)."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref ** 2)) / noise)


def _why_not(g: Graph, n: str) -> str | None:
    d = g.node(n)
    op, a, ins = d["op"], d["attrs"], d["inputs"]
    if g.value(ins[1]) is None:
        return "its weight is not a constant"
    steps = [s[0] for s in a.get("epilogue", ())]
    if any(s != "bias" for s in steps):
        return f"epilogue {steps} has no int8 form"
    if "bias" in steps and g.value(ins[2]) is None:
        return "its bias is not a constant"
    if op == "dense":
        return None if g.type(ins[0]).shape[1] % 4 == 0 else \
            "input features are not a multiple of 4"
    if a.get("groups", 1) != 1 or tuple(a["dilations"]) != (1, 1):
        return "grouped or dilated convolution has no int8 kernel"
    if len(set(a["strides"])) != 1 or len(set(a["pads"])) != 1:
        return "asymmetric strides or pads have no int8 kernel"
    return None


def quantize_graph(graph: Graph, calibration_inputs: Iterable[Mapping[str, np.ndarray]
                                                               | np.ndarray],
                   method: str = "kl", *, percentile: float = 99.99, qmax: int | None = None,
                   weight_bits: int | None = None, executor: GraphExecutor | None = None,
                   vta: bool = False) -> QuantizedGraph:
    """Quantize ``graph`` (not changed) calibrated on ``calibration_inputs`` (arrays for the
    first input, or feeds ``{input name: array}``). ``qmax``: largest activation code
    (default 255); ``weight_bits``: 7 or 8 (default: 7 on the AVX2 / AVX-512BW paths, whose
    vpmaddubsw is exact on full u8 activations only with 7-bit weights; 8 with VNNI or
    7-bit activations, see ``quantize_layer``). ``vta``:
    power-of-two scales (7-bit activations, zero point 0 on non-negative tensors) so the
    layers VTA can run may be placed on it (``place_on_vta``)."""
    if method not in METHODS:
        raise CompressError(f"unknown calibration method {method!r}; use one of {METHODS}")
    g = graph.copy()
    g.infer()
    for fold in (fold_constants, fold_batch_norm, remove_identity):
        fold(g, None)
        g.remove_unused()
    out = QuantizedGraph(g, method=method)
    plans: list[tuple[str, str, str, bool]] = []  # node, x, y (relu folded), relu
    others: list[str] = []
    for n in g.operators():
        op = g.op(n)
        if op not in ("conv2d", "dense"):
            if op not in _SILENT:
                others.append(n)
            continue
        why = _why_not(g, n)
        if why:
            out.fp32.append((n, why))
            continue
        users = g.consumers(n)
        relu = len(users) == 1 and g.op(users[0]) == "relu" and n not in g.outputs
        plans.append((n, g.node(n)["inputs"][0], users[0] if relu else n, relu))
    folded = {p[2] for p in plans if p[3]}
    out.fp32 = [(n, f"{g.op(n)} has no int8 kernel") for n in others if n not in folded] + \
        out.fp32
    names = sorted({p[1] for p in plans} | {p[2] for p in plans})
    observers = {n: Observer() for n in names}
    run = executor or (lambda feed: node_values(g, feed))
    seen = 0
    for x in calibration_inputs:
        feed = {g.inputs[0]: x} if isinstance(x, np.ndarray) else x
        acts = run(feed)
        for n in names:
            observers[n].update(acts[n])
        seen += 1
    if seen == 0:
        raise CompressError("the calibration set is empty: give at least one input batch")
    ranges = {n: o.range(method, percentile) for n, o in observers.items()}
    planned_inputs = {p[1] for p in plans} | {_view_source(g, p[1])[0] for p in plans}
    for n, x_name, y_name, relu in plans:
        d = g.node(n)
        a = d["attrs"]
        w = g.value(d["inputs"][1]).astype(np.float32)
        b = g.value(d["inputs"][2]) if len(d["inputs"]) > 2 else None
        # u8 output when a quantized layer reads it (or, for VTA, any conv + ReLU: VTA
        # requantizes); else the int32 accumulator, dequantized per channel
        wants_u8 = y_name in planned_inputs or (vta and relu and d["op"] == "conv2d")
        y_range = ranges[y_name] if wants_u8 else None
        kind = "conv" if d["op"] == "conv2d" else "dense"
        stride, pad = int(a.get("strides", (1, 1))[0]), int(a.get("pads", (0,))[0])
        if vta:
            layer = _pow2_layer(n, kind, w, b, ranges[x_name], y_range, stride, pad, relu)
        else:
            layer = quantize_layer(n, kind, w, b, ranges[x_name], y_range, stride=stride,
                                   pad=pad, relu=relu, qmax=qmax, weight_bits=weight_bits)
        layer.attrs.update({"input": x_name, "output": y_name, "op": d["op"]})
        out.layers[n] = layer
    _rewrite(g, [(out.layers[p[0]], p[1], p[2], _view_source(g, p[1])) for p in plans])
    return out


def _pow2_layer(name: str, kind: str, w: np.ndarray, b: np.ndarray | None, x_range: Range,
                y_range: Range | None, stride: int, pad: int, relu: bool) -> QuantizedLayer:
    """A layer with power-of-two activation scales: per-tensor power-of-two weights too
    when VTA could run it (conv + ReLU, channels in blocks of 16), else per channel."""
    if kind == "conv" and relu and y_range is not None and x_range.lo >= 0 and \
            w.shape[0] % 16 == 0 and w.shape[1] % 16 == 0:
        return quantize_layer_pow2(name, w, b, x_range, y_range, stride=stride, pad=pad)
    layer = quantize_layer(name, kind, w, b, x_range, y_range, stride=stride, pad=pad,
                           relu=relu, qmax=127)
    layer.x = _pow2_qparams(x_range, layer.x)
    layer.bias = quantize_bias(b, layer.x.scale, layer.w_scale)
    if layer.y is not None:
        layer.y = _pow2_qparams(Range(0.0, y_range.hi) if relu else y_range, layer.y)
    return layer


def _pow2_qparams(r: Range, default: QParams) -> QParams:
    return QParams(pow2_scale(r.hi), 0, 127) if r.lo >= 0 else default


def _view_source(g: Graph, x: str) -> tuple[str, list[str]]:
    """The tensor ``x`` is a flatten/reshape chain of, and that chain (in order)."""
    views: list[str] = []
    while g.op(x) in ("flatten", "reshape"):
        views.insert(0, x)
        x = g.node(x)["inputs"][0]
    return x, views


def _rewrite(g: Graph, plans: list[tuple[QuantizedLayer, str, str, tuple[str, list[str]]]]
             ) -> None:
    """Replace each planned layer by quantize -> qconv2d/qdense -> dequantize nodes."""
    u8: dict[str, tuple[str, object]] = {}  # original tensor -> (u8 node, its QParams)
    fp: dict[str, str] = {}  # original tensor -> node holding its fp32 value now
    quantized: dict[tuple[str, object], str] = {}
    for layer, x_name, y_name, (base, views) in plans:
        if x_name in u8 and u8[x_name][1] == layer.x:
            xq = u8[x_name][0]
        elif views and base in u8 and u8[base][1] == layer.x:  # flatten/reshape the u8 data
            xq = u8[base][0]
            for v in views:
                xq = g.add(g.unique_name(f"{v}_u8"), g.op(v), [xq], g.node(v)["attrs"])
        else:
            src = fp.get(x_name, x_name)
            key = (src, layer.x)
            if key not in quantized:
                quantized[key] = g.add(g.unique_name(f"{src}_q"), "quantize", [src], {
                    "scale": layer.x.scale, "zero_point": layer.x.zero_point,
                    "qmax": layer.x.qmax})
            xq = quantized[key]
        qn = add_layer(g, layer, xq)
        if layer.y is not None:
            u8[y_name] = (qn, layer.y)
        deq = dequantized(g, qn, layer)
        g.replace_uses(y_name, deq)
        fp[y_name] = deq
    g.remove_unused()


def add_layer(g: Graph, layer: QuantizedLayer, xq: str) -> str:
    """Add the ``qconv2d``/``qdense`` node of ``layer`` reading the u8 tensor ``xq`` (a
    dense layer's input is packed four bytes a word first); returns its name."""
    if layer.kind == "dense":
        xq = g.add(g.unique_name(f"{xq}_u8x4"), "pack_u8x4", [xq])
    attrs = {"out_channels": layer.out_channels,
             "out_dtype": "uint8" if layer.y is not None else "int32"}
    if layer.kind == "conv":
        attrs.update({"kernel": tuple(layer.weight.shape[2:]), "stride": layer.stride,
                      "pad": layer.pad})
    qn = g.add(g.unique_name(f"{layer.name}_int8"),
               "qconv2d" if layer.kind == "conv" else "qdense", [xq], attrs, infer=False)
    g.node(qn)["qlayer"] = layer
    g.infer_node(qn)
    return qn


def dequantized(g: Graph, qn: str, layer: QuantizedLayer) -> str:
    """A ``dequantize`` node of the layer node ``qn`` (u8 output, or int32 accumulator with
    the per-channel scale ``x.scale * w_scale``)."""
    if layer.y is not None:
        scale, zp = np.float32(layer.y.scale), layer.y.zero_point
    else:
        scale, zp = (layer.x.scale * layer.w_scale).astype(np.float32), 0
    s = g.constant(f"{qn}_scale", np.asarray(scale, np.float32))
    return g.add(g.unique_name(f"{qn}_fp32"), "dequantize", [qn, s], {"zero_point": zp})
