"""Task extraction: the distinct tunable kernels of a graph, with counts and FLOP share.

After the pass list (fusion and layout planning included, so a task is exactly the kernel the
graph will run: its epilogue and layouts are part of it), every conv2d / depthwise / dense
node, and every int8 ``qconv2d`` / ``qdense`` of a quantized graph (``int8_conv2d`` /
``int8_dense``), names a tuning template and its arguments. Equal ones are one task::

    for t in extract_tasks(g):
        print(t.template, t.args, t.count, f"{t.share:.1%}")

``split_budget(tasks, total)`` divides a trial (or time) budget by FLOP share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiletune.graph.ir import Graph
from tiletune.graph.records import workload_key


@dataclass
class GraphTask:
    """One tunable kernel of a graph."""

    template: str
    args: tuple
    flop: int                       # of one call
    kind: str                       # "conv2d" | "depthwise" | "dense" | "int8 conv2d" | ...
    nodes: list[str] = field(default_factory=list)
    share: float = 0.0              # of the graph's tunable FLOPs (count included)

    @property
    def count(self) -> int:
        return len(self.nodes)

    @property
    def key(self) -> str:
        return workload_key(self.template, self.args)

    def describe(self) -> str:
        a = self.args
        if self.template == "int8_conv2d":
            n, c, h, w, k, r, s, st, p, path, out = a
            return f"{self.kind} {n}x{c}x{h}x{w} k{k} {r}x{s} s{st} p{p} ({path}, {out})"
        if self.template == "int8_dense":
            m, n, k, path, out = a
            return f"{self.kind} {m}x{n}x{k} ({path}, {out})"
        if self.template in ("conv2d_auto_fused", "conv2d_nchwc_fused"):
            n, c, h, w, k, r, s, st, p = a[:9]
            shape = f"{n}x{c}x{h}x{w} k{k} {r}x{s} s{st} p{p}"
        elif self.template == "depthwise_nchwc":
            n, c, h, w, r, s = a[:6]
            shape = f"{n}x{c}x{h}x{w} dw {r}x{s} s{a[7]}"
        else:
            shape = f"{a[0]}x{a[1]}x{a[2]}"
        epi = a[-2] or "-"
        return f"{self.kind} {shape} ({epi})"


def extract_tasks(graph: Graph, records: Any = None) -> list[GraphTask]:
    """The graph's tunable kernels, largest FLOP share first."""
    from tiletune.graph.build_graph import compile_graph
    from tiletune.graph.kernels import lower_node

    g, _ = compile_graph(graph, records)
    tasks: dict[tuple[str, tuple], GraphTask] = {}
    for n in g.operators():
        plan = g.node(n).get("plan")
        if plan is None or not plan.template:
            continue
        spec = lower_node(g, n)
        key = (plan.template, plan.task_args)
        if key not in tasks:
            kind = {"nchwc": "conv2d", "depthwise": "depthwise"}.get(plan.kind, plan.kind)
            if plan.kind == "int8":
                kind = "int8 " + plan.template[len("int8_"):]
            tasks[key] = GraphTask(plan.template, plan.task_args, spec.flop, kind)
        tasks[key].nodes.append(n)
    total = sum(t.flop * t.count for t in tasks.values()) or 1
    for t in tasks.values():
        t.share = t.flop * t.count / total
    return sorted(tasks.values(), key=lambda t: -t.share)


def split_budget(tasks: list[GraphTask], total: float, minimum: float = 0) -> list[float]:
    """``total`` divided by FLOP share, each at least ``minimum`` (floats; round as needed)."""
    return [max(minimum, total * t.share) for t in tasks]
