"""The operator library's templates, for many configs and edge shapes, against NumPy."""
import itertools

import numpy as np
import pytest

import tiletune as tt
from tiletune.schedules import conv2d, conv2d_nchw, dense, depthwise, layout

CONV_SHAPES = [
    conv2d.Conv2dWorkload(1, 1, 9, 9, 16, 3, 3, 1, 1),     # one input channel
    conv2d.Conv2dWorkload(1, 8, 11, 13, 16, 3, 3, 1, 1),   # odd widths
    conv2d.Conv2dWorkload(1, 16, 14, 14, 32, 3, 3, 2, 1),  # stride 2 with padding
    conv2d.Conv2dWorkload(1, 6, 10, 10, 24, 3, 3, 1, 1),   # 24 channels: not a block of 16
    conv2d.Conv2dWorkload(1, 16, 8, 8, 32, 1, 1, 2, 0),    # 1x1, stride 2
    conv2d.Conv2dWorkload(2, 3, 17, 17, 8, 7, 7, 2, 3),    # first-layer-like, batch 2
]


def conv_configs(w, n=5, seed=0):
    sp = conv2d.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if conv2d.is_valid(w, c)]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(allc), size=min(n, len(allc)), replace=False)
    return [conv2d.default_config(w)] + [allc[i] for i in idx]


@pytest.mark.parametrize("w", CONV_SHAPES, ids=lambda w: w.key())
def test_conv2d_nchwc_configs(w):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    weight = rng.standard_normal((w.K, w.C, w.R, w.S)).astype("float32")
    ref = conv2d.reference(data, weight, w.stride, w.pad)
    for cfg in conv_configs(w):
        f = conv2d.build(w, cfg)
        out = np.empty(ref.shape, "float32")
        f(data, conv2d.pack_weight(weight, cfg), out)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


def test_conv2d_space_and_default_are_valid():
    for w in CONV_SHAPES:
        cfg = conv2d.default_config(w)
        assert conv2d.is_valid(w, cfg)
        for knob, value in cfg.items():
            assert value in conv2d.space(w)[knob]


def test_conv2d_rejects_bad_config():
    w = CONV_SHAPES[2]
    with pytest.raises(tt.ScheduleError, match="oc_bn"):
        conv2d.schedule(w, {**conv2d.default_config(w), "oc_bn": 5})
    w = conv2d.Conv2dWorkload(1, 16, 32, 32, 32, 3, 3, 1, 1)
    with pytest.raises(tt.ScheduleError, match="accumulator"):
        conv2d.schedule(w, {**conv2d.default_config(w), "oc_bn": 32, "reg_n": 16})


