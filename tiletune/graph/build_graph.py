"""``graph.build``: run the pass list, compile one kernel per distinct fused operator, and
assemble the executor's call plan.

    m = tiletune.graph.build(g, target="llvm", records="tuned.jsonl")   # records optional
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from tiletune.errors import GraphError
from tiletune.graph import qops, sparse_ops, vta_ops  # noqa: F401  (register their ops)
from tiletune.graph.ir import Graph
from tiletune.graph.kernels import KernelSpec, lower_node
from tiletune.graph.passes import PassContext, run_passes
from tiletune.graph.passes.memory import MemoryPlan
from tiletune.graph.records import TunedConfigs
from tiletune.graph.runtime import Binding, GraphModule, Step


def compile_graph(graph: Graph, records: Any = None, fusion: bool = True,
                  dump: str | os.PathLike | None = None) -> tuple[Graph, PassContext]:
    """The graph after the pass list (a copy; ``graph`` is not changed) and the context."""
    configs = records if isinstance(records, TunedConfigs) else TunedConfigs(records)
    ctx = PassContext(configs=configs, fusion=fusion)
    g = graph.copy()
    g.infer()
    run_passes(g, ctx, dump)
    return g, ctx


def build_graph(graph: Graph, target: str = "llvm", records: Any = None, *,
                fusion: bool = True, opt_level: int = 2, dump: str | os.PathLike | None = None,
                num_threads: int | None = None) -> GraphModule:
    """Compile ``graph``; kernels use the fastest config of ``records`` (a path, several,
    or a ``TunedConfigs``) when it has one, else their heuristic default. ``opt_level`` 2
    is the LLVM pipeline the tuner measures with (3 compiles 2x slower for no speed-up)."""
    import tiletune as tt

    if str(target).split()[0] != "llvm":
        raise GraphError(f"graph.build supports target 'llvm', got {target!r}")
    if not isinstance(graph, Graph):
        raise GraphError(f"graph.build needs a tiletune.graph.Graph, got {type(graph).__name__}"
                         " (import a model with tiletune.frontend.from_onnx)")
    g, ctx = compile_graph(graph, records, fusion, dump)
    memory: MemoryPlan = ctx.memory
    kernels: list[Any] = []
    kernel_index: dict[str, int] = {}
    constants: list[np.ndarray] = []
    const_index: dict[int, int] = {}
    steps: list[Step] = []
    tuned = untuned = 0

    def buf(n: str) -> tuple:
        t = g.type(n)
        return ("buf", memory.storage_of[n], tuple(t.physical_shape), t.dtype)

    def const(arr: np.ndarray) -> tuple:
        if id(arr) not in const_index:
            const_index[id(arr)] = len(constants)
            constants.append(arr)
        return ("const", const_index[id(arr)])

    for n in g.operators():
        d = g.node(n)
        if d.get("alias"):
            continue
        spec: KernelSpec = lower_node(g, n)
        if spec.key not in kernel_index:
            name = f"k{len(kernels)}_{d['op']}"
            if spec.module is not None:  # e.g. sparse kernels, built as loop IR
                kernels.append(spec.module(name))
            else:
                s, tensors = spec.make()
                kernels.append(tt.build(s, tensors, target="llvm", name=name,
                                        opt_level=opt_level))
            kernel_index[spec.key] = len(kernels) - 1
        plan = d.get("plan")
        if plan is not None and plan.template:
            tuned, untuned = tuned + plan.tuned, untuned + (not plan.tuned)
        args = tuple(buf(src) if kind == "act" else const(src) for kind, src in spec.args)
        steps.append(Step(n, _label(g, n), kernel_index[spec.key], args + (buf(n),)))
    inputs = [Binding(i, g.type(i).shape, g.type(i).dtype, memory.storage_of[i])
              for i in g.inputs]
    outputs = [Binding(o, g.type(o).shape, g.type(o).dtype, memory.storage_of[o])
               for o in g.outputs]
    meta = {"name": g.name, "fusion": fusion, "tuned_kernels": tuned,
            "untuned_kernels": untuned, "peak_activation_bytes": memory.peak_bytes,
            "naive_activation_bytes": memory.naive_bytes}
    m = GraphModule(kernels, steps, memory.sizes, constants, inputs, outputs, meta)
    if num_threads:
        m.set_num_threads(num_threads)
    return m


def _label(g: Graph, n: str) -> str:
    """``conv2d+bias+relu`` style name of a fused operator (for profiles)."""
    d = g.node(n)
    steps = d["attrs"].get("epilogue", ())
    plan = d.get("plan")
    head = d["op"] if plan is None or plan.kind in ("dense", "nchwc") else \
        f"{d['op']}.{plan.kind}"
    return head + "".join("+" + (s[0] if s[0] != "clip" else "clip") for s in steps)
