"""im2col + GEMM conv2d vs NumPy over odd shapes, strides, epilogues and drawn configs."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tiletune as tt
from tiletune.schedules import conv2d, im2col
from tiletune.schedules.epilogue import Epilogue

SHAPES = [
    conv2d.Conv2dWorkload(1, 8, 11, 13, 16, 3, 3, 1, 1),    # odd sizes: pixel tail
    conv2d.Conv2dWorkload(2, 16, 8, 8, 32, 1, 1, 2, 0),     # 1x1 stride 2, batch 2
    conv2d.Conv2dWorkload(1, 3, 17, 17, 8, 7, 7, 2, 3),     # first-layer-like
    conv2d.Conv2dWorkload(1, 5, 6, 9, 6, 3, 3, 2, 0),       # channels not a block
]


def _run(w, cfg, epi=None):
    rng = np.random.default_rng(0)
    d = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    g = rng.standard_normal((w.K, w.C, w.R, w.S)).astype("float32")
    ref = conv2d.reference(d, g, w.stride, w.pad)
    extra = []
    if epi is not None:
        b = rng.standard_normal(w.K).astype("float32")
        r = rng.standard_normal(ref.shape).astype("float32")
        ref, extra = np.maximum(ref + b[None, :, None, None] + r, 0), [b, r]
    out = np.full(ref.shape, np.nan, "float32")
    im2col.build(w, cfg, epilogue=epi, opt_level=1)(d, im2col.pack_weight(g, cfg), *extra, out)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=str(cfg))


@pytest.mark.parametrize("w", SHAPES, ids=lambda w: w.key())
def test_im2col_default(w):
    cfg = im2col.default_config(w)
    assert im2col.is_valid(w, cfg)
    _run(w, cfg)


def test_im2col_epilogue_and_errors():
    _run(SHAPES[1], im2col.default_config(SHAPES[1]),
         Epilogue((("bias",), ("residual",), ("relu",))))
    with pytest.raises(tt.ScheduleError, match="mr"):
        im2col.schedule(SHAPES[0], {**im2col.default_config(SHAPES[0]), "mr": 3})


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_hypothesis_im2col_space(data):
    w = data.draw(st.sampled_from(SHAPES[:2]), label="workload")
    cfg = {k: data.draw(st.sampled_from(v), label=k) for k, v in im2col.space(w).items()}
    if not im2col.is_valid(w, cfg):
        with pytest.raises(tt.ScheduleError):
            im2col.schedule(w, cfg)
        return
    _run(w, cfg)


@pytest.mark.parametrize("layout_in", ["NCHW", "NCHWc"])
def test_im2col_blocked_layouts(layout_in):
    """The graph's kernel: NCHW or NCHW[ic_bn]c in, NCHW[oc_bn]c out with the epilogue."""
    w = SHAPES[0]
    cfg = {**im2col.default_config(w), "mr": 4}
    rng = np.random.default_rng(3)
    d = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    g = rng.standard_normal((w.K, w.C, 3, 3)).astype("float32")
    b = rng.standard_normal(w.K).astype("float32")
    ref = np.maximum(conv2d.reference(d, g, 1, 1) + b[None, :, None, None], 0)

    def blocked(x, bn):
        n, c, h, ww = x.shape
        return np.ascontiguousarray(x.reshape(n, c // bn, bn, h, ww).transpose(0, 1, 3, 4, 2))

    f = im2col.build(w, cfg, epilogue=Epilogue((("bias",), ("relu",))), opt_level=1,
                     layout_in=layout_in, layout_out="NCHWc", ic_bn=4, oc_bn=8)
    out = np.full((1, 2, w.OH, w.OW, 8), np.nan, "float32")
    f(d if layout_in == "NCHW" else blocked(d, 4), im2col.pack_weight(g, cfg), b, out)
    np.testing.assert_allclose(out, blocked(ref, 8), rtol=1e-4, atol=1e-4)
    with pytest.raises(tt.ScheduleError, match="oc_bn"):
        im2col.schedule(w, {**cfg, "mr": 8, "nr": 8}, None, "NCHW", "NCHWc", 4, 4)
