"""Reads and writes the bounds analysis proves out of bounds are LoweringErrors."""

from __future__ import annotations

import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import LoweringError


def test_a_read_past_the_end_is_a_lowering_error():
    """Fault: `A[i + 1]` over every i < n compiled and read garbage past A's end."""
    A = tt.placeholder((16,), "float32", name="A")
    B = tt.compute((16,), lambda i: A[i + 1], name="B")
    s = tt.create_schedule(B)
    with pytest.raises(LoweringError, match=r"read of A\[.*\] is out of bounds: axis 0 "
                                            r"ranges over \[1, 16\] but A has 16 elements"):
        tt.build(s, [A, B])
    with pytest.raises(LoweringError):
        tt.lower(s, [A, B])


def test_a_read_before_the_start_and_a_2d_axis():
    A = tt.placeholder((8, 8), "float32", name="A")
    B = tt.compute((8, 8), lambda i, j: A[i, j - 1], name="B")
    with pytest.raises(LoweringError, match="axis 1 ranges over \\[-1, 6\\]"):
        tt.lower(tt.create_schedule(B), [A, B])


def test_in_bounds_and_guarded_accesses_still_build():
    A = tt.placeholder((16,), "float32", name="A")
    B = tt.compute((15,), lambda i: A[i + 1], name="B")  # in bounds
    P = tt.compute((17,), lambda i: tt.if_then_else(i >= 1, A[i - 1], 0.0), name="P")
    f = tt.build(tt.create_schedule(B), [A, B])
    g = tt.build(tt.create_schedule(P), [A, P])
    a = np.arange(16, dtype="float32")
    b, p = np.zeros(15, "float32"), np.zeros(17, "float32")
    f(a, b)
    g(a, p)
    np.testing.assert_array_equal(b, a[1:])
    np.testing.assert_array_equal(p, np.concatenate([[0], a]))
