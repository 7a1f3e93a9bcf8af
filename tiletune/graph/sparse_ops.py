"""Sparse convolution in the graph (written by ``tiletune.compress.use_sparse_kernels``).

=================  ==============================  =========================================
op                 inputs                          attrs / node data
=================  ==============================  =========================================
sparse_conv2d      x (float32, the flat padded     workload (a SparseConv2dWorkload as a
                   input of the kernel)            tuple), config; node data ``sparse``: the
                                                   pruned OIHW weight  -> float32 flat
                                                   ``[N*K*OH*OWp]`` (output width padded)
crop_width         x (N, C, H, W)                  width          -> (N, C, H, width)
=================  ==============================  =========================================

A pruned conv becomes ``pad -> reshape(-1) -> sparse_conv2d -> reshape -> crop_width``
(then ``add`` of its bias): the kernel reads its zero-padded input flattened and writes
whole register tiles (see ``schedules/sparse_conv2d``). Importing this module registers
the rules with ``graph.ops`` and the kernels with ``graph.kernels``.
"""
from __future__ import annotations

import numpy as np

import tiletune as tt
from tiletune.errors import GraphError
from tiletune.graph import kernels, ops
from tiletune.graph.ir import Graph, TensorType
from tiletune.graph.kernels import KernelSpec, simple_schedule


def workload(attrs: dict):
    from tiletune.schedules.sparse_conv2d import SparseConv2dWorkload
    return SparseConv2dWorkload(*attrs["workload"])


def _sparse_conv2d(name, op, ins, attrs, value) -> TensorType:
    from tiletune.schedules.sparse_conv2d import padded_width
    w = workload(attrs)
    cfg = dict(attrs["config"])
    owp, ph, pwp = padded_width(w, cfg)
    if ins[0].shape != (w.N * w.C * ph * pwp,) or ins[0].dtype != "float32":
        raise GraphError(f"node {name!r} ({op}): needs its flat padded float32 input of "
                         f"{w.N * w.C * ph * pwp} elements, got {ins[0]}")
    return TensorType((w.N * w.K * w.OH * owp,), "float32")


def _crop_width(name, op, ins, attrs, value) -> TensorType:
    x = ins[0]
    if len(x.shape) != 4 or not 0 < attrs["width"] <= x.shape[3]:
        raise GraphError(f"node {name!r} ({op}): cannot crop {x} to width {attrs['width']}")
    return TensorType(x.shape[:3] + (attrs["width"],), x.dtype)


def evaluate(g: Graph, node: str, args: list[np.ndarray]) -> np.ndarray:
    """NumPy semantics (the dense convolution of the pruned weight, in the padded layout)."""
    from tiletune.graph.reference import _conv2d
    from tiletune.schedules.sparse_conv2d import padded_width
    d = g.node(node)
    if d["op"] == "crop_width":
        return args[0][..., :d["attrs"]["width"]]
    w = workload(d["attrs"])
    owp, ph, pwp = padded_width(w, dict(d["attrs"]["config"]))
    x = args[0].reshape(w.N, w.C, ph, pwp)
    y = _conv2d(x, d["sparse"], {"strides": (w.stride, w.stride), "dilations": (1, 1),
                                 "pads": (0, 0, 0, 0)})
    out = np.zeros((w.N, w.K, w.OH, owp), y.dtype)
    out[..., :w.OW] = y[..., :w.OW]
    return out.reshape(-1)


def lower_sparse_conv2d(g: Graph, node: str) -> KernelSpec:
    from tiletune.schedules import sparse_conv2d as sc
    from tiletune.schedules.sparse_format import offsets, to_bsr, to_csr
    d = g.node(node)
    w, cfg = workload(d["attrs"]), dict(d["attrs"]["config"])
    weight = d["sparse"]
    fmt_w = to_csr(weight) if w.fmt == "csr" else to_bsr(weight, w.block)
    _, ph, pwp = sc.padded_width(w, cfg)
    offs = offsets(fmt_w.cols, w.R, w.S, ph * pwp, pwp)
    vals = np.ascontiguousarray(fmt_w.vals.reshape(-1), np.float32)
    if w.nnz == 0:  # the kernel's buffers have one element; no row reads it
        offs, vals = np.zeros(1, np.int32), np.zeros(max(1, w.block), np.float32)
    args = [("act", d["inputs"][0]), ("const", np.ascontiguousarray(fmt_w.row_ptr)),
            ("const", np.ascontiguousarray(offs)), ("const", vals)]
    return KernelSpec(f"sparse_conv2d|{w}|{sorted(cfg.items())}", None, args,
                      2 * w.nnz * w.block * w.N * w.OH * w.OW,
                      module=lambda name: sc.build(w, cfg, name=name))


def lower_crop_width(g: Graph, node: str) -> KernelSpec:
    (x_name,) = g.node(node)["inputs"]
    in_t, t = g.type(x_name), g.type(node)

    def make():
        x = tt.placeholder(in_t.shape, in_t.dtype, name="x")
        out = tt.compute(t.shape, lambda *i: x[i], name="out")
        s = tt.create_schedule(out)
        simple_schedule(s, out)
        return s, [x, out]

    return KernelSpec(f"crop_width|{in_t}|{t}", make, [("act", x_name)])


ops._RULES.update({"sparse_conv2d": _sparse_conv2d, "crop_width": _crop_width})
kernels.LOWERINGS.update({"sparse_conv2d": lower_sparse_conv2d,
                          "crop_width": lower_crop_width})
SPARSE_OPS = ("sparse_conv2d", "crop_width")
