"""Quantized layers on VTA and on the CPU int8 kernels: bit-identical, and a VTA + CPU chain
equal to a NumPy integer reference."""
from __future__ import annotations

import numpy as np
import pytest

from tiletune.compress.quantize import Range, quantize_layer
from tiletune.compress.quantize.vta_layer import (
    VTAConvLayer,
    compile_layer,
    place,
    pow2_scale,
    quantize_layer_pow2,
    vta_requant,
)
from tiletune.errors import CompressError
from tiletune.schedules import int8_conv2d as ic
from tiletune.schedules import int8_dense as idn

RNG = np.random.default_rng(0)


def _w(k, c, r=3):
    return (RNG.standard_normal((k, c, r, r)) * np.sqrt(2 / (c * r * r))).astype(np.float32)


def _ref(layer, x):
    mult, rq = layer.requant()
    return ic.reference(x, layer.weight, layer.bias, layer.stride, layer.pad,
                        layer.x.zero_point, mult, rq)


def test_pow2_scale():
    assert pow2_scale(127.0) == 1.0 and pow2_scale(1.0) == 2.0 ** -6
    assert pow2_scale(0.0) == 1.0


def test_vta_and_cpu_give_the_same_bits():
    layer = quantize_layer_pow2("c", _w(32, 16), RNG.standard_normal(32) * 0.1,
                                Range(0, 3.0), Range(0, 2.0), stride=2, pad=1)
    x = RNG.integers(0, 128, (1, 16, 10, 10)).astype(np.uint8)
    vta = VTAConvLayer(layer, x.shape)
    y_vta, y_cpu = vta(x), layer.build(x.shape)(x)
    assert np.array_equal(y_vta, y_cpu) and np.array_equal(y_cpu, _ref(layer, x))
    assert 0 < (y_cpu > 0).mean() < 1 and vta.cycles > 0 and vta.seconds > 0
    shift, bias = vta_requant(layer)
    assert np.all(bias - layer.bias == 1 << (shift - 1))


def test_vta_plus_cpu_chain_is_bit_exact():
    """conv0 (3 channels, signed input: CPU) -> conv1, conv2 (VTA) -> dense (CPU)."""
    x_f = RNG.standard_normal((1, 3, 12, 12)).astype(np.float32)
    w0 = np.zeros((16, 4, 3, 3), np.float32)
    w0[:, :3] = _w(16, 3)
    l0 = quantize_layer("conv0", "conv", w0, None, Range(-4, 4), Range(0, 4), stride=1, pad=1,
                        relu=True, qmax=127)
    l0.y = type(l0.y)(pow2_scale(4.0), 0, 127)  # the next (VTA) layer's input scale
    l1 = quantize_layer_pow2("conv1", _w(16, 16), None, Range(0, 4), Range(0, 4), pad=1)
    l2 = quantize_layer_pow2("conv2", _w(32, 16), RNG.standard_normal(32) * 0.1, Range(0, 4),
                             Range(0, 4), stride=2, pad=1)
    fc_w = (RNG.standard_normal((10, 32 * 6 * 6)) * 0.05).astype(np.float32)
    l3 = quantize_layer("fc", "dense", fc_w, None, Range(0, 4), None, qmax=127)
    l3.x = l2.y
    from tiletune.compress.quantize import quantize_bias, quantize_weight
    l3.weight, l3.w_scale = quantize_weight(fc_w)
    l3.bias = quantize_bias(None, l3.x.scale, l3.w_scale)

    x = np.zeros((1, 4, 12, 12), np.uint8)
    x[:, :3] = l0.x.quantize(x_f)
    x[:, 3] = l0.x.zero_point  # the padded channel reads the zero point (weights are 0)
    shapes = [x.shape, (1, 16, 12, 12), (1, 16, 12, 12)]
    targets, h, ref = [], x, x
    for layer, shape in zip((l0, l1, l2), shapes):
        run, target, _ = compile_layer(layer, shape)
        targets.append(target)
        h, ref = run(h), _ref(layer, ref)
        assert np.array_equal(h, ref), layer.name
    assert targets == ["cpu", "vta", "vta"]
    flat = h.reshape(1, -1)
    logits_q = idn.Int8Dense(idn.Int8DenseWorkload(1, 10, flat.shape[1], out_dtype="int32"),
                             np.ascontiguousarray(l3.weight.T), l3.bias)(flat)
    assert np.array_equal(logits_q, idn.reference(flat, l3.weight.T, l3.bias))


def test_layers_that_cannot_run_on_vta_say_why():
    l_cpu = quantize_layer("c", "conv", _w(16, 16), None, Range(0, 3), Range(0, 2), pad=1,
                           qmax=127)
    target, why = place(l_cpu, (1, 16, 8, 8))
    assert target == "cpu" and "power of two" in why
    l_odd = quantize_layer_pow2("c", _w(8, 4), None, Range(0, 3), Range(0, 2), pad=1)
    target, why = place(l_odd, (1, 4, 8, 8))
    assert target == "cpu" and "multiple" in why
    with pytest.raises(CompressError, match="non-negative"):
        quantize_layer_pow2("c", _w(16, 16), None, Range(-1, 3), Range(0, 2))
