"""Sparse kernels for a pruned graph's convolutions, where they are measured faster.

    pg, _ = prune_graph(g, 0.9)
    sg, choices = use_sparse_kernels(pg, threads=1)   # choices[node].kind: dense/csr/bsr
    m = tiletune.graph.build(sg)

Each conv2d with at least ``min_sparsity`` zero weights (groups 1, no dilation, square
stride and symmetric pads, an epilogue of at most a bias) is timed by
``tuner.search.sparse_select.select_conv_kernel`` (the dense fp32 kernel against CSR and
BSR kernels, a few configs each). When a sparse kernel wins, the node becomes (before /
after)::

    %c = conv2d(%x, %w, %b) epilogue=bias  ->  %p = pad(%x) pads=(p, p, p, right)
                                               %f = reshape(%p) shape=(-1,)
                                               %s = sparse_conv2d(%f) workload=... config=...
                                               %o = reshape(%s) shape=(N, K, OH, OWp)
                                               %k = crop_width(%o) width=OW
                                               %c = add(%k, %b)          (with a bias)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import Any

import numpy as np

from tiletune.graph import sparse_ops  # noqa: F401 - registers the sparse operators
from tiletune.graph.ir import Graph


def _eligible(g: Graph, n: str, min_sparsity: float) -> bool:
    d = g.node(n)
    a = d["attrs"]
    w = g.value(d["inputs"][1])
    steps = [s[0] for s in a.get("epilogue", ())]
    return (w is not None and w.ndim == 4 and float((w == 0).mean()) >= min_sparsity
            and a.get("groups", 1) == 1 and tuple(a["dilations"]) == (1, 1)
            and len(set(a["strides"])) == 1 and len(set(a["pads"])) == 1
            and all(s == "bias" for s in steps)
            and ("bias" not in steps or g.value(d["inputs"][2]) is not None))


def use_sparse_kernels(graph: Graph, *, threads: int = 1, min_sparsity: float = 0.5,
                       select: Callable[..., Any] | None = None
                       ) -> tuple[Graph, dict[str, Any]]:
    """A copy of ``graph`` whose pruned convs run sparse kernels where faster, and the
    :class:`KernelChoice` of every conv that was measured (keyed by node)."""
    from tiletune.schedules import sparse_conv2d as sc
    if select is None:
        from tiletune.tuner.search.sparse_select import select_conv_kernel as select
    g = graph.copy()
    g.infer()
    choices: dict[str, Any] = {}
    for n in g.operators():
        if g.op(n) != "conv2d" or not _eligible(g, n, min_sparsity):
            continue
        d = g.node(n)
        x, w = d["inputs"][0], g.value(d["inputs"][1])
        shape = g.type(x).shape
        stride, pad = int(d["attrs"]["strides"][0]), int(d["attrs"]["pads"][0])
        choice = select(w, shape, stride, pad, threads=threads)
        choices[n] = choice
        if choice.kind == "dense":
            continue
        cfg = {k: v for k, v in choice.config.items() if k != "block"}
        block = int(choice.config.get("block", 1))
        nnz = _nnz(w, choice.kind, block)
        N, C, H, W = shape
        K, _, R, S = w.shape
        wl = sc.SparseConv2dWorkload(N, C, H, W, K, R, S, stride, pad, choice.kind, nnz,
                                     block if choice.kind == "bsr" else 1)
        owp, ph, pwp = sc.padded_width(wl, cfg)
        p = g.add(g.unique_name(f"{n}_pad"), "pad", [x], {"pads": (pad, pad, pad,
                                                                   pwp - W - pad)})
        f = g.add(g.unique_name(f"{n}_flat"), "reshape", [p], {"shape": (-1,)})
        s = g.add(g.unique_name(f"{n}_sparse"), "sparse_conv2d", [f],
                  {"workload": astuple(wl), "config": tuple(sorted(cfg.items()))},
                  infer=False)
        g.node(s)["sparse"] = np.ascontiguousarray(w, np.float32)
        g.infer_node(s)
        o = g.add(g.unique_name(f"{n}_out"), "reshape", [s], {"shape": (N, K, wl.OH, owp)})
        out = g.add(g.unique_name(f"{n}_crop"), "crop_width", [o], {"width": wl.OW})
        if len(d["inputs"]) > 2:
            b = g.constant(f"{n}_bias", g.value(d["inputs"][2]).reshape(1, K, 1, 1))
            out = g.add(g.unique_name(f"{n}_bias_add"), "add", [out, b])
        g.replace_uses(n, out)
    g.remove_unused()
    return g, choices


def _nnz(w: np.ndarray, fmt: str, block: int) -> int:
    from tiletune.schedules.sparse_format import to_bsr, to_csr
    return to_csr(w).nnz if fmt == "csr" else to_bsr(w, block).nblocks

