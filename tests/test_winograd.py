"""Winograd F(m x m, 3 x 3): transform matrices, multiply count, correctness vs NumPy."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiletune as tt
from tiletune.schedules import conv2d, winograd
from tiletune.schedules.epilogue import Epilogue
from tiletune.schedules.winograd_matrices import filtering_error, winograd_matrices


@pytest.mark.parametrize("m", [2, 4, 6])
def test_matrices_satisfy_the_minimal_filtering_identity(m):
    mats = winograd_matrices(m, 3)
    assert filtering_error(mats) == []  # exact rational arithmetic
    AT, G, BT = mats.as_float64()
    alpha = m + 2
    assert AT.shape == (m, alpha) and G.shape == (alpha, 3) and BT.shape == (alpha, alpha)
    # float64: the 1-D identity on random data, and the 2-D one through both axes
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal(alpha), rng.standard_normal(3)
    direct = np.array([d[k:k + 3] @ g for k in range(m)])
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), direct, rtol=1e-12, atol=1e-12)
    d2, g2 = rng.standard_normal((alpha, alpha)), rng.standard_normal((3, 3))
    y = AT @ ((G @ g2 @ G.T) * (BT @ d2 @ BT.T)) @ AT.T
    ref = np.array([[np.sum(d2[i:i + 3, j:j + 3] * g2) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_f2_matrices_are_lavins():
    AT, G, BT = winograd_matrices(2, 3).as_float64()
    assert np.array_equal(np.abs(BT), np.abs(np.array(
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, 1, -1, 0], [0, 1, 0, -1]], float)))
    assert np.array_equal(AT, np.array([[1, 1, 1, 0], [0, 1, -1, 1]], float))


def test_bad_points_are_rejected():
    with pytest.raises(tt.ScheduleError, match="distinct"):
        winograd_matrices(2, 3, (Fraction(0), Fraction(1), Fraction(1)))
    with pytest.raises(tt.ScheduleError, match="no default"):
        winograd_matrices(3, 3)


def test_f2x2_does_16_multiplies_per_tile():
    w = conv2d.Conv2dWorkload(1, 8, 8, 8, 16, 3, 3, 1, 1)
    cfg = {**winograd.default_config(w), "tile": 2, "reg_p": 4}
    assert winograd.multiplies_per_tile(2) == 16 and winograd.multiplies_per_tile(4) == 36
    *_, stages, _ = winograd.compute(w, cfg)
    gemm = stages["gemm"]
    # the only data x weight products: per tile and channel pair one per transform position
    assert gemm.shape[:2] == (4, 4)
    products = gemm.shape[0] * gemm.shape[1] * w.C  # per (tile, output channel)
    assert products == 16 * w.C
    _, _, P = winograd.tiles(w, 2)
    assert P == 16  # 8x8 output in 2x2 tiles: 16 tiles, 16 * 16 = 256 products per (c, k)


SHAPES = [
    conv2d.Conv2dWorkload(1, 8, 11, 13, 16, 3, 3, 1, 1),   # odd sizes, partial tiles
    conv2d.Conv2dWorkload(2, 6, 9, 7, 12, 3, 3, 1, 0),     # batch 2, no pad, odd channels
    conv2d.Conv2dWorkload(1, 3, 5, 5, 5, 3, 3, 1, 2),      # pad 2, channels not a block
]


def _run(w, cfg, epilogue=None, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    g = rng.standard_normal((w.K, w.C, 3, 3)).astype("float32")
    ref = conv2d.reference(d, g, 1, w.pad)
    f = winograd.build(w, cfg, epilogue=epilogue, opt_level=1)
    extra = []
    if epilogue is not None:
        b = rng.standard_normal(w.K).astype("float32")
        r = rng.standard_normal(ref.shape).astype("float32")
        ref = np.maximum(ref + b[None, :, None, None] + r, 0)
        extra = [b, r]
    out = np.full(ref.shape, np.nan, "float32")
    f(d, winograd.pack_weight(g, cfg), *extra, out)
    return np.abs(out - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize("w", SHAPES, ids=lambda w: w.key())
@pytest.mark.parametrize("m", [2, 4])
def test_winograd_matches_numpy(w, m):
    cfg = {**winograd.default_config(w), "tile": m}
    cfg["reg_p"] = min(cfg["reg_p"], winograd.tiles(w, m)[2])
    assert _run(w, cfg) <= (1e-5 if m == 2 else 1e-4)


def test_winograd_f6_and_epilogue():
    w = SHAPES[0]
    cfg = {**winograd.default_config(w), "tile": 6, "reg_p": 2}
    assert _run(w, cfg) <= 1e-3
    epi = Epilogue((("bias",), ("residual",), ("relu",)))
    assert _run(w, {**winograd.default_config(w), "tile": 2}, epi) <= 1e-5


def test_winograd_rejects_strided_and_bad_configs():
    with pytest.raises(tt.ScheduleError, match="stride-1 3x3"):
        winograd.schedule(conv2d.Conv2dWorkload(1, 8, 8, 8, 8, 3, 3, 2, 1))
    w = SHAPES[0]
    with pytest.raises(tt.ScheduleError, match="oc_bn"):
        winograd.schedule(w, {**winograd.default_config(w), "oc_bn": 7})


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_hypothesis_configs_of_the_space(data):
    w = conv2d.Conv2dWorkload(1, 8, 6, 7, 16, 3, 3, 1, 1)
    sp = winograd.space(w)
    cfg = {k: data.draw(st.sampled_from(v), label=k) for k, v in sp.items()}
    cfg["tile"] = data.draw(st.sampled_from([2, 4]), label="tile")
    if not winograd.is_valid(w, cfg):
        with pytest.raises(tt.ScheduleError):
            winograd.schedule(w, cfg)
        return
    assert _run(w, cfg) <= 1e-4


def _blocked(x, bn):
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // bn, bn, h, w).transpose(0, 1, 3, 4, 2))


@pytest.mark.parametrize("layout_in", ["NCHW", "NCHWc"])
@pytest.mark.parametrize("m", [2, 4])
def test_winograd_blocked_layouts_with_epilogue(layout_in, m):
    """The graph's kernel: NCHW or NCHW[ic_bn]c in, NCHW[oc_bn]c out (partial tiles
    cropped), bias + residual + relu fused into the output transform."""
    w = conv2d.Conv2dWorkload(1, 16, 7, 9, 16, 3, 3, 1, 1)
    cfg = {**winograd.default_config(w), "tile": m, "ic_bn": 8, "oc_bn": 8, "reg_p": 3}
    rng = np.random.default_rng(1)
    d = rng.standard_normal((1, 16, 7, 9)).astype("float32")
    g = rng.standard_normal((16, 16, 3, 3)).astype("float32")
    b = rng.standard_normal(16).astype("float32")
    r = rng.standard_normal((1, 16, 7, 9)).astype("float32")
    epi = Epilogue((("bias",), ("residual",), ("relu",)))
    f = winograd.build(w, cfg, epilogue=epi, opt_level=1, layout_in=layout_in,
                       layout_out="NCHWc")
    out = np.full((1, 2, 7, 9, 8), np.nan, "float32")
    f(d if layout_in == "NCHW" else _blocked(d, 8), winograd.pack_weight(g, cfg), b,
      _blocked(r, 8), out)
    ref = np.maximum(conv2d.reference(d, g, 1, 1) + b[None, :, None, None] + r, 0)
    np.testing.assert_allclose(out, _blocked(ref, 8), rtol=1e-4, atol=1e-4)


def test_stage_kernels_compose_to_the_full_kernel():
    w = conv2d.Conv2dWorkload(1, 8, 6, 6, 16, 3, 3, 1, 1)
    cfg = {**winograd.default_config(w), "tile": 2}
    rng = np.random.default_rng(2)
    d = rng.standard_normal((1, 8, 6, 6)).astype("float32")
    U = winograd.pack_weight(rng.standard_normal((16, 8, 3, 3)).astype("float32"), cfg)
    ks = {k: (tt.build(s, a, opt_level=1), a) for k, (s, a) in
          winograd.stage_kernels(w, cfg).items()}
    V = np.empty(ks["input"][1][1].shape, "float32")
    ks["input"][0](d, V)
    M = np.empty(ks["gemm"][1][2].shape, "float32")
    ks["gemm"][0](V, U, M)
    staged = np.empty((1, 16, 6, 6), "float32")
    ks["output"][0](M, staged)
    full = np.empty_like(staged)
    winograd.build(w, cfg, opt_level=1)(d, U, full)
    np.testing.assert_allclose(staged, full, rtol=1e-6, atol=1e-6)
