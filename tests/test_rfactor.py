"""rfactor: partial reductions in their own stage, checked against NumPy."""
import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import ScheduleError


def row_sum(n=37, m=29):
    A = tt.placeholder((n, m), "float32", name="A")
    k = tt.reduce_axis(m, name="k")
    B = tt.compute((n,), lambda i: tt.sum(A[i, k], axis=k), name="B")
    return A, B


@pytest.mark.parametrize("factor_axis", [0, 1])
def test_rfactor_parallel_over_factored_axis(factor_axis, rng):
    A, B = row_sum()
    s = tt.create_schedule(B)
    ko, ki = s[B].split(B.op.reduce_axis[0], nparts=4)
    BF = s.rfactor(B, ko, factor_axis=factor_axis)
    assert BF.shape == ((4, 37) if factor_axis == 0 else (37, 4))
    s[BF].parallel(s[BF].op.axis[0])
    a = rng.random((37, 29), "float32")
    b = np.zeros(37, "float32")
    tt.build(s, [A, B], opt_level=1)(a, b)
    np.testing.assert_allclose(b, a.sum(axis=1), rtol=1e-5)


def test_rfactor_of_one_of_two_reduce_axes_of_max(rng):
    X = tt.placeholder((6, 9, 7), "float32", name="X")
    r, q = tt.reduce_axis(9, name="r"), tt.reduce_axis((2, 7), name="q")
    M = tt.compute((6,), lambda i: tt.max(X[i, r, q], axis=[r, q]), name="M")
    s = tt.create_schedule(M)
    MF = s.rfactor(M, s[M].reduce_axis[1])  # q, unsplit: B.rf reduces over r only
    s[MF].vectorize(s[MF].op.axis[1])
    x = rng.standard_normal((6, 9, 7)).astype("float32")
    out = np.zeros(6, "float32")
    tt.build(s, [X, M], opt_level=1)(x, out)
    np.testing.assert_allclose(out, x[:, :, 2:].max(axis=(1, 2)))


def test_rfactor_moves_attached_producer(rng):
    A = tt.placeholder((20, 30), "float32", name="A")
    T = tt.compute((20, 30), lambda i, j: A[i, j] * 3.0, name="T")
    k = tt.reduce_axis(30, name="k")
    B = tt.compute((20,), lambda i: tt.sum(T[i, k], axis=k), name="B")
    s = tt.create_schedule(B)
    ko, ki = s[B].split(k, factor=8)
    s[T].compute_at(s[B], ko)
    BF = s.rfactor(B, ki)
    assert s[T].attach_stage is s[BF]
    a = rng.random((20, 30), "float32")
    b = np.zeros(20, "float32")
    tt.build(s, [A, B], opt_level=1)(a, b)
    np.testing.assert_allclose(b, (a * 3).sum(axis=1), rtol=1e-5)


def test_rfactor_errors():
    A, B = row_sum()
    s = tt.create_schedule(B)
    with pytest.raises(ScheduleError, match="data loop"):
        s.rfactor(B, s[B].axis[0])
    s[B].split(s[B].axis[0], factor=4)
    with pytest.raises(ScheduleError, match="must come before"):
        s.rfactor(B, s[B].reduce_axis[0])
