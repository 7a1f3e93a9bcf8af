"""QDQ models through ``tiletune.frontend.from_onnx``: the quantized layers spliced in.

The frontend imports QuantizeLinear / DequantizeLinear as ``quantize`` / ``dequantize``
nodes (constant weights and biases are dequantized to float32), which already computes the
model's fake-quantized semantics in fp32. ``splice_qdq`` then replaces each layer that
:func:`read_qdq` recognises by its int8 kernel. Before / after (a Conv with Relu)::

    %xq = quantize(%x)                            %xq = quantize(%x)
    %xd = dequantize(%xq, %s)                     %c  = qconv2d(%xq) : uint8[...]
    %c  = conv2d(%xd, %w_fp32, %b) epilogue=bias  (readers of %yq read %c; the old
    %r  = relu(%c)                         ->      dequantize/conv/relu/quantize are dead)
    %yq = quantize(%r)

A layer without an output QuantizeLinear keeps its int32 accumulator and is dequantized
per channel. A layer the int8 kernels cannot take (dense input features not a multiple of
4) stays in the fp32 form the frontend built.
"""
from __future__ import annotations

from typing import Any

from tiletune.compress.quantize.graph import add_layer, dequantized
from tiletune.compress.quantize.qdq import read_qdq
from tiletune.graph.ir import Graph


def splice_qdq(g: Graph, model: Any, names: dict[str, str]) -> list[tuple[str, str]]:
    """Replace the QDQ layers of ``model`` in ``g`` (``names``: ONNX tensor -> graph node,
    from the importer) by int8 kernels; returns the layers left in fp32, with the reason."""
    qm = read_qdq(model)
    kept = list(qm.fp32)
    replaced: dict[str, str] = {}  # a QuantizeLinear's node -> the int8 layer now feeding it
    for layer in qm.layers:
        x = names.get(layer.attrs["input"])
        out = names.get(layer.attrs["output"])
        x = replaced.get(x, x)
        if x is None or out is None or x not in g or g.type(x).dtype != "uint8":
            kept.append((layer.name, "its input is not a quantized activation"))
            continue
        shape = g.type(x).shape
        if layer.kind == "dense" and len(shape) != 2:
            kept.append((layer.name, f"dense input of shape {shape} is not 2-D"))
            continue
        if layer.kind == "dense" and shape[1] % 4:
            kept.append((layer.name, "input features are not a multiple of 4"))
            continue
        qn = add_layer(g, layer, x)
        g.replace_uses(out, qn if layer.y is not None else dequantized(g, qn, layer))
        replaced[out] = qn
    g.remove_unused()
    return kept
