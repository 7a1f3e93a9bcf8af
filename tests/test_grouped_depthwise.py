"""Grouped and depthwise conv2d: many shapes (groups = channels, multiplier 2, dilation 2,
stride 2, asymmetric pads, odd sizes, channels not a block) and drawn configs, vs NumPy."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiletune as tt
from tiletune.schedules import depthwise as dw
from tiletune.schedules import grouped as gr
from tiletune.schedules.epilogue import Epilogue

DW = [
    dw.DepthwiseWorkload(1, 8, 14, 14, 3, 1, 1),
    dw.DepthwiseWorkload(1, 5, 15, 9, 3, 2, 1, multiplier=2),               # stride 2, mult 2
    dw.DepthwiseWorkload(2, 6, 13, 11, 3, 1, 0, dilation=2, pads=(1, 0, 2, 3)),
    dw.DepthwiseWorkload(1, 7, 10, 17, 5, 2, 2, multiplier=2, dilation=2),
    dw.DepthwiseWorkload(1, 3, 7, 7, 3, 1, 1),                               # 7 wide: no tile
]
GR = [
    gr.GroupedConv2dWorkload(1, 16, 9, 11, 32, 3, 3, 1, 1, groups=4),
    gr.GroupedConv2dWorkload(1, 12, 10, 13, 12, 3, 3, 2, 1, groups=12),     # groups = channels
    gr.GroupedConv2dWorkload(2, 8, 11, 9, 6, 3, 3, 1, 0, groups=2, dilation=2, pads=(0, 1, 2, 1)),
    gr.GroupedConv2dWorkload(1, 6, 8, 8, 12, 1, 1, 2, 0, groups=3),         # 1x1 stride 2
    gr.GroupedConv2dWorkload(1, 20, 7, 7, 20, 3, 3, 1, 1, groups=5),        # 4 per group
]


def _dw_run(w, cfg, epi=None):
    rng = np.random.default_rng(0)
    d = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    g = rng.standard_normal((w.K, w.R, w.R)).astype("float32")
    ref = dw.reference(d, g, w.stride, w.pad, w.dilation, w.pads)
    extra = []
    if epi is not None:
        b = rng.standard_normal(w.K).astype("float32")
        ref, extra = np.clip(ref + b[None, :, None, None], 0, 6), [b]
    out = np.full(ref.shape, np.nan, "float32")
    dw.build(w, cfg, epilogue=epi, opt_level=1)(d, g, *extra, out)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


def _gr_run(w, cfg, epi=None):
    rng = np.random.default_rng(1)
    d = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    g = rng.standard_normal((w.K, w.Cg, w.R, w.S)).astype("float32")
    ref = gr.reference(d, g, w.stride, w.pad, w.groups, w.dilation, w.pads)
    extra = []
    if epi is not None:
        b = rng.standard_normal(w.K).astype("float32")
        r = rng.standard_normal(ref.shape).astype("float32")
        ref, extra = np.maximum(ref + b[None, :, None, None] + r, 0), [b, r]
    out = np.full(ref.shape, np.nan, "float32")
    gr.build(w, cfg, epilogue=epi, opt_level=1)(d, gr.pack_weight(g, cfg), *extra, out)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


@pytest.mark.parametrize("w", DW, ids=lambda w: w.key())
def test_depthwise_default(w):
    cfg = dw.default_config(w)
    assert all(cfg[k] in v for k, v in dw.space(w).items()) and dw.is_valid(w, cfg)
    _dw_run(w, cfg)


@pytest.mark.parametrize("w", GR, ids=lambda w: w.key())
def test_grouped_default(w):
    cfg = gr.default_config(w)
    assert all(cfg[k] in v for k, v in gr.space(w).items()) and gr.is_valid(w, cfg)
    _gr_run(w, cfg)


def test_epilogues():
    _dw_run(DW[2], dw.default_config(DW[2]), Epilogue((("bias",), ("clip", 0.0, 6.0))))
    _gr_run(GR[2], gr.default_config(GR[2]), Epilogue((("bias",), ("residual",), ("relu",))))


def test_bad_workloads_and_configs():
    with pytest.raises(tt.ScheduleError, match="groups"):
        gr.GroupedConv2dWorkload(1, 6, 8, 8, 8, 3, 3, groups=4)
    with pytest.raises(tt.ScheduleError, match="empty output"):
        dw.DepthwiseWorkload(1, 4, 3, 3, 3, 1, 0, dilation=2)
    with pytest.raises(tt.ScheduleError, match="negative"):
        dw.DepthwiseWorkload(1, 4, 8, 8, 3, pads=(1, -1, 0, 0))
    with pytest.raises(tt.ScheduleError, match="oc_bn"):
        gr.schedule(GR[0], {**gr.default_config(GR[0]), "oc_bn": 16})


_FAST = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))


@_FAST
@given(st.data())
def test_hypothesis_depthwise_space(data):
    w = data.draw(st.sampled_from(DW[1:4]), label="workload")
    cfg = {k: data.draw(st.sampled_from(v), label=k) for k, v in dw.space(w).items()}
    if not dw.is_valid(w, cfg):
        with pytest.raises(tt.ScheduleError, match="tile"):
            dw.schedule(w, cfg)
        return
    _dw_run(w, cfg)


def test_depthwise_flat_rows_on_narrow_maps():
    w = DW[4]  # 7 wide: a width tile would be mostly tail
    assert dw.default_config(w)["rows"] == "flat"
    for tile in (8, 16):
        _dw_run(w, {"tile": tile, "unroll_kw": False, "pad_at": "inline", "rows": "flat"})
    assert dw.space(DW[1])["rows"] == ["tiled"]  # stride 2


@_FAST
@given(st.data())
def test_hypothesis_grouped_space(data):
    w = data.draw(st.sampled_from(GR[:3]), label="workload")
    cfg = {k: data.draw(st.sampled_from(v), label=k) for k, v in gr.space(w).items()}
    if not gr.is_valid(w, cfg):
        with pytest.raises(tt.ScheduleError, match="accumulator"):
            gr.schedule(w, cfg)
        return
    _gr_run(w, cfg)
