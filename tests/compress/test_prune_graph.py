"""Pruning a graph's weights (every granularity reaches its sparsity, the graph still runs)
and channel pruning that shrinks the downstream shapes instead of storing zeros."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import prune_graph, shrink_channels  # noqa: E402
from tiletune.errors import CompressError  # noqa: E402
from tiletune.frontend.builder import OnnxBuilder  # noqa: E402
from tiletune.graph import reference  # noqa: E402


def _net():
    b = OnnxBuilder("p", (1, 8, 10, 10), seed=5)
    x = b.relu(b.bn(b.conv(b.input, 32, 3, 1, 1, bias=False)))
    x = b.relu(b.conv(x, 32, 3, 1, 1))
    x = b.conv(x, 16, 1, 1, 0)
    return b.finish(b.gemm(b.flatten(b.global_avg_pool(x)), 10))


@pytest.mark.parametrize("granularity,kw", [("element", {}), ("block", {"block": (16, 1)}),
                                            ("kernel", {}), ("filter", {}),
                                            ("bank", {"bank": 8})])
def test_prune_graph_reaches_sparsity_and_runs(granularity, kw):
    g = frontend.from_onnx(_net())
    dense = [n for n in g.operators() if g.op(n) == "dense"]
    pg, pruned = prune_graph(g, 0.75, granularity, skip=dense, **kw)  # 10 x 16 head
    convs = [n for n in pg.operators() if pg.op(n) == "conv2d"]
    assert len(convs) == 3
    for n in convs:
        w = pg.value(pg.node(n)["inputs"][1])
        if w.shape[2:] != (1, 1) or granularity != "kernel":
            assert abs((w == 0).mean() - 0.75) < 0.05, (n, (w == 0).mean())
    x = np.random.default_rng(0).standard_normal((1, 8, 10, 10)).astype(np.float32)
    y = graph.build(pg)(x)
    np.testing.assert_allclose(y, reference.run(pg, x)[0], rtol=1e-4, atol=1e-4)
    assert set(pruned.sparsity) >= set(convs)


def test_shrink_channels_shrinks_downstream_shapes():
    g = frontend.from_onnx(_net())
    sg, kept = shrink_channels(g, 0.5)
    assert len(kept) == 2  # conv->BN->ReLU->conv and conv->ReLU->conv; the 1x1 feeds a pool
    convs = [n for n in sg.operators() if sg.op(n) == "conv2d"]
    shapes = [sg.value(sg.node(n)["inputs"][1]).shape for n in convs]
    assert shapes == [(16, 8, 3, 3), (16, 16, 3, 3), (16, 16, 1, 1)]
    assert sg.type(convs[0]).shape == (1, 16, 10, 10)
    x = np.random.default_rng(1).standard_normal((1, 8, 10, 10)).astype(np.float32)
    ref = graph.build(sg)(x)
    np.testing.assert_allclose(ref, reference.run(sg, x)[0], rtol=1e-4, atol=1e-4)


def test_prune_graph_without_layers_is_an_error():
    from onnx import helper

    from tests.graph.helpers import raw_model
    m = raw_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (1, 4))], [("y", (1, 4))],
                  {})
    with pytest.raises(CompressError, match="no conv2d/dense"):
        prune_graph(frontend.from_onnx(m), 0.5)
