"""Whole networks from onnx.helper models vs ONNX Runtime and the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.graph.helpers import check_model, raw_model, residual_model
from tiletune import frontend, graph
from tiletune.frontend.builder import OnnxBuilder

pytest.importorskip("onnxruntime")


def _x(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_residual_block_fused_matches_onnxruntime_and_unfused():
    model = residual_model()
    x = _x((1, 3, 8, 8))
    fused, m = check_model(model, x)
    unfused, m2 = check_model(model, x, fusion=False)
    np.testing.assert_allclose(fused, unfused, rtol=1e-6, atol=1e-6)
    labels = [s.op for s in m.steps]
    assert "conv2d+bias+residual+relu" in labels      # add + relu fused into the conv
    assert not any(s.op in ("add", "relu") for s in m.steps)
    assert any(s.op == "add" for s in m2.steps) and any(s.op == "relu" for s in m2.steps)
    assert len(m.steps) < len(m2.steps)


def test_depthwise_separable_block():
    b = OnnxBuilder("mbv2", (1, 8, 10, 10), 3)
    x = b.relu6(b.bn(b.conv(b.input, 16, 1, bias=False)))
    x = b.relu6(b.bn(b.conv(x, 16, 3, 2, 1, groups=16, bias=False)))     # depthwise, stride 2
    y = b.bn(b.conv(x, 8, 1, bias=False))
    z = b.relu6(b.bn(b.conv(y, 8, 3, 1, 1, groups=8, bias=False)))       # depthwise, stride 1
    model = b.finish(b.add(y, z))
    _, m = check_model(model, _x((1, 8, 10, 10)))
    assert any(s.op.startswith("conv2d.depthwise") for s in m.steps)


def test_pooling_variants():
    nodes = [
        helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], ceil_mode=1),
        helper.make_node("AveragePool", ["a"], ["b"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 0, 1, 0], count_include_pad=0),
        helper.make_node("AveragePool", ["x"], ["c"], kernel_shape=[2, 2], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["c"], ["d"]),
        helper.make_node("MaxPool", ["b"], ["e"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("GlobalAveragePool", ["e"], ["f"]),
        helper.make_node("Add", ["d", "f"], ["y"]),
    ]
    model = raw_model(nodes, [("x", (1, 4, 11, 11))], [("y", (1, 4, 1, 1))], {})
    check_model(model, _x((1, 4, 11, 11)))


def test_gemm_head_and_plain_ops():
    rng = np.random.default_rng(2)
    w1 = rng.standard_normal((32, 20)).astype(np.float32)          # Gemm, transB=0, alpha, beta
    c1 = rng.standard_normal((1, 20)).astype(np.float32)
    w2 = rng.standard_normal((20, 6)).astype(np.float32)            # MatMul + Add bias
    b2 = rng.standard_normal((6,)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w1", "c1"], ["g"], alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["mm"]),
        helper.make_node("Add", ["mm", "b2"], ["h"]),
        helper.make_node("Transpose", ["h"], ["t"], perm=[1, 0]),
        helper.make_node("Reshape", ["t", "shape"], ["rs"]),
        helper.make_node("Concat", ["rs", "rs"], ["cat"], axis=1),
        helper.make_node("Softmax", ["cat"], ["y"], axis=-1),
    ]
    inits = {"w1": w1, "c1": c1, "w2": w2, "b2": b2, "shape": np.array([1, -1], np.int64)}
    model = raw_model(nodes, [("x", (1, 2, 4, 4))], [("y", (1, 12))], inits)
    _, m = check_model(model, _x((1, 2, 4, 4)))
    assert [s.op for s in m.steps].count("dense+bias") == 1       # MatMul + Add fused


def test_asymmetric_pads_grouped_and_dilated_convs():
    b = OnnxBuilder("odd", (1, 4, 9, 9), 5)
    x = b.relu(b.conv(b.input, 8, 3, 1, (0, 1, 2, 1)))               # asymmetric pads
    x = b.conv(x, 8, 3, 1, 1, groups=2)                              # grouped
    x = b.conv(x, 8, 3, 2, 2, dilation=2)                            # dilated, strided
    same = helper.make_node("Conv", [x, b.const(np.ones((4, 8, 2, 2), np.float32) * 0.1)],
                            ["y"], auto_pad="SAME_LOWER", kernel_shape=[2, 2])
    b.nodes.append(same)
    b.shapes["y"] = (1, 4, b.shapes[x][2], b.shapes[x][3])
    check_model(b.finish("y"), _x((1, 4, 9, 9)))


def test_export_load_run_identical(tmp_path):
    model = residual_model(seed=4)
    g = frontend.from_onnx(model)
    m = graph.build(g)
    x = _x((1, 3, 8, 8), 7)
    path = tmp_path / "net.tt"
    m.export(path)
    m2 = graph.load(path)
    assert np.array_equal(m(x), m2(x))
    assert np.array_equal(m.run(input=x), m2.run(**{m2.inputs[0].name: x}))
    m2.set_num_threads(1)
    prof = m2.profile(x, number=2)
    assert len(prof.rows) == len(m2.steps) and prof.total > 0
    assert "outside kernels" in str(prof)


def test_load_needs_no_compiler_or_tuner(tmp_path):
    import subprocess
    import sys
    m = graph.build(frontend.from_onnx(residual_model(c=8, seed=5)))
    path = tmp_path / "net.tt"
    m.export(path)
    code = ("import sys, numpy as np; import tiletune.graph as G; m = G.load(sys.argv[1]); "
            "m(np.zeros(m.inputs[0].shape, np.float32)); "
            "bad = [k for k in sys.modules if k.startswith(('tiletune.compiler', "
            "'tiletune.tuner', 'tiletune.backends', 'llvmlite'))]; print(bad); "
            "sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_memory_plan_reuses_buffers():
    b = OnnxBuilder("chain", (1, 8, 16, 16), 6)
    x = b.input
    for _ in range(6):
        x = b.relu(b.conv(x, 8, 3, 1, 1))
    model = b.finish(x)
    _, m = check_model(model, _x((1, 8, 16, 16)))
    assert m.meta["peak_activation_bytes"] <= 0.5 * m.meta["naive_activation_bytes"]


def test_bad_inputs_are_reported():
    m = graph.build(frontend.from_onnx(residual_model(c=8, seed=5)))
    with pytest.raises(Exception, match="expected shape"):
        m(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(Exception, match="float32"):
        m(np.zeros((1, 3, 8, 8), np.float64))
