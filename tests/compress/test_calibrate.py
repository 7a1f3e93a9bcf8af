"""Calibration on synthetic distributions with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from tiletune.compress.quantize import (
    Observer,
    Range,
    activation_qparams,
    calibrate,
    kl_divergence_at,
    kl_threshold,
    quantize_bias,
    quantize_weight,
)
from tiletune.errors import CompressError


def _batches(x, n=4):
    return np.array_split(x, n)


def test_minmax_is_the_observed_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 5.0, 10000)
    r = calibrate(_batches(x), "minmax")
    assert r.lo == pytest.approx(x.min()) and r.hi == pytest.approx(x.max())
    r = calibrate(_batches(np.abs(x)), "minmax")
    assert r.lo == 0.0


def test_percentile_of_half_normal():
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal(400_000))
    r = calibrate(_batches(x), "percentile", percentile=99.0)
    # the 99th percentile of |N(0, 1)| is 2.5758
    assert r.lo == 0.0 and r.hi == pytest.approx(2.5758, abs=0.02)


def test_histogram_range_doubling_is_exact():
    """Batches growing in range give the same histogram as one batch at the final range."""
    rng = np.random.default_rng(2)
    parts = [rng.uniform(0, 1, 1000), rng.uniform(0, 3, 1000), rng.uniform(0, 20, 1000)]
    obs = Observer(256)
    for p in parts:
        obs.update(p)
    assert obs.count == 3000 and obs.hist.sum() == 3000
    ref = np.histogram(np.concatenate(parts), bins=256, range=(0, obs.top))[0]
    assert np.array_equal(obs.hist, ref)


def test_kl_clips_outliers_and_keeps_uniform_data():
    rng = np.random.default_rng(3)
    g = np.abs(rng.standard_normal(200_000))
    outliers = np.full(5, 60.0)
    r = calibrate(_batches(np.concatenate([g, outliers])), "kl")
    assert 2.0 < r.hi < 10.0  # far below the 60.0 maximum, above most of the mass
    u = rng.uniform(0, 1, 200_000)
    assert calibrate(_batches(u), "kl").hi > 0.95  # nothing to gain by clipping uniform data


def test_kl_threshold_small_support_is_exact():
    h = np.zeros(2048)
    h[:50] = 10
    assert kl_threshold(h, 128) == 50


def test_kl_threshold_is_the_argmin_of_the_divergence():
    rng = np.random.default_rng(5)
    x = np.abs(np.concatenate([rng.standard_normal(100_000), rng.standard_normal(50) * 30]))
    obs = Observer(1024)
    obs.update(x)
    t = int(kl_threshold(obs.hist, 128))
    best = kl_divergence_at(obs.hist, t, 128)
    last = int(np.nonzero(obs.hist)[0][-1]) + 1
    others = [kl_divergence_at(obs.hist, i, 128) for i in range(128, last + 1, 7)]
    assert best <= min(others) + 1e-12
    assert t < last  # the outliers are clipped


def test_empty_calibration_set_is_a_clear_error():
    with pytest.raises(CompressError, match="calibration set is empty"):
        calibrate([], "kl")
    with pytest.raises(CompressError, match="empty"):
        calibrate([np.zeros((0, 3))], "minmax")
    with pytest.raises(CompressError, match="unknown calibration method"):
        calibrate([np.ones(3)], "entropy2")
    with pytest.raises(CompressError, match="NaN"):
        calibrate([np.array([1.0, np.nan])], "minmax")


def test_activation_qparams_represent_zero_and_the_ends():
    qp = activation_qparams(Range(-1.0, 3.0))
    assert qp.dequantize(qp.quantize(np.array([0.0])))[0] == 0.0
    x = np.array([-1.0, 3.0])
    assert np.allclose(qp.dequantize(qp.quantize(x)), x, atol=qp.scale / 2)
    q7 = activation_qparams(Range(0.0, 6.0), qmax=127)
    assert q7.quantize(np.array([100.0]))[0] == 127 and q7.zero_point == 0


def test_per_channel_symmetric_weights():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 4, 3, 3)) * np.arange(1, 9).reshape(8, 1, 1, 1)
    w[3] = 0
    q, s = quantize_weight(w)
    assert q.dtype == np.int8 and q.min() >= -127
    for k in range(8):
        if k != 3:
            assert np.abs(q[k]).max() == 127
    assert np.all(q[3] == 0) and s[3] == 1.0
    err = np.abs(q * s.reshape(-1, 1, 1, 1) - w)
    assert np.all(err <= s.reshape(-1, 1, 1, 1) / 2 + 1e-12)
    b = quantize_bias(np.array([0.5] * 8), 0.01, s)
    assert b.dtype == np.int32 and b[0] == round(0.5 / (0.01 * s[0]))


def test_kl_ignores_the_zero_spike_of_relu_outputs():
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal(200_000), 0.0)  # half exact zeros
    r = calibrate(_batches(x), "kl")
    assert 3.0 < r.hi <= x.max()  # a 3-4 sigma clip, as on the half-normal alone
    assert calibrate([np.zeros(10)], "kl").hi > 0  # all zeros: a valid (tiny) range
