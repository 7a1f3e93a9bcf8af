"""Whole networks: the graph IR, its passes, task extraction and the graph runtime.

    from tiletune import frontend, graph
    g = frontend.from_onnx("resnet18.onnx")         # print(g)
    m = graph.build(g, target="llvm", records="tuned.jsonl")
    y = m(x); m.set_num_threads(2); m.profile(x)
    m.export("resnet18.tt"); m2 = graph.load("resnet18.tt")

``graph.load`` (and running a loaded module) needs neither the compiler nor the tuner.
"""
from tiletune.graph.ir import Graph, TensorType
from tiletune.graph.runtime import GraphModule, load


def build(graph, target: str = "llvm", records=None, **options):
    """Compile a graph to a :class:`GraphModule`; see ``graph.build_graph.build_graph``."""
    from tiletune.graph.build_graph import build_graph
    return build_graph(graph, target=target, records=records, **options)


__all__ = ["Graph", "GraphModule", "TensorType", "build", "load"]
