"""The graph IR: a network is a ``networkx.DiGraph`` of operator nodes.

Every node produces exactly one tensor and is named by it. Node data:

* ``op``     - operator name (see ``graph/ops.py`` for the set and their attributes);
* ``inputs`` - the producer node of each operand, in order (a node may appear twice);
* ``attrs``  - plain attributes (ints, tuples, strings, the epilogue steps);
* ``value``  - the array of a ``constant`` node (weights, biases, folded tensors);
* ``type``   - the :class:`TensorType` of its output (shape, dtype, layout).

Edges ``producer -> consumer`` carry that ``type`` too (``g.nx.edges[u, v]["type"]``), so a
pass can read a tensor's shape/layout on the edge it follows. ``Graph.inputs`` and
``Graph.outputs`` name the network's input and output nodes. ``print(g)`` shows one node a
line in topological order::

    %conv1 = conv2d(%input, %w1, %b1) strides=(2, 2) pads=(3, 3, 3, 3) : float32[1, 64, 112, 112]
"""
from __future__ import annotations

import copy as _copy
import re
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from tiletune.errors import GraphError

_BLOCKED = re.compile(r"^NCHW(\d+)c$")


@dataclass(frozen=True)
class TensorType:
    """A tensor's logical shape (NCHW for 4-D activations), dtype and memory layout.

    ``layout`` is ``""`` for plain row-major storage of the logical shape, or ``"NCHW{b}c"``
    for the channel-blocked layout ``[N, C/b, H, W, b]`` (shape stays logical).
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = ""

    @property
    def block(self) -> int:
        """Channel block of a blocked layout (0 for plain)."""
        m = _BLOCKED.match(self.layout)
        return int(m.group(1)) if m else 0

    @property
    def physical_shape(self) -> tuple[int, ...]:
        b = self.block
        if not b:
            return self.shape
        n, c, h, w = self.shape
        return (n, c // b, h, w, b)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def with_layout(self, layout: str) -> TensorType:
        return TensorType(self.shape, self.dtype, layout)

    def __str__(self) -> str:
        s = f"{self.dtype}[{', '.join(map(str, self.shape))}]"
        return f"{s} {self.layout}" if self.layout else s


def blocked(block: int) -> str:
    """The layout name of channel block ``block`` (``""``, plain, for 0)."""
    return f"NCHW{block}c" if block else ""


class Graph:
    """A network: operator nodes in a DiGraph, plus its input and output node names."""

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.nx = nx.DiGraph()
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._order = 0

    # ------------------------------------------------------------------ building
    def add(self, name: str, op: str, inputs: list[str] | tuple[str, ...] = (),
            attrs: dict[str, Any] | None = None, value: np.ndarray | None = None,
            infer: bool = True) -> str:
        """Add node ``name`` (fails if it exists); its type is inferred from its inputs."""
        if name in self.nx:
            raise GraphError(f"graph {self.name} already has a node named {name!r}")
        for src in inputs:
            if src not in self.nx:
                raise GraphError(f"node {name!r} ({op}) reads {src!r}, which is not in the graph")
        self.nx.add_node(name, op=op, inputs=list(inputs), attrs=dict(attrs or {}),
                         value=value, type=None, order=self._order)
        self._order += 1
        for src in inputs:
            self.nx.add_edge(src, name)
        if infer:
            self.infer_node(name)
        return name

    def unique_name(self, base: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_.]", "_", base) or "node"
        name, k = base, 1
        while name in self.nx:
            name, k = f"{base}_{k}", k + 1
        return name

    def constant(self, base: str, value: np.ndarray) -> str:
        """Add a constant node holding ``value`` (a fresh name from ``base``)."""
        return self.add(self.unique_name(base), "constant", value=np.asarray(value))

    def infer_node(self, name: str) -> TensorType:
        """Infer (and store) the output type of one node from its inputs' types."""
        from tiletune.graph.ops import infer_type
        d = self.nx.nodes[name]
        types = [self.type(i) for i in d["inputs"]]
        t = infer_type(self, name, d["op"], types, d["attrs"], d["value"])
        if d["type"] is not None and d["type"].layout and t.shape == d["type"].shape:
            t = t.with_layout(d["type"].layout)
        d["type"] = t
        for v in self.nx.successors(name):
            self.nx.edges[name, v]["type"] = t
        return t

    def infer(self) -> None:
        """Shape and dtype inference over the whole graph (in topological order)."""
        for n in self.topo():
            self.infer_node(n)

    def set_layout(self, name: str, layout: str) -> None:
        d = self.nx.nodes[name]
        d["type"] = d["type"].with_layout(layout)
        for v in self.nx.successors(name):
            self.nx.edges[name, v]["type"] = d["type"]

    # ------------------------------------------------------------------ reading
    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def node(self, name: str) -> dict[str, Any]:
        try:
            return self.nx.nodes[name]
        except KeyError:
            raise GraphError(f"graph {self.name} has no node {name!r}") from None

    def op(self, name: str) -> str:
        return self.node(name)["op"]

    def type(self, name: str) -> TensorType:
        t = self.node(name)["type"]
        if t is None:
            raise GraphError(f"node {name!r} has no inferred type yet")
        return t

    def value(self, name: str) -> np.ndarray | None:
        """The array of a constant node (None for any other node)."""
        d = self.node(name)
        return d["value"] if d["op"] == "constant" else None

    def consumers(self, name: str) -> list[str]:
        return sorted(self.nx.successors(name), key=lambda v: self.nx.nodes[v]["order"])

    def topo(self) -> list[str]:
        """Node names in a deterministic topological order (insertion order breaks ties)."""
        try:
            return list(nx.lexicographical_topological_sort(
                self.nx, key=lambda n: self.nx.nodes[n]["order"]))
        except nx.NetworkXUnfeasible:
            raise GraphError(f"graph {self.name} has a cycle") from None

    def operators(self) -> list[str]:
        """Nodes that compute (not inputs, not constants), in topological order."""
        return [n for n in self.topo() if self.op(n) not in ("input", "constant")]

    # ------------------------------------------------------------------ rewriting
    def set_inputs(self, name: str, inputs: list[str]) -> None:
        """Replace the operands of ``name`` (edges follow)."""
        d = self.node(name)
        for src in set(d["inputs"]):
            self.nx.remove_edge(src, name)
        d["inputs"] = list(inputs)
        for src in inputs:
            self.nx.add_edge(src, name, type=self.node(src)["type"])

    def replace_uses(self, old: str, new: str) -> None:
        """Every reader of ``old`` reads ``new`` instead (graph outputs too)."""
        for v in self.consumers(old):
            self.set_inputs(v, [new if i == old else i for i in self.node(v)["inputs"]])
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove(self, name: str) -> None:
        if self.consumers(name) or name in self.outputs:
            raise GraphError(f"cannot remove {name!r}: it is still used")
        self.nx.remove_node(name)
        if name in self.inputs:
            self.inputs.remove(name)

    def remove_unused(self) -> int:
        """Drop nodes no output depends on (the inputs stay); returns how many."""
        live = set(self.outputs)
        for o in self.outputs:
            live |= nx.ancestors(self.nx, o)
        dead = [n for n in self.nx if n not in live and n not in self.inputs]
        self.nx.remove_nodes_from(dead)
        return len(dead)

    def copy(self) -> Graph:
        """A copy sharing constant arrays (passes replace arrays, never mutate them)."""
        g = Graph(self.name)
        g.nx = self.nx.copy()
        for n in g.nx:
            d = g.nx.nodes[n]
            d["inputs"] = list(d["inputs"])
            d["attrs"] = _copy.copy(d["attrs"])
        g.inputs, g.outputs, g._order = list(self.inputs), list(self.outputs), self._order
        return g

    def count(self) -> dict[str, int]:
        """Number of nodes of each op (constants and inputs included)."""
        out: dict[str, int] = {}
        for n in self.nx:
            out[self.op(n)] = out.get(self.op(n), 0) + 1
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        from tiletune.graph.printer import format_graph
        return format_graph(self)

    def __repr__(self) -> str:
        ops = len(self.operators())
        return f"<tiletune.graph.Graph {self.name}: {ops} operators, {len(self)} nodes>"
