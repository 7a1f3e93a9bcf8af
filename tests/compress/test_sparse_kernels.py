"""CSR / BSR direct sparse convolution and sparse dense equal the dense result on pruned
weights."""
from __future__ import annotations

import numpy as np
import pytest

from tiletune.compress import prune
from tiletune.errors import ArgumentError, ScheduleError
from tiletune.schedules import conv2d
from tiletune.schedules import sparse_conv2d as sc
from tiletune.schedules.sparse_format import offsets, to_bsr, to_csr

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("fmt,block,gran", [("csr", 1, "element"), ("csr", 1, "bank"),
                                            ("bsr", 8, "block"), ("bsr", 16, "element")])
@pytest.mark.parametrize("C,H,K,R,stride,pad", [(16, 9, 16, 3, 1, 1), (8, 10, 16, 3, 2, 1),
                                                (16, 5, 32, 1, 1, 0)])
def test_sparse_conv_equals_dense(fmt, block, gran, C, H, K, R, stride, pad):
    wt = RNG.standard_normal((K, C, R, R)).astype(np.float32)
    wp = prune({"w": wt}, 0.75, gran, block=(block, 1), bank=C * R * R).weights["w"]
    x = RNG.standard_normal((1, C, H, H)).astype(np.float32)
    layer = sc.SparseConv2d(wp, x.shape, stride, pad, fmt, block)
    np.testing.assert_allclose(layer(x), conv2d.reference(x, wp, stride, pad), atol=1e-4)


@pytest.mark.parametrize("cfg", [{"vw": 4, "tile": 3, "order": "k_oh", "parallel": False},
                                 {"vw": 4, "tile": 1, "order": "oh_k", "parallel": True},
                                 {"vw": 8, "tile": 1, "rows": 7, "order": "k_oh",
                                  "parallel": True},
                                 {"vw": 4, "tile": 1, "rows": 7, "order": "oh_k",
                                  "parallel": False}])
def test_csr_configs(cfg):
    wp = prune({"w": RNG.standard_normal((8, 8, 3, 3))}, 0.9).weights["w"].astype(np.float32)
    x = RNG.standard_normal((2, 8, 7, 7)).astype(np.float32)
    layer = sc.SparseConv2d(wp, x.shape, 1, 1, "csr", cfg=cfg)
    np.testing.assert_allclose(layer(x), conv2d.reference(x, wp, 1, 1), atol=1e-4)


@pytest.mark.parametrize("fmt,block", [("csr", 1), ("bsr", 8)])
def test_small_maps_tile_output_rows(fmt, block):
    """7x7 maps (ResNet-18's 512-channel layer): one vector covers a row, so the default
    holds several output rows in registers; equal to the dense reference."""
    wp = prune({"w": RNG.standard_normal((16, 16, 3, 3))}, 0.8).weights["w"].astype(np.float32)
    x = RNG.standard_normal((1, 16, 7, 7)).astype(np.float32)
    layer = sc.SparseConv2d(wp, x.shape, 1, 1, fmt, block)
    if fmt == "csr":
        assert layer.config["rows"] == 7
    np.testing.assert_allclose(layer(x), conv2d.reference(x, wp, 1, 1), atol=1e-4)
    for rows in sc.space(layer.workload)["rows"]:
        cfg = {**sc.default_config(layer.workload), "rows": rows}
        if sc.is_valid(layer.workload, cfg):
            other = sc.SparseConv2d(wp, x.shape, 1, 1, fmt, block, cfg=cfg)
            np.testing.assert_allclose(other(x), conv2d.reference(x, wp, 1, 1), atol=1e-4)


def test_all_zero_and_empty_rows():
    wp = np.zeros((16, 4, 3, 3), np.float32)
    wp[3, 1, 1, 1] = 2.0
    x = RNG.standard_normal((1, 4, 6, 6)).astype(np.float32)
    for fmt in ("csr", "bsr"):
        np.testing.assert_allclose(sc.SparseConv2d(wp, x.shape, 1, 1, fmt, 8)(x),
                                   conv2d.reference(x, wp, 1, 1), atol=1e-5)
    zero = sc.SparseConv2d(np.zeros((8, 4, 3, 3), np.float32), x.shape, 1, 1)
    assert np.all(zero(x) == 0)


@pytest.mark.parametrize("fmt", ["csr", "bsr"])
def test_sparse_dense(fmt):
    W = prune({"w": RNG.standard_normal((48, 64))}, 0.9).weights["w"].astype(np.float32)
    for M in (1, 5):
        X = RNG.standard_normal((M, 64)).astype(np.float32)
        np.testing.assert_allclose(sc.SparseDense(W, M, fmt, 16)(X), X @ W.T, atol=1e-4)


def test_formats_round_trip():
    wp = prune({"w": RNG.standard_normal((32, 8, 3, 3))}, 0.8).weights["w"].astype(np.float32)
    m = wp.reshape(32, -1)
    assert np.array_equal(to_csr(wp).to_dense(), m)
    b = to_bsr(wp, 16)
    assert np.array_equal(b.to_dense(), m) and b.density >= 0.2
    assert offsets(np.array([0, 9, 10]), 3, 3, 100, 10).tolist() == [0, 100, 101]


def test_bad_input():
    with pytest.raises(ScheduleError, match="does not divide"):
        to_bsr(np.ones((10, 4, 3, 3)), 16)
    with pytest.raises(ScheduleError, match="format"):
        sc.SparseConv2dWorkload(1, 4, 5, 5, 8, 3, 3, fmt="coo")
    layer = sc.SparseConv2d(np.ones((8, 4, 3, 3), np.float32), (1, 4, 5, 5), 1, 1)
    with pytest.raises(ArgumentError, match="input must be"):
        layer(np.ones((1, 4, 6, 6), np.float32))
    with pytest.raises(ScheduleError, match="knob"):
        sc.build(layer.workload, {"vw": 3, "tile": 1, "order": "oh_k", "parallel": True})


def test_select_conv_kernel_returns_the_fastest_measured():
    from tiletune.tuner.search.sparse_select import select_conv_kernel
    wp = prune({"w": RNG.standard_normal((16, 8, 3, 3))}, 0.9).weights["w"].astype(np.float32)
    choice = select_conv_kernel(wp, (1, 8, 8, 8), 1, 1, configs=1, number=1, repeat=1)
    kinds = {k for k, _, _ in choice.timings}
    assert kinds == {"dense", "csr", "bsr"}
    assert choice.seconds == min(t for _, _, t in choice.timings)
    assert choice.kind in kinds
