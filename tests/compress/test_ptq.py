"""Post-training quantization of an onnx.helper model: every calibration method gives int8
layers whose outputs stay close to fp32 (SQNR), unquantizable ops stay fp32 and say so."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tiletune.compress.quantize import METHODS  # noqa: E402
from tiletune.compress.quantize.ptq import quantize_model  # noqa: E402
from tiletune.errors import CompressError  # noqa: E402

RNG = np.random.default_rng(0)


def _net():
    inits = {"W1": RNG.standard_normal((16, 4, 3, 3)) * np.sqrt(2 / 36),
             "B1": RNG.standard_normal(16) * 0.05,
             "W2": RNG.standard_normal((16, 16, 3, 3)) * np.sqrt(2 / 144),
             "W3": RNG.standard_normal((8, 16)) * 0.3, "B3": RNG.standard_normal(8) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2"], ["c2"], pads=[1] * 4, strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "net",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 4, 10, 10))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 8))],
                          initializer=[numpy_helper.from_array(v.astype(np.float32), k)
                                       for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _run_int8(qm, x):
    """The model with its int8 layers (the pooling stays fp32, as the model lists it)."""
    c1, c2, fc = qm.layers
    h = c1.x.quantize(x)
    h = c1.build(h.shape)(h)
    h = c2.build(h.shape)(h)  # c1's output scale is c2's input scale: same calibrated tensor
    pooled = c2.y.dequantize(h).mean(axis=(2, 3))
    pq = fc.x.quantize(pooled)
    return fc.dequantize_output(fc.build(pq.shape)(pq))


@pytest.mark.parametrize("method", METHODS)
def test_quantized_model_is_close_to_fp32(method):
    m = _net()
    calib = [{"x": RNG.standard_normal((1, 4, 10, 10)).astype(np.float32)} for _ in range(16)]
    qm = quantize_model(m, calib, method)
    assert [q.kind for q in qm.layers] == ["conv", "conv", "dense"]
    assert qm.layers[0].relu and qm.layers[1].relu and not qm.layers[2].relu
    assert qm.layers[0].y == qm.layers[1].x  # one calibrated tensor, one quantization
    reasons = dict(qm.fp32)
    assert set(reasons) == {"p", "f"} and "GlobalAveragePool" in reasons["p"]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    sig = noise = 0.0
    for _ in range(10):
        x = RNG.standard_normal((1, 4, 10, 10)).astype(np.float32)
        ref = sess.run(None, {"x": x})[0]
        got = _run_int8(qm, x)
        sig += float(np.sum(ref.astype(np.float64) ** 2))
        noise += float(np.sum((ref - got).astype(np.float64) ** 2))
    assert 10 * np.log10(sig / noise) > 25.0


def test_empty_calibration_set_and_bad_method():
    with pytest.raises(CompressError, match="calibration set is empty"):
        quantize_model(_net(), [], "kl")
    with pytest.raises(CompressError, match="unknown calibration method"):
        quantize_model(_net(), [{"x": np.zeros((1, 4, 10, 10), np.float32)}], "mse")
