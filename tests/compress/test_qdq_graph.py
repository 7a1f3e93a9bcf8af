"""QDQ models (onnxruntime's quantize_static on an onnx.helper model) import through
``frontend.from_onnx`` with their Conv/Gemm layers on the int8 kernels, and match
onnxruntime within one quantization step."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tests.compress.test_qdq import _quantize  # noqa: E402
from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import run_reference  # noqa: E402

RNG = np.random.default_rng(7)


def _model():
    inits = {"W1": RNG.standard_normal((8, 4, 3, 3)) * np.sqrt(2 / 36),
             "B1": RNG.standard_normal(8) * 0.05,
             "W2": RNG.standard_normal((8, 8, 3, 3)) * np.sqrt(2 / 72),
             "W3": RNG.standard_normal((8, 8)) * 0.3, "B3": RNG.standard_normal(8) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1] * 4, strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (1, 4, 8, 8))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, (1, 8))],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_qdq_model_imports_onto_int8_kernels_and_matches_onnxruntime(tmp_path):
    q = _quantize(_model(), (1, 4, 8, 8), tmp_path)
    g = frontend.from_onnx(q)
    ops = g.count()
    assert ops.get("qconv2d", 0) == 2 and ops.get("qdense", 0) == 1, ops
    assert "conv2d" not in ops
    m = graph.build(g)
    sess = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"])
    out_scale = max(float(numpy_helper.to_array(t).ravel()[0]) for t in q.graph.initializer
                    if t.name.endswith("_scale") and t.name.startswith("y"))
    for seed in range(3):
        x = np.random.default_rng(seed + 10).standard_normal((1, 4, 8, 8)).astype(np.float32)
        y = m(x)
        np.testing.assert_array_equal(y, run_reference(g, x)[0])
        expected = sess.run(None, {"x": x})[0]
        assert np.abs(y - expected).max() <= out_scale * 1.001, np.abs(y - expected).max()


def test_qdq_model_tasks_are_int8_and_records_apply(tmp_path):
    """A QDQ model is int8 as imported: its tasks are the int8 templates on the host's
    fastest path (reduce_range weights are 7-bit), and a record changes the kernel."""
    import json

    from tiletune.backends.llvm import int8dot
    from tiletune.graph.tasks import extract_tasks
    from tiletune.schedules import int8_conv2d
    g = frontend.from_onnx(_quantize(_model(), (1, 4, 8, 8), tmp_path))
    tasks = extract_tasks(g)
    assert sorted(t.template for t in tasks) == ["int8_conv2d", "int8_conv2d", "int8_dense"]
    assert all(t.args[-2] == int8dot.best_path() for t in tasks)
    conv = next(t for t in tasks if t.template == "int8_conv2d")
    w = int8_conv2d.Int8Conv2dWorkload(*conv.args)
    cfg = {**int8_conv2d.default_config(w), "reg_n": 1, "parallel": "none"}
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps({"workload": conv.key, "config": cfg, "costs": [1e-6],
                               "error": None}) + "\n")
    m = graph.build(g, records=str(rec))
    assert m.meta["tuned_kernels"] == 1
    x = np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(m(x), run_reference(g, x)[0])
