"""A quantized graph on VTA + CPU: the layers VTA can run go to the simulator, the rest
(the first conv, pooling, residual adds, the classifier) stay on the CPU kernels.

    qg = quantize_graph(g, calib, method="percentile", vta=True)   # power-of-two scales
    vg, placement = place_on_vta(qg)                # placement[node] = (target, reason)
    m = tiletune.graph.build(vg); y = m(x)          # equals run_reference(qg.graph, x)
    print(vta_report(m, x))                         # simulated VTA + measured CPU time

``place_on_vta`` rewrites each ``qconv2d`` that :func:`place` accepts (power-of-two scales,
zero points 0, ReLU, channels in blocks of 16) as ``vta_pack -> vta_conv2d ->
vta_unpack``; VTA's add + shift-right requantization gives the CPU epilogue's bits, so the
graph stays bit-exact.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass

from tiletune.compress.quantize.graph import QuantizedGraph
from tiletune.compress.quantize.vta_layer import place, vta_requant
from tiletune.graph import vta_ops  # noqa: F401 - registers the VTA operators
from tiletune.graph.ir import Graph


def place_on_vta(qg: QuantizedGraph) -> tuple[Graph, dict[str, tuple[str, str]]]:
    """A copy of the quantized graph with VTA-able convs on VTA; where each layer runs."""
    from tiletune.schedules.vta_conv2d import VTAConv2dWorkload
    g = qg.graph.copy()
    placement: dict[str, tuple[str, str]] = {}
    for n in g.operators():
        if g.op(n) not in ("qconv2d", "qdense"):
            continue
        layer = g.node(n)["qlayer"]
        x = g.node(n)["inputs"][0]
        if g.op(n) == "qdense":
            placement[n] = ("cpu", "dense layers have no VTA template here")
            continue
        target, reason = place(layer, g.type(x).shape)
        placement[n] = (target, reason)
        if target != "vta":
            continue
        N, C, H, W = g.type(x).shape
        K, _, R, S = layer.weight.shape
        shift, _ = vta_requant(layer)
        w = VTAConv2dWorkload(N, C, H, W, K, R, S, layer.stride, layer.pad, shift, (0, 127),
                              True)
        p = g.add(g.unique_name(f"{n}_vta_in"), "vta_pack", [x])
        c = g.add(g.unique_name(f"{n}_vta"), "vta_conv2d", [p], {"workload": astuple(w)},
                  infer=False)
        g.node(c)["qlayer"] = layer
        g.infer_node(c)
        u = g.add(g.unique_name(f"{n}_vta_out"), "vta_unpack", [c])
        g.replace_uses(n, u)
    g.remove_unused()
    return g, placement


@dataclass
class LayerTime:
    node: str
    op: str
    target: str  # "vta" (simulated) or "cpu" (measured)
    seconds: float


class VTAReport:
    """Per-layer time of a VTA + CPU graph: simulated VTA seconds, measured CPU seconds."""

    def __init__(self, rows: list[LayerTime]) -> None:
        self.rows = rows

    @property
    def vta_seconds(self) -> float:
        return sum(r.seconds for r in self.rows if r.target == "vta")

    @property
    def cpu_seconds(self) -> float:
        return sum(r.seconds for r in self.rows if r.target == "cpu")

    @property
    def total_seconds(self) -> float:
        return self.vta_seconds + self.cpu_seconds

    def __str__(self) -> str:
        width = max([len(r.node) for r in self.rows] + [4])
        lines = [f"{'node':<{width}}  {'op':<16} {'target':<6} {'ms':>9}"]
        lines += [f"{r.node:<{width}}  {r.op:<16} {r.target:<6} {r.seconds * 1e3:9.3f}"
                  for r in self.rows]
        lines.append(f"VTA (simulated) {self.vta_seconds * 1e3:.3f} ms + CPU "
                     f"{self.cpu_seconds * 1e3:.3f} ms = {self.total_seconds * 1e3:.3f} ms")
        return "\n".join(lines)


def vta_report(module, *inputs, number: int = 3) -> VTAReport:
    """Run ``module`` (a built VTA + CPU graph) and time each step: VTA kernels by their
    simulated cycles, CPU kernels by the graph profiler."""
    from tiletune.backends.vta.module import VTAModule
    prof = module.profile(*inputs, number=number)
    rows = []
    for step, (node, op, t) in zip(module.steps, prof.rows):
        k = module.kernels[step.kernel]
        if isinstance(k, VTAModule):
            rows.append(LayerTime(node, op, "vta", float(k.seconds)))
        else:
            rows.append(LayerTime(node, op, "cpu", t))
    return VTAReport(rows)
