"""Quantization of a whole graph: the int8 graph built by ``graph.build`` equals its NumPy
integer reference bit for bit, stays close to fp32 (SQNR), and reports what stays fp32."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import quantize_graph, run_reference  # noqa: E402
from tiletune.compress.quantize import METHODS, sqnr_db  # noqa: E402
from tiletune.errors import CompressError  # noqa: E402
from tiletune.frontend.builder import OnnxBuilder  # noqa: E402
from tiletune.graph import reference  # noqa: E402


def _all_int8_model():
    """conv-ReLU, strided conv-ReLU, 1x1 conv, flatten, Gemm: every layer quantizable."""
    b = OnnxBuilder("q", (1, 8, 8, 8), seed=3)
    x = b.relu(b.conv(b.input, 16, 3, 1, 1))
    x = b.relu(b.conv(x, 16, 3, 2, 1))
    x = b.conv(x, 8, 1, 1, 0)
    return b.finish(b.gemm(b.flatten(x), 10))


def _residual_model():
    """A first conv on 3 channels, BN, a residual add, pooling and a Gemm head."""
    b = OnnxBuilder("res", (1, 3, 12, 12), seed=4)
    x = b.relu(b.bn(b.conv(b.input, 16, 3, 1, 1, bias=False)))
    y = b.bn(b.conv(b.relu(b.bn(b.conv(x, 16, 3, 1, 1, bias=False))), 16, 3, 1, 1,
                    bias=False))
    out = b.relu(b.add(x, y))
    return b.finish(b.gemm(b.flatten(b.global_avg_pool(out)), 10))


def _inputs(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def test_int8_graph_is_bit_exact_with_numpy_and_close_to_fp32():
    g = frontend.from_onnx(_all_int8_model())
    qg = quantize_graph(g, _inputs((1, 8, 8, 8), 4), method="percentile")
    assert len(qg.layers) == 4 and qg.fp32 == []
    ops = qg.graph.count()
    assert ops["qconv2d"] == 3 and ops["qdense"] == 1 and "conv2d" not in ops
    assert ops["quantize"] == 1  # u8 tensors flow between the layers
    m = graph.build(qg.graph)
    for x in _inputs((1, 8, 8, 8), 3, seed=1):
        y = m(x)
        np.testing.assert_array_equal(y, run_reference(qg.graph, x)[0])
        fp32 = reference.run(g, x)[0]
        db = sqnr_db(fp32, y)
        print(f"SQNR int8 vs fp32: {db:.1f} dB")
        assert db > 20


@pytest.mark.parametrize("method", METHODS)
def test_unquantizable_layers_stay_fp32_and_are_reported(method):
    g = frontend.from_onnx(_residual_model())
    qg = quantize_graph(g, _inputs((1, 3, 12, 12), 4), method=method)
    reasons = dict(qg.fp32)
    assert any("add has no int8 kernel" == why for why in reasons.values())
    assert "fp32" in qg.report() and len(qg.layers) == 4  # the 3-channel conv too
    m = graph.build(qg.graph)
    x = _inputs((1, 3, 12, 12), 1, seed=2)[0]
    y = m(x)
    ref = run_reference(qg.graph, x)[0]
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()  # fp32 sums in another order
    assert sqnr_db(reference.run(g, x)[0], y) > 15


def test_empty_calibration_set_is_an_error():
    g = frontend.from_onnx(_all_int8_model())
    with pytest.raises(CompressError, match="empty"):
        quantize_graph(g, [])
    with pytest.raises(CompressError, match="method"):
        quantize_graph(g, _inputs((1, 8, 8, 8), 1), method="mse")


@pytest.mark.parametrize("weight_bits", [None, 7, 8])
def test_weight_bits_pick_an_exact_path(weight_bits):
    """By default a saturating host path (AVX2 / AVX-512BW) gets 7-bit weights and full u8
    activations, so every layer runs on the host's fastest path; 8-bit weights with full
    u8 activations fall back to an exact path. Each is bit-exact."""
    from tiletune.backends.llvm import int8dot
    g = frontend.from_onnx(_all_int8_model())
    qg = quantize_graph(g, _inputs((1, 8, 8, 8), 2), method="minmax", weight_bits=weight_bits)
    best = int8dot.best_path()
    bits = weight_bits or int8dot.weight_bits(best)
    for layer in qg.layers.values():
        assert layer.x.qmax == 255
        assert np.abs(layer.weight.astype(int)).max() <= 2 ** (bits - 1) - 1
        exact = int8dot.activation_max(best, 2 ** (bits - 1) - 1) == 255
        assert layer.path() == (best if exact else int8dot.exact_path())
    m = graph.build(qg.graph)
    x = _inputs((1, 8, 8, 8), 1, seed=4)[0]
    np.testing.assert_array_equal(m(x), run_reference(qg.graph, x)[0])
