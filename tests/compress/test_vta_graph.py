"""A quantized graph on VTA + CPU: VTA-able convs on the simulator, the first conv (signed
input), pooling and the classifier on the CPU; bit-exact vs the NumPy integer reference,
with a per-layer report of simulated VTA time and CPU time."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import place_on_vta, quantize_graph, run_reference, vta_report  # noqa: E402
from tiletune.frontend.builder import OnnxBuilder  # noqa: E402


def _net():
    b = OnnxBuilder("v", (1, 16, 8, 8), seed=8)
    x = b.relu(b.conv(b.input, 16, 3, 1, 1))          # signed input: CPU
    x = b.relu(b.conv(x, 16, 3, 1, 1))                # VTA
    x = b.max_pool(x, 2, 2)                           # CPU (fp32, exact)
    x = b.relu(b.conv(x, 32, 3, 1, 1))                # VTA
    return b.finish(b.gemm(b.flatten(x), 10))         # CPU


def test_vta_plus_cpu_graph_is_bit_exact_and_reports_time():
    g = frontend.from_onnx(_net())
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 16, 8, 8)).astype(np.float32) for _ in range(4)]
    qg = quantize_graph(g, calib, method="minmax", vta=True)
    vg, placement = place_on_vta(qg)
    targets = [t for t, _ in placement.values()]
    assert targets.count("vta") == 2 and targets.count("cpu") == 2, placement
    assert vg.count()["vta_conv2d"] == 2
    m = graph.build(vg)
    for seed in (1, 2):
        x = np.random.default_rng(seed).standard_normal((1, 16, 8, 8)).astype(np.float32)
        y = m(x)
        np.testing.assert_array_equal(y, run_reference(qg.graph, x)[0])  # CPU-only semantics
        np.testing.assert_array_equal(y, run_reference(vg, x)[0])
    rep = vta_report(m, x, number=1)
    assert rep.vta_seconds > 0 and rep.cpu_seconds > 0
    assert rep.total_seconds == pytest.approx(rep.vta_seconds + rep.cpu_seconds)
    assert sum(r.target == "vta" for r in rep.rows) == 2
    assert "VTA (simulated)" in str(rep)


def test_residual_network_on_vta_and_cpu_is_bit_exact():
    """A ResNet block (an RGB first conv, a residual add with a strided 1x1 downsample,
    pooling, a classifier): conv + ReLU layers on VTA, the rest on the CPU, bit-exact."""
    from tests.graph.helpers import residual_model
    g = frontend.from_onnx(residual_model(c=16, size=8, seed=2))
    rng = np.random.default_rng(3)
    qg = quantize_graph(g, [rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
                            for _ in range(3)], method="percentile", vta=True)
    vg, placement = place_on_vta(qg)
    assert [t for t, _ in placement.values()].count("vta") == 1  # the middle conv + ReLU
    assert len(placement) == 5  # the 3-channel first conv is int8 on the CPU too
    m = graph.build(vg)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(m(x), run_reference(qg.graph, x)[0])
    rep = vta_report(m, x, number=1)
    assert rep.vta_seconds > 0 and rep.cpu_seconds > 0
