import pytest

import tiletune as tt
from tiletune.errors import DSLError


def test_dtype_mix_names_both_dtypes():
    A = tt.placeholder((4,), "float32", name="A")
    B = tt.placeholder((4,), "int8", name="B")
    with pytest.raises(DSLError, match="float32 and int8"):
        tt.compute((4,), lambda i: A[i] + B[i])


def test_python_scalars_adopt_dtype():
    A = tt.placeholder((4,), "int8", name="A")
    C = tt.compute((4,), lambda i: A[i] * 3 + 1, name="C")
    assert C.dtype == "int8"
    F = tt.placeholder((4,), "float64", name="F")
    assert tt.compute((4,), lambda i: F[i] * 0.5).dtype == "float64"


def test_float_literal_with_int_is_error():
    A = tt.placeholder((4,), "int32", name="A")
    with pytest.raises(DSLError, match="cast"):
        tt.compute((4,), lambda i: A[i] * 0.5)


def test_truth_value_of_expression_is_error():
    A = tt.placeholder((4,), "float32", name="A")
    with pytest.raises(DSLError, match="truth value"):
        tt.compute((4,), lambda i: A[i] if A[i] > 0 else 0.0)
    with pytest.raises(DSLError):
        tt.compute((4,), lambda i: (i > 0) and (i < 3))


def test_wrong_index_count():
    A = tt.placeholder((4, 4), "float32", name="A")
    with pytest.raises(DSLError, match="2 dimensions"):
        tt.compute((4,), lambda i: A[i])


def test_axes_are_reachable():
    A = tt.placeholder((4, 5), "float32", name="A")
    k = tt.reduce_axis(5, name="k")
    C = tt.compute((4,), lambda i: tt.sum(A[i, k], axis=k), name="C")
    assert [a.name for a in C.op.axis] == ["i"]
    assert C.op.reduce_axis[0] is k
    s = tt.create_schedule(C)
    assert s[C].axis == C.op.axis and s[C].reduce_axis == (k,)


def test_integer_division_floor_dtype_rules():
    A = tt.placeholder((4,), "int32", name="A")
    with pytest.raises(DSLError, match="//"):
        tt.compute((4,), lambda i: A[i] / 2)
    F = tt.placeholder((4,), "float32", name="F")
    with pytest.raises(DSLError, match="integers"):
        tt.compute((4,), lambda i: F[i] // 2.0)


def test_bad_dtype_and_shape():
    with pytest.raises(DSLError, match="unsupported dtype"):
        tt.placeholder((4,), "float16")
    with pytest.raises(DSLError, match="non-positive"):
        tt.placeholder((4, 0))
    with pytest.raises(DSLError, match="empty range"):
        tt.reduce_axis((3, 3))


def test_reduction_must_be_whole_body():
    A = tt.placeholder((4, 5), "float32", name="A")
    k = tt.reduce_axis(5, name="k")
    with pytest.raises(DSLError, match="whole body"):
        tt.compute((4,), lambda i: tt.sum(A[i, k], axis=k) + 1.0)


def test_math_needs_float():
    A = tt.placeholder((4,), "int32", name="A")
    with pytest.raises(DSLError, match="float"):
        tt.compute((4,), lambda i: tt.exp(A[i]))
    tt.compute((4,), lambda i: tt.abs(A[i]))


def test_elementwise_max_min():
    A = tt.placeholder((4,), "float32", name="A")
    C = tt.compute((4,), lambda i: tt.min(tt.max(A[i], 0.0), 6.0))
    assert C.dtype == "float32"
