"""Pruned convolutions of a graph on the sparse kernels: the built graph equals the dense
reference of the pruned weights whichever kernel is chosen; the choice is measured."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import prune_graph, run_reference, use_sparse_kernels  # noqa: E402
from tiletune.frontend.builder import OnnxBuilder  # noqa: E402
from tiletune.graph import reference  # noqa: E402
from tiletune.schedules import sparse_conv2d as sc  # noqa: E402
from tiletune.tuner.search.sparse_select import KernelChoice  # noqa: E402


def _pruned(granularity="element", **kw):
    b = OnnxBuilder("s", (1, 16, 10, 10), seed=6)
    x = b.relu(b.conv(b.input, 32, 3, 1, 1))
    x = b.relu(b.conv(x, 32, 3, 2, 1))
    g = frontend.from_onnx(b.finish(b.gemm(b.flatten(b.global_avg_pool(x)), 10)))
    dense = [n for n in g.operators() if g.op(n) == "dense"]
    return prune_graph(g, 0.9, granularity, skip=dense, **kw)[0]


def _forced(kind, block=1):
    def select(w, shape, stride, pad, threads=1):
        probe = sc.SparseConv2d(w, shape, stride, pad, kind, block or 16)
        return KernelChoice(kind, {**probe.config, "block": block}, 0.0)
    return select


@pytest.mark.parametrize("kind,block,gran,kw", [("csr", 1, "element", {}),
                                                ("bsr", 16, "block", {"block": (16, 1)})])
def test_sparse_kernels_in_the_graph_equal_the_dense_reference(kind, block, gran, kw):
    pg = _pruned(gran, **kw)
    sg, choices = use_sparse_kernels(pg, select=_forced(kind, block))
    assert len(choices) == 2 and sg.count()["sparse_conv2d"] == 2
    assert "conv2d" not in sg.count()
    x = np.random.default_rng(0).standard_normal((1, 16, 10, 10)).astype(np.float32)
    y = graph.build(sg)(x)
    np.testing.assert_allclose(y, reference.run(pg, x)[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, run_reference(sg, x)[0], rtol=1e-4, atol=1e-4)


def test_measured_choice_builds_and_matches():
    pg = _pruned()
    sg, choices = use_sparse_kernels(pg, threads=1)
    assert all(c.kind in ("dense", "csr", "bsr") and c.timings for c in choices.values())
    n_sparse = sum(c.kind != "dense" for c in choices.values())
    assert sg.count().get("sparse_conv2d", 0) == n_sparse
    x = np.random.default_rng(1).standard_normal((1, 16, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(graph.build(sg)(x), reference.run(pg, x)[0], rtol=1e-4,
                               atol=1e-4)