@pytest.mark.parametrize("shape", [(64, 96, 48), (33, 50, 17), (1, 64, 40), (24, 64, 256)])
def test_dense_configs(shape):
    w = dense.DenseWorkload(*shape)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((w.M, w.K)).astype("float32")
    b = rng.standard_normal((w.K, w.N)).astype("float32")
    sp = dense.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if dense.is_valid(w, c)]
    blocked = [c for c in allc if c["kc"]][:2]
    for cfg in [dense.default_config(w)] + allc[:: max(1, len(allc) // 5)] + blocked:
        c = np.empty((w.M, w.N), "float32")
        dense.build(w, cfg)(a, b, c)
        np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


@pytest.mark.parametrize("w", [depthwise.DepthwiseWorkload(1, 8, 14, 14, 3, 1, 1),
                               depthwise.DepthwiseWorkload(1, 5, 15, 9, 3, 2, 1)])
def test_depthwise_configs(w):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    weight = rng.standard_normal((w.C, w.R, w.R)).astype("float32")
    ref = depthwise.reference(data, weight, w.stride, w.pad)
    sp = depthwise.space(w)
    for vals in itertools.product(*sp.values()):
        cfg = dict(zip(sp, vals))
        if not depthwise.is_valid(w, cfg):
            continue
        out = np.empty(ref.shape, "float32")
        depthwise.build(w, cfg)(data, weight, out)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


def test_packed_layouts_round_trip():
    A = tt.placeholder((1, 32, 6, 7), "float32", name="A")
    P = layout.pack_data(A, 16)
    U = tt.compute(A.shape, lambda n, c, h, w: P[n, c // 16, h, w, c % 16], name="U")
    s = tt.create_schedule([P, U])
    x = np.random.default_rng(4).standard_normal(A.shape).astype("float32")
    p, u = np.empty(P.shape, "float32"), np.empty(A.shape, "float32")
    tt.build(s, [A, P, U])(x, p, u)
    np.testing.assert_array_equal(u, x)
    np.testing.assert_array_equal(p, x.reshape(1, 2, 16, 6, 7).transpose(0, 1, 3, 4, 2))
    W = tt.placeholder((32, 16, 3, 3), "float32", name="W")
    Wp = layout.pack_weight(W, 8, 16)
    Oc = tt.placeholder((1, 2, 5, 5, 16), "float32", name="Oc")
    O = layout.unpack_output(Oc)
    s = tt.create_schedule([Wp, O])
    wt = np.random.default_rng(5).standard_normal(W.shape).astype("float32")
    oc = np.random.default_rng(6).standard_normal(Oc.shape).astype("float32")
    wp, o = np.empty(Wp.shape, "float32"), np.empty(O.shape, "float32")
    tt.build(s, [W, Oc, Wp, O])(wt, oc, wp, o)
    np.testing.assert_array_equal(wp, layout.pack_weight_numpy(wt, 8, 16))
    np.testing.assert_array_equal(o, oc.transpose(0, 1, 4, 2, 3).reshape(1, 32, 5, 5))


def test_parallel_matches_serial():
    w = conv2d.Conv2dWorkload(1, 16, 12, 12, 32, 3, 3, 1, 1)
    rng = np.random.default_rng(7)
    data = rng.standard_normal((1, 16, 12, 12)).astype("float32")
    weight = rng.standard_normal((32, 16, 3, 3)).astype("float32")
    outs = []
    for par in ("none", "n_occ_oh", "occ"):
        cfg = {**conv2d.default_config(w), "parallel": par}
        f = conv2d.build(w, cfg)
        for threads in (1, 2):
            f.set_num_threads(threads)
            out = np.empty((1, 32, 12, 12), "float32")
            f(data, conv2d.pack_weight(weight, cfg), out)
            outs.append(out)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


NCHW_SHAPES = CONV_SHAPES + [conv2d.Conv2dWorkload(1, 16, 8, 8, 24, 1, 1, 1, 0)]


@pytest.mark.parametrize("w", NCHW_SHAPES, ids=lambda w: w.key())
def test_conv2d_nchw_direct_and_1x1_configs(w):
    rng = np.random.default_rng(8)
    data = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    weight = rng.standard_normal((w.K, w.C, w.R, w.S)).astype("float32")
    ref = conv2d.reference(data, weight, w.stride, w.pad)
    sp = conv2d_nchw.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if conv2d_nchw.is_valid(w, c)]
    picks = [allc[i] for i in np.random.default_rng(9).choice(len(allc), min(4, len(allc)),
                                                             replace=False)]
    flat = [c for c in allc if c["tiling"] == "flat"][:1]
    for cfg in [conv2d_nchw.default_config(w)] + picks + flat:
        out = np.empty(ref.shape, "float32")
        conv2d_nchw.build(w, cfg)(data, conv2d_nchw.pack_weight(weight, cfg), out)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


def test_conv2d_1x1_specialisation_is_a_gemm_over_pixels():
    w = conv2d.Conv2dWorkload(1, 16, 8, 8, 24, 1, 1, 1, 0)
    cfg = conv2d_nchw.default_config(w)
    assert cfg["tiling"] == "flat"
    s, args = conv2d_nchw.schedule(w, cfg)
    text = str(tt.lower(s, args, target="llvm"))
    assert "pad" not in text and "ramp(" in text
