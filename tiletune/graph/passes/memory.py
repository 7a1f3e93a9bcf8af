"""Static memory planning: activation buffers are reused once their tensor is dead.

Kernels run in topological order. Each computed tensor gets a storage: a free one (the
smallest that fits, else the largest free one, grown) or a new one; after a node runs, the
storages of tensors it read for the last time are freed (a kernel's output never shares a
storage with its inputs). Views (flatten/reshape/identity of a plain activation) alias their
source's storage. Graph inputs and outputs get storages too (outputs are never reused).

``MemoryPlan.peak_bytes`` is the sum of the storages; ``naive_bytes`` is one buffer per
tensor. Node data gets ``storage`` (its storage id) and ``alias`` (True for a view).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiletune.graph.ir import Graph
from tiletune.graph.ops import VIEWS

ALIGN = 64


@dataclass
class MemoryPlan:
    storage_of: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    naive_bytes: int = 0

    @property
    def peak_bytes(self) -> int:
        return sum(self.sizes)

    def summary(self) -> str:
        ratio = self.peak_bytes / self.naive_bytes if self.naive_bytes else 0.0
        return (f"activation memory: {self.peak_bytes / 2**20:.2f} MiB in {len(self.sizes)} "
                f"buffers (one buffer per tensor: {self.naive_bytes / 2**20:.2f} MiB, "
                f"{ratio:.0%})")


def is_view(g: Graph, n: str) -> bool:
    d = g.node(n)
    if d["op"] not in VIEWS:
        return False
    src = d["inputs"][0]
    return g.op(src) != "constant" and not g.type(src).layout and not (
        n in g.outputs and (src in g.inputs or src in g.outputs))


def _round(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def plan_memory(g: Graph, ctx: Any = None) -> MemoryPlan:
    order = g.operators()
    pos = {n: i for i, n in enumerate(order)}
    root: dict[str, str] = {}
    for n in g.inputs + order:
        root[n] = root[g.node(n)["inputs"][0]] if n in pos and is_view(g, n) else n
    end = float("inf")
    last: dict[str, float] = {}
    for n in g.inputs + order:
        r = root[n]
        uses = [pos[c] for c in g.consumers(n) if c in pos]
        last[r] = max(last.get(r, -1), *uses, pos.get(n, -1))
        if n in g.outputs:
            last[r] = end
    plan = MemoryPlan()
    free: list[int] = []

    def allocate(n: str) -> None:
        need = _round(g.type(n).nbytes)
        plan.naive_bytes += need
        fits = [s for s in free if plan.sizes[s] >= need]
        if fits:
            sid = min(fits, key=lambda s: plan.sizes[s])
        elif free:
            sid = max(free, key=lambda s: plan.sizes[s])
            plan.sizes[sid] = need
        else:
            sid = len(plan.sizes)
            plan.sizes.append(need)
        if sid in free:
            free.remove(sid)
        plan.storage_of[n] = sid

    for n in g.inputs:
        allocate(n)
    dying: dict[int, list[str]] = {}
    for r, t in last.items():
        if t != end:
            dying.setdefault(int(t), []).append(r)
    for n in g.inputs:  # an unused input is dead from the start
        if last[n] == -1:
            free.append(plan.storage_of[n])
    for i, n in enumerate(order):
        if root[n] != n:
            plan.storage_of[n] = plan.storage_of[root[n]]
        else:
            allocate(n)
        for r in dying.get(i, []):
            free.append(plan.storage_of[r])
    for n in g.nx:
        d = g.node(n)
        if n in plan.storage_of:
            d["storage"] = plan.storage_of[n]
            d["alias"] = root.get(n, n) != n
    if ctx is not None:
        ctx.memory = plan
    return plan
