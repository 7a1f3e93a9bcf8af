"""Readable text of a graph: one node a line, topological order, types after the colon.

    graph tiny (inputs: %x)
      %x = input : float32[1, 3, 8, 8]
      %w = constant : float32[4, 3, 3, 3]
      %conv = conv2d(%x, %w) strides=(1, 1) pads=(1, 1, 1, 1) : float32[1, 4, 8, 8]
      return %conv
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiletune.graph.ir import Graph


def _attr(v: Any) -> str:
    if isinstance(v, tuple) and v and all(isinstance(s, tuple) for s in v):  # epilogue steps
        return "+".join(s[0] if s[0] != "clip" else f"clip({s[1]:g},{s[2]:g})" for s in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_node(g: Graph, name: str) -> str:
    d = g.node(name)
    args = ", ".join(f"%{i}" for i in d["inputs"])
    head = f"%{name} = {d['op']}" + (f"({args})" if d["inputs"] else "")
    attrs = " ".join(f"{k}={_attr(v)}" for k, v in sorted(d["attrs"].items())
                     if v not in (None, (), ""))
    t = d["type"]
    return f"{head}{' ' + attrs if attrs else ''} : {t if t is not None else '?'}"


def format_graph(g: Graph) -> str:
    lines = [f"graph {g.name} (inputs: {', '.join('%' + i for i in g.inputs)})"]
    lines += ["  " + format_node(g, n) for n in g.topo()]
    lines.append("  return " + ", ".join(f"%{o}" for o in g.outputs))
    return "\n".join(lines)
