"""The graph pass list, in order, and how to run it (printing the graph after any pass).

    fold_constants   - nodes whose operands are all constants become constants
    fold_batch_norm  - BatchNorm after a conv folds into its weights and bias; any other
                       becomes a per-channel mul + add
    remove_identity  - Identity nodes disappear (their readers read the source)
    fuse_epilogues   - conv/dense absorb their following bias add, per-channel scale,
                       residual add, ReLU and Clip into one kernel (``fusion=False`` skips it)
    plan_layouts     - each conv picks its algorithm and config; activations stay NCHW[x]c
                       between blocked kernels; layout_transform nodes only where a consumer
                       needs another layout
    plan_memory      - activation buffers reused by liveness (views alias their source)

Every pass takes ``(graph, ctx)`` and rewrites the graph in place. ``run_passes(g, ctx,
dump="dir")`` (or ``TILETUNE_DUMP_GRAPH=dir``) writes the graph after each pass as numbered
text files; ``print_after=True`` prints it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiletune.graph.ir import Graph
from tiletune.graph.passes.fold_batch_norm import fold_batch_norm
from tiletune.graph.passes.fold_constants import fold_constants, remove_identity
from tiletune.graph.passes.fuse import fuse_epilogues
from tiletune.graph.passes.layout import plan_layouts
from tiletune.graph.passes.memory import MemoryPlan, plan_memory
from tiletune.graph.records import TunedConfigs


@dataclass
class PassContext:
    """What the passes share: tuned configs (layouts follow them), options, results."""

    configs: TunedConfigs = field(default_factory=TunedConfigs)
    fusion: bool = True
    memory: MemoryPlan | None = None
    notes: dict[str, Any] = field(default_factory=dict)


PASSES: list[tuple[str, Callable[[Graph, PassContext], None]]] = [
    ("fold_constants", fold_constants),
    ("fold_batch_norm", fold_batch_norm),
    ("remove_identity", remove_identity),
    ("fuse_epilogues", fuse_epilogues),
    ("plan_layouts", plan_layouts),
    ("plan_memory", plan_memory),
]


def run_passes(g: Graph, ctx: PassContext | None = None, dump: str | os.PathLike | None = None,
               print_after: bool = False, stop_after: str | None = None) -> Graph:
    """Run the pass list on ``g`` (in place) and return it."""
    ctx = ctx or PassContext()
    dump = dump or os.environ.get("TILETUNE_DUMP_GRAPH") or None
    if dump:
        os.makedirs(dump, exist_ok=True)
        _write(dump, 0, "input", g)
    for i, (name, fn) in enumerate(PASSES, 1):
        fn(g, ctx)
        g.remove_unused()
        if dump:
            _write(dump, i, name, g)
        if print_after:
            print(f"# after {name}\n{g}\n")
        if name == stop_after:
            break
    return g


def _write(directory: str | os.PathLike, i: int, name: str, g: Graph) -> None:
    with open(os.path.join(directory, f"{i:02d}_{name}.txt"), "w") as f:
        f.write(str(g) + "\n")
