"""Pruning a tiletune graph's weights, and channel pruning that shrinks the graph.

    pg, pruned = prune_graph(g, 0.9, "block", block=(16, 1))   # zeros in the conv weights
    sg, kept = shrink_channels(g, 0.5)                          # fewer channels, no zeros

``prune_graph`` magnitude-prunes the weight of every conv2d / dense node (names in ``skip``
stay dense; keys of ``sparsity`` as a mapping are node names) at any granularity of
:func:`tiletune.compress.prune`. ``shrink_channels`` removes the weakest output channels
of each conv whose only reader (through ReLU / Clip) is another conv, and the matching
input channels of that conv: the activation between them and both weights get smaller,
and shapes are re-inferred. BatchNorm is folded first so it follows the conv's channels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tiletune.compress.prune import Pruned, prune, shrink_filters
from tiletune.errors import CompressError
from tiletune.graph.ir import Graph
from tiletune.graph.passes.fold_batch_norm import fold_batch_norm
from tiletune.graph.passes.fold_constants import fold_constants, remove_identity

_LAYERS = ("conv2d", "dense")
_PASS_THROUGH = ("relu", "clip")


def _folded(graph: Graph) -> Graph:
    g = graph.copy()
    g.infer()
    for fold in (fold_constants, fold_batch_norm, remove_identity):
        fold(g, None)
        g.remove_unused()
    return g


def _set_const(g: Graph, node: str, index: int, value: np.ndarray) -> None:
    """Operand ``index`` of ``node`` becomes a fresh constant ``value`` (others sharing the
    old constant keep it)."""
    ins = list(g.node(node)["inputs"])
    ins[index] = g.constant(f"{node}_pruned", value)
    g.set_inputs(node, ins)


def prune_graph(graph: Graph, sparsity: float | Mapping[str, float],
                granularity: str = "element", *, block: tuple[int, int] = (16, 1),
                bank: int | None = None, skip: Sequence[str] = ()) -> tuple[Graph, Pruned]:
    """A copy of ``graph`` with its conv/dense weights magnitude-pruned (conv only at
    ``kernel`` granularity), and the result of :func:`prune` keyed by node name."""
    g = _folded(graph)
    layers = ("conv2d",) if granularity == "kernel" else _LAYERS  # dense has no kernels
    weights = {n: g.value(g.node(n)["inputs"][1]) for n in g.operators()
               if g.op(n) in layers and n not in skip
               and g.value(g.node(n)["inputs"][1]) is not None}
    if not weights:
        raise CompressError(f"graph {g.name} has no conv2d/dense layer with constant weights")
    pruned = prune(weights, sparsity, granularity, block=block, bank=bank)
    for n, w in pruned.weights.items():
        _set_const(g, n, 1, w)
    g.infer()
    return g, pruned


def _next_conv(g: Graph, n: str) -> tuple[list[str], str] | None:
    """The ReLU/Clip chain and the conv that is the only reader of conv ``n``, if so."""
    chain, cur = [], n
    while True:
        if cur in g.outputs:
            return None
        readers = g.consumers(cur)
        if len(readers) != 1:
            return None
        nxt = readers[0]
        if g.op(nxt) in _PASS_THROUGH:
            chain.append(nxt)
            cur = nxt
            continue
        if g.op(nxt) == "conv2d" and g.node(nxt)["inputs"][0] == cur and \
                g.node(nxt)["attrs"].get("groups", 1) == 1 and \
                g.value(g.node(nxt)["inputs"][1]) is not None:
            return chain, nxt
        return None


def shrink_channels(graph: Graph, sparsity: float, *, skip: Sequence[str] = ()
                    ) -> tuple[Graph, dict[str, np.ndarray]]:
    """A copy of ``graph`` where every conv -> [ReLU/Clip] -> conv pair lost the fraction
    ``sparsity`` of the first conv's output channels (smallest filters first); returns it
    and the kept channel indices per shrunk conv."""
    g = _folded(graph)
    kept: dict[str, np.ndarray] = {}
    for n in g.operators():
        d = g.node(n)
        if n in skip or d["op"] != "conv2d" or d["attrs"].get("groups", 1) != 1:
            continue
        steps = [s[0] for s in d["attrs"].get("epilogue", ())]
        w = g.value(d["inputs"][1])
        if w is None or any(s != "bias" for s in steps):
            continue
        follow = _next_conv(g, n)
        if follow is None:
            continue
        consumer = follow[1]
        bias = g.value(d["inputs"][2]) if "bias" in steps else None
        if "bias" in steps and bias is None:
            continue
        w2, b2, c2, idx = shrink_filters(w, bias, g.value(g.node(consumer)["inputs"][1]),
                                         sparsity)
        _set_const(g, n, 1, w2)
        if b2 is not None:
            _set_const(g, n, 2, b2)
        _set_const(g, consumer, 1, c2)
        kept[n] = idx
    g.remove_unused()
    g.infer()
    return g, kept
