"""Loop-nest features: fixed length, deterministic, different across configs."""

from __future__ import annotations

import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import TuningError
from tiletune.tuner import Task
from tiletune.tuner.models.features import (
    ACCESS_WIDTH,
    GLOBAL_WIDTH,
    KINDS,
    LOOP_WIDTH,
    MAX_DEPTH,
    STORE_HEADER,
    STORE_WIDTH,
    evaluate,
    feature_length,
    loop_features,
    lower_for_features,
    make_featurizer,
    slog,
)


def _matmul(n=32, split=8):
    A = tt.placeholder((n, n), "float32", name="A")
    B = tt.placeholder((n, n), "float32", name="B")
    k = tt.reduce_axis(n, name="k")
    C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    i, j = s[C].axis
    jo, ji = s[C].split(j, factor=split)
    s[C].vectorize(ji)
    s[C].parallel(i)
    return s, [A, B, C]


def test_strides_and_annotations_of_a_matmul():
    s, args = _matmul()
    v = loop_features(lower_for_features(s, args))
    assert v.shape == (feature_length(),)
    # the update store C[i, j] += A[i, k] * B[k, j] is the second store; loops i, jo, ji, k
    row = v[GLOBAL_WIDTH + STORE_WIDTH: GLOBAL_WIDTH + 2 * STORE_WIDTH]
    assert row[0] == 1.0 and row[5] == 1.0  # present, reads the buffer it writes
    loops = row[STORE_HEADER: STORE_HEADER + MAX_DEPTH * LOOP_WIDTH].reshape(MAX_DEPTH, -1)
    present = loops[:, 0] == 1
    assert present.sum() == 4
    kinds = [KINDS[int(np.argmax(r[2:2 + len(KINDS)]))] for r in loops[present]]
    assert kinds == ["parallel", "serial", "vectorized", "serial"]
    acc = row[STORE_HEADER + MAX_DEPTH * LOOP_WIDTH:].reshape(-1, ACCESS_WIDTH)
    # accesses: C (write), C (read), A, B; strides over the loop slots (i, jo, ji, k)
    a_strides = acc[2, 2 + MAX_DEPTH - 4: 2 + MAX_DEPTH]
    b_strides = acc[3, 2 + MAX_DEPTH - 4: 2 + MAX_DEPTH]
    assert list(a_strides) == [slog(32), 0, 0, slog(1)]
    assert list(b_strides) == [0, slog(8), slog(1), slog(32)]


def test_fixed_length_deterministic_and_config_dependent():
    task = Task("conv2d", (1, 16, 14, 14, 32, 3, 3, 1, 1))
    idx = task.space.sample(8, rng=0)
    f = make_featurizer(task, "loop")
    X = f(idx)
    assert X.shape == (8, feature_length()) and np.isfinite(X).all()
    assert len({r.tobytes() for r in X}) == 8  # every config differs
    g = make_featurizer(task, "loop")
    np.testing.assert_array_equal(g(idx), X)  # deterministic, fresh cache
    assert len(f.cache) == 8 and f(idx[:2]) is not None and len(f.cache) == 8
    h = make_featurizer(task, "hybrid")(idx)
    assert h.shape == (8, feature_length() + task.space.knob_features([0]).shape[1])
    assert make_featurizer(task, "knob") == task.space.knob_features


def test_same_length_across_shapes_and_templates():
    shapes = [Task("conv2d", (1, 16, 14, 14, 32, 3, 3, 1, 1)),
              Task("conv2d", (1, 32, 7, 7, 64, 1, 1, 1, 0)), Task("dense", (16, 64, 32)),
              Task("depthwise", (1, 16, 14, 14, 3, 1, 1))]
    for t in shapes:
        X = make_featurizer(t, "loop")(t.space.sample(2, rng=1))
        assert X.shape == (2, feature_length())


def test_invalid_config_gets_zero_row_and_bad_kind_raises():
    task = Task("dense", (16, 64, 32))
    bad = next(i for i in range(len(task.space)) if not task.space.is_valid(i))
    row = make_featurizer(task, "loop")([bad])
    assert row.shape == (1, feature_length()) and not row.any()
    with pytest.raises(TuningError, match="unknown feature kind"):
        make_featurizer(task, "curve")


def test_evaluate_floor_semantics():
    from tiletune.ir.expr import Const, Var
    v = Var("v")
    e = (v - 3) // 2 + (v - 3) % 2
    assert evaluate(e, {v.uid: 0}) == (-3) // 2 + (-3) % 2
    assert evaluate(Const(7, "int64"), {}) == 7
