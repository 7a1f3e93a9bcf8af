"""Pruning reaches the requested sparsity at each granularity, and prunes the smallest."""
from __future__ import annotations

import numpy as np
import pytest

from tiletune.compress import prune, shrink_filters
from tiletune.compress.prune import magnitude_mask
from tiletune.errors import CompressError

RNG = np.random.default_rng(0)
W = {"conv": RNG.standard_normal((32, 16, 3, 3)).astype(np.float32),
     "fc": RNG.standard_normal((64, 128)).astype(np.float32)}


@pytest.mark.parametrize("s", [0.0, 0.5, 0.8, 0.95])
def test_element(s):
    p = prune(W, s, "element")
    for name, w in W.items():
        assert p.sparsity[name] == pytest.approx(s, abs=0.5 / w.size)
        kept = np.abs(w[p.masks[name]])
        dropped = np.abs(w[~p.masks[name]])
        if kept.size and dropped.size:
            assert dropped.max() <= kept.min()
        assert np.all(p.weights[name][~p.masks[name]] == 0)


@pytest.mark.parametrize("block", [(16, 1), (1, 16), (4, 4)])
def test_block(block):
    p = prune(W, 0.75, "block", block=block)
    for name, w in W.items():
        m = p.masks[name].reshape(w.shape[0], -1)
        br, bc = block
        tiles = m.reshape(m.shape[0] // br, br, m.shape[1] // bc, bc)
        assert np.all(tiles.all(axis=(1, 3)) | ~tiles.any(axis=(1, 3)))  # whole tiles only
        assert p.sparsity[name] == pytest.approx(0.75, abs=1 / tiles[:, 0, :, 0].size)


def test_kernel_filter_channel():
    m = magnitude_mask(W["conv"], 0.5, "kernel")
    k = m.all(axis=(2, 3))
    assert np.all(k | ~m.any(axis=(2, 3))) and k.mean() == 0.5
    f = magnitude_mask(W["conv"], 0.25, "filter")
    assert f.reshape(32, -1).all(axis=1).sum() == 24
    c = magnitude_mask(W["conv"], 0.5, "channel")
    assert c.all(axis=(0, 2, 3)).sum() == 8 and c.any(axis=(0, 2, 3)).sum() == 8
    with pytest.raises(CompressError, match="4-D"):
        magnitude_mask(W["fc"], 0.5, "kernel")


def test_bank_balanced_rows_have_equal_counts():
    p = prune(W, 0.9, "bank", bank=16)
    for name, w in W.items():
        rows = p.masks[name].reshape(w.shape[0], -1)
        banks = rows.reshape(rows.shape[0], -1, 16).sum(axis=2)
        assert np.all(banks == 2)  # 16 - round(0.9 * 16) = 2 per bank
    whole = prune({"fc": W["fc"]}, 0.5, "bank")
    assert np.all(whole.masks["fc"].sum(axis=1) == 64)


def test_shrink_filters_makes_smaller_layers():
    w1 = W["conv"]
    w2 = RNG.standard_normal((8, 32, 3, 3)).astype(np.float32)
    b1 = np.arange(32, dtype=np.float32)
    n1, nb, n2, idx = shrink_filters(w1, b1, w2, 0.25)
    assert n1.shape == (24, 16, 3, 3) and nb.shape == (24,) and n2.shape == (8, 24, 3, 3)
    assert np.array_equal(n2, w2[:, idx]) and np.array_equal(nb, b1[idx])
    with pytest.raises(CompressError, match="does not read"):
        shrink_filters(w1, b1, W["fc"], 0.25)


def test_bad_input():
    with pytest.raises(CompressError, match=r"\[0, 1\)"):
        prune(W, 1.0)
    with pytest.raises(CompressError, match="granularity"):
        prune(W, 0.5, "row")
    with pytest.raises(CompressError, match="does not tile"):
        prune(W, 0.5, "block", block=(5, 1))
    with pytest.raises(CompressError, match="no weights"):
        prune({}, 0.5)
    assert prune(W, {"fc": 0.5}).sparsity["conv"] == 0.0
