"""VTA convolutions inside a CPU graph (written by ``tiletune.compress.place_on_vta``).

=================  ==============================  =========================================
op                 inputs                          attrs / node data
=================  ==============================  =========================================
vta_pack           x (uint8 NCHW, 7-bit)           -   -> int8 [N/B, C/BI, H, W, B, BI]
vta_conv2d         x (vta_pack output)             workload (VTAConv2dWorkload as a tuple);
                                                   node data ``qlayer`` (QuantizedLayer)
                                                   -> int8 [N/B, K/BO, OH, OW, B, BO]
vta_unpack         x (vta_conv2d output)           -   -> uint8 NCHW
=================  ==============================  =========================================

``vta_conv2d`` runs on the VTA simulator (its kernel is a ``VTAModule``); the pack/unpack
layout kernels run on the CPU, so buffers are handed between the two through the graph's
planned storage. Importing this module registers the rules and kernels.
"""
from __future__ import annotations

import numpy as np

import tiletune as tt
from tiletune.errors import GraphError
from tiletune.graph import kernels, ops
from tiletune.graph.ir import Graph, TensorType
from tiletune.graph.kernels import KernelSpec

VTA_OPS = ("vta_pack", "vta_conv2d", "vta_unpack")


def _cfg():
    from tiletune.backends.vta.config import DEFAULT_CONFIG
    return DEFAULT_CONFIG


def workload(attrs: dict):
    from tiletune.schedules.vta_conv2d import VTAConv2dWorkload
    a = list(attrs["workload"])
    a[10] = tuple(a[10])
    return VTAConv2dWorkload(*a)


def _pack(name, op, ins, attrs, value) -> TensorType:
    c = _cfg()
    x = ins[0]
    if x.dtype != "uint8" or len(x.shape) != 4 or x.shape[0] % c.batch or \
            x.shape[1] % c.block_in:
        raise GraphError(f"node {name!r} ({op}): needs uint8 NCHW with N, C in blocks of "
                         f"{c.batch}, {c.block_in}; got {x}")
    n, ch, h, w = x.shape
    return TensorType((n // c.batch, ch // c.block_in, h, w, c.batch, c.block_in), "int8")


def _conv(name, op, ins, attrs, value) -> TensorType:
    c, w = _cfg(), workload(attrs)
    return TensorType((w.N // c.batch, w.K // c.block_out, w.OH, w.OW, c.batch, c.block_out),
                      "int8")


def _unpack(name, op, ins, attrs, value) -> TensorType:
    nb, kb, oh, ow, b, bo = ins[0].shape
    return TensorType((nb * b, kb * bo, oh, ow), "uint8")


def evaluate(g: Graph, node: str, args: list[np.ndarray]) -> np.ndarray:
    """NumPy semantics (the integer reference of the VTA layer)."""
    from tiletune.schedules import vta_conv2d as vc
    d = g.node(node)
    if d["op"] == "vta_pack":
        return vc.pack_data(args[0].view(np.int8), _cfg())
    if d["op"] == "vta_unpack":
        return vc.unpack_output(args[0]).view(np.uint8)
    from tiletune.compress.quantize.vta_layer import vta_requant
    layer = d["qlayer"]
    shift, bias = vta_requant(layer)
    x = vc.unpack_output(args[0]).astype(np.int64)
    w = workload(d["attrs"])
    xp = np.pad(x, ((0, 0), (0, 0), (w.pad, w.pad), (w.pad, w.pad)))
    acc = np.zeros((w.N, w.K, w.OH, w.OW), np.int64)
    for r in range(w.R):
        for s in range(w.S):
            patch = xp[:, :, r:r + w.stride * w.OH:w.stride, s:s + w.stride * w.OW:w.stride]
            acc += np.einsum("nchw,kc->nkhw", patch, layer.weight[:, :, r, s].astype(np.int64))
    acc = acc.astype(np.int32) + bias.reshape(1, -1, 1, 1)
    y = np.clip(acc >> shift, *w.clip).astype(np.int8)
    return vc.pack_output(y, _cfg())


def _layout_kernel(g: Graph, node: str, body_of) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, t = g.type(x_name), g.type(node)

    def make():
        x = tt.placeholder(in_t.shape, in_t.dtype, name="x")
        out = tt.compute(t.shape, lambda *i: body_of(x, i).astype(t.dtype), name="out")
        return tt.create_schedule(out), [x, out]

    return KernelSpec(f"{g.op(node)}|{in_t}", make, [("act", x_name)])


def lower_pack(g: Graph, node: str) -> KernelSpec:
    # out[nb, cb, h, w, b, bi] = x[nb*B + b, cb*BI + bi, h, w]
    c = _cfg()
    return _layout_kernel(g, node, lambda x, i: x[i[0] * c.batch + i[4],
                                                  i[1] * c.block_in + i[5], i[2], i[3]])


def lower_unpack(g: Graph, node: str) -> KernelSpec:
    c = _cfg()
    return _layout_kernel(g, node, lambda x, i: x[i[0] // c.batch, i[1] // c.block_out,
                                                  i[2], i[3], i[0] % c.batch,
                                                  i[1] % c.block_out])


def lower_vta_conv2d(g: Graph, node: str) -> KernelSpec:
    from tiletune.compress.quantize.vta_layer import vta_requant
    from tiletune.schedules import vta_conv2d as vc
    d = g.node(node)
    w, layer = workload(d["attrs"]), d["qlayer"]
    _, bias = vta_requant(layer)
    args = [("act", d["inputs"][0]), ("const", vc.pack_kernel(layer.weight)),
            ("const", vc.pack_bias(bias))]
    return KernelSpec(f"vta_conv2d|{w}|{layer.name}", None, args, w.flop,
                      module=lambda name: vc.build(w, None, name=name))


ops._RULES.update({"vta_pack": _pack, "vta_conv2d": _conv, "vta_unpack": _unpack})
kernels.LOWERINGS.update({"vta_pack": lower_pack, "vta_conv2d": lower_vta_conv2d,
                          "vta_unpack": lower_unpack})
