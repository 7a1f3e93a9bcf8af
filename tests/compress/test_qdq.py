"""QDQ models (built with onnx.helper, quantized by onnxruntime's own tool) import as int8
layers that match onnxruntime within one quantization step."""
from __future__ import annotations

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tiletune.compress.quantize import read_qdq  # noqa: E402


def _model(nodes, x_shape, y_name, y_shape, inits):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                    x_shape)],
                          [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, y_shape)],
                          initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _quantize(model, x_shape, tmp_path, seed=0):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    rng = np.random.default_rng(seed)
    batches = [{"x": rng.standard_normal(x_shape).astype(np.float32)} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            return next(self.it, None)

    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, src)
    logging.getLogger().setLevel(logging.ERROR)
    # reduce_range (7-bit weights): onnxruntime's own u8 x s8 kernels use vpmaddubsw on
    # CPUs without VNNI and saturate its int16 pair sums on full-range weights (measured:
    # 31 of 1296 outputs off by up to 33 steps); tiletune's generic path is exact either way
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, reduce_range=True)
    return onnx.load(dst)


def _ort(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _ours(layer, x):
    xq = layer.x.quantize(x)
    shape = xq.shape if layer.kind == "conv" else (xq.shape[0], -1)
    xq = xq.reshape(shape)
    run = layer.build(xq.shape)
    return layer.dequantize_output(run(xq))


@pytest.mark.parametrize("stride,pad,relu", [(1, 1, False), (2, 1, True), (1, 0, True)])
def test_conv_matches_onnxruntime(tmp_path, stride, pad, relu):
    rng = np.random.default_rng(stride + pad)
    W = (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32)
    B = (rng.standard_normal(16) * 0.1).astype(np.float32)
    OH = (9 + 2 * pad - 3) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c" if relu else "y"],
                              pads=[pad] * 4, strides=[stride] * 2)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    q = _quantize(_model(nodes, (1, 8, 9, 9), "y", (1, 16, OH, OH), {"W": W, "B": B}),
                  (1, 8, 9, 9), tmp_path)
    qm = read_qdq(q)
    assert len(qm.layers) == 1 and not qm.fp32, qm.report()
    layer = qm.layers[0]
    assert layer.kind == "conv" and layer.stride == stride and layer.pad == pad
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    ref, ours = _ort(q, x), _ours(layer, x)
    step = layer.y.scale
    assert np.abs(ours - ref).max() <= step * 1.001
    assert np.mean(ours == ref) > 0.9  # off by a step only where the roundings differ


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
def test_dense_matches_onnxruntime(tmp_path, op):
    rng = np.random.default_rng(7)
    if op == "Gemm":
        W = (rng.standard_normal((24, 64)) * 0.2).astype(np.float32)
        node = helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)
        inits = {"W": W, "B": (rng.standard_normal(24) * 0.1).astype(np.float32)}
    else:
        W = (rng.standard_normal((64, 24)) * 0.2).astype(np.float32)
        node = helper.make_node("MatMul", ["x", "W"], ["y"])
        inits = {"W": W}
    q = _quantize(_model([node], (3, 64), "y", (3, 24), inits), (3, 64), tmp_path)
    qm = read_qdq(q)
    assert len(qm.layers) == 1, qm.report()
    layer = qm.layers[0]
    x = rng.standard_normal((3, 64)).astype(np.float32)
    ref, ours = _ort(q, x), _ours(layer, x)
    assert np.abs(ours - ref).max() <= layer.y.scale * 1.001


def test_unquantizable_operators_stay_fp32_and_say_why(tmp_path):
    rng = np.random.default_rng(3)
    W = (rng.standard_normal((8, 2, 3, 3)) * 0.2).astype(np.float32)  # groups=4
    W2 = (rng.standard_normal((8, 8, 1, 1)) * 0.2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W"], ["g"], pads=[1] * 4, group=4),
             helper.make_node("Sigmoid", ["g"], ["s"]),
             helper.make_node("Conv", ["s", "W2"], ["y"])]
    q = _quantize(_model(nodes, (1, 8, 6, 6), "y", (1, 8, 6, 6), {"W": W, "W2": W2}),
                  (1, 8, 6, 6), tmp_path)
    qm = read_qdq(q)
    reasons = dict(qm.fp32)
    assert any("grouped" in r for r in reasons.values()), qm.report()
    assert any("Sigmoid" in r for r in reasons.values())
    assert [q_.attrs["op"] for q_ in qm.layers] == ["Conv"]
    assert "kept in fp32" in qm.report()


def test_hand_built_qdq_without_output_quantization():
    """A QDQ conv whose output is not re-quantized returns the int32 accumulator."""
    rng = np.random.default_rng(5)
    wq = rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8)
    ws = rng.uniform(0.01, 0.02, 8).astype(np.float32)
    inits = {"xs": np.array(0.05, np.float32), "xz": np.array(7, np.uint8), "wq": wq,
             "ws": ws, "wz": np.zeros(8, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["y"], pads=[1] * 4)]
    m = _model(nodes, (1, 4, 5, 5), "y", (1, 8, 5, 5), inits)
    layer = read_qdq(m).layers[0]
    assert layer.y is None and layer.x.zero_point == 7
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(_ours(layer, x), _ort(m, x), rtol=1e-5, atol=1e-5)


def test_full_range_activations_take_an_exact_path():
    """u8 activations up to 255 (onnxruntime's QDQ) with 8-bit weights use VNNI or the
    exact generic path; with 7-bit weights (reduce_range) the host's fastest path."""
    from tiletune.backends.llvm import int8dot
    from tiletune.compress.quantize import QParams, QuantizedLayer
    w8 = np.full((4, 4, 1, 1), -128, np.int8)
    layer = QuantizedLayer("c", "conv", w8, np.ones(4),
                           np.zeros(4, np.int32), QParams(0.1, 3, 255), None)
    assert int8dot.activation_max(layer.path(), 128) == 255
    assert layer.path() == int8dot.exact_path()
    w7 = np.full((4, 4, 1, 1), -64, np.int8)
    layer_rr = QuantizedLayer("c", "conv", w7, np.ones(4),
                              np.zeros(4, np.int32), QParams(0.1, 3, 255), None)
    assert layer_rr.path() == int8dot.best_path()
    layer7 = QuantizedLayer("c", "conv", np.zeros((4, 4, 1, 1), np.int8), np.ones(4),
                            np.zeros(4, np.int32), QParams(0.1, 0, 127), None)
    assert layer7.path() == int8dot.best_path()
