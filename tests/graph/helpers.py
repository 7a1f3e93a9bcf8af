"""Small ONNX models for the graph tests (onnx.helper, random weights) and the checks."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tiletune import frontend, graph
from tiletune.frontend.builder import OnnxBuilder
from tiletune.graph import reference


def ort_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def check_model(model: onnx.ModelProto, x: np.ndarray, **build) -> tuple[np.ndarray, object]:
    """Build with tiletune; compare with ONNX Runtime and the NumPy reference (1e-4 of the
    largest output); returns (output, module)."""
    g = frontend.from_onnx(model)
    expected = ort_run(model, x)
    np_ref = reference.run(g, x)[0]
    m = graph.build(g, **build)
    y = m(x)
    scale = max(1.0, float(np.abs(expected).max()))
    assert y.shape == expected.shape
    assert np.abs(y - expected).max() <= 1e-4 * scale, np.abs(y - expected).max()
    assert np.abs(y - np_ref).max() <= 1e-4 * scale
    return y, m


def raw_model(nodes, inputs, outputs, inits, opset: int = 17) -> onnx.ModelProto:
    """A ModelProto from helper pieces: ``inputs``/``outputs`` are (name, shape) pairs,
    ``inits`` a name -> array dict."""
    g = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def residual_model(c: int = 16, size: int = 8, seed: int = 0) -> onnx.ModelProto:
    """conv-BN-ReLU, conv-BN, + skip (1x1 stride-2 downsample), ReLU, pool, Gemm head."""
    b = OnnxBuilder("residual", (1, 3, size, size), seed)
    x = b.relu(b.bn(b.conv(b.input, c, 3, 1, 1, bias=False)))
    y = b.bn(b.conv(b.relu(b.bn(b.conv(x, 2 * c, 3, 2, 1, bias=False))), 2 * c, 3, 1, 1,
                    bias=False))
    skip = b.bn(b.conv(x, 2 * c, 1, 2, 0, bias=False))
    out = b.relu(b.add(y, skip))
    return b.finish(b.gemm(b.flatten(b.global_avg_pool(out)), 10))
