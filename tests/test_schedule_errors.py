"""Illegal primitives raise ScheduleError when called, with the stage's loop order."""
import pytest

import tiletune as tt
from tests.ops import conv2d_nchw, matmul
from tiletune.errors import ScheduleError


@pytest.fixture
def mm():
    A, B, C = matmul(64, 64, 64)
    return A, B, C, tt.create_schedule(C)


def test_foreign_axis(mm):
    A, B, C, s = mm
    A2, B2, C2 = matmul(8, 8, 8)
    with pytest.raises(ScheduleError, match="not a loop of stage C") as e:
        s[C].split(C2.op.axis[0], factor=2)
    assert "loops outermost first" in str(e.value)


def test_non_leaf_axis(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    s[C].split(i, factor=8)
    with pytest.raises(ScheduleError, match="already split"):
        s[C].split(i, factor=4)


@pytest.mark.parametrize("factor", [0, -2])
def test_zero_factor(mm, factor):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="positive"):
        s[C].split(s[C].axis[0], factor=factor)


def test_split_needs_one_of_factor_nparts(mm):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="exactly one"):
        s[C].split(s[C].axis[0], factor=2, nparts=2)


def test_duplicate_reorder(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    with pytest.raises(ScheduleError, match="more than once"):
        s[C].reorder(i, j, i)


def test_fuse_non_adjacent(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    with pytest.raises(ScheduleError, match="consecutive"):
        s[C].fuse(i, k)


def test_fuse_data_and_reduce(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    with pytest.raises(ScheduleError, match="mix data and reduce"):
        s[C].fuse(j, k)


def test_vectorize_reduce_axis(mm):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="reduce loop"):
        s[C].vectorize(s[C].reduce_axis[0])


def test_parallel_reduce_axis(mm):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="race"):
        s[C].parallel(s[C].reduce_axis[0])


def test_vectorize_too_wide(mm):
    A, B, C, s = mm
    A, B, C = matmul(1024, 1024, 4)
    s = tt.create_schedule(C)
    with pytest.raises(ScheduleError, match="lanes"):
        s[C].vectorize(s[C].axis[1])


def test_conflicting_annotations(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    s[C].parallel(i)
    with pytest.raises(ScheduleError, match="already marked parallel"):
        s[C].vectorize(i)


def test_compute_at_non_consumer():
    data, weight, P, O = conv2d_nchw(1, 4, 8, 8, 4, 3, 3, 1, 1)
    other = tt.compute(data.shape, lambda n, c, h, w: data[n, c, h, w] * 2.0, name="scaled")
    s = tt.create_schedule([O, other])
    with pytest.raises(ScheduleError, match="does not read pad"):
        s[P].compute_at(s[other], s[other].axis[2])


def test_compute_at_with_reader_outside_is_reported_at_lowering():
    data, weight, P, O = conv2d_nchw(1, 4, 8, 8, 4, 3, 3, 1, 1)
    extra = tt.compute(O.shape, lambda n, k, h, w: O[n, k, h, w] * 2.0, name="scaled")
    s = tt.create_schedule(extra)
    s[P].compute_at(s[extra], s[extra].axis[2])
    with pytest.raises(ScheduleError, match="reader conv is not computed inside"):
        tt.lower(s, [data, weight, extra])


def test_compute_at_output():
    data, weight, P, O = conv2d_nchw(1, 4, 8, 8, 4, 3, 3, 1, 1)
    s = tt.create_schedule(O)
    with pytest.raises(ScheduleError, match="output"):
        s[O].compute_at(s[P], s[P].axis[0])


def test_compute_inline_reduction():
    data, weight, P, O = conv2d_nchw(1, 4, 8, 8, 4, 3, 3, 1, 1)
    extra = tt.compute(O.shape, lambda n, k, h, w: O[n, k, h, w] * 2.0, name="scaled")
    s = tt.create_schedule(extra)
    with pytest.raises(ScheduleError, match="reduction cannot be inlined"):
        s[O].compute_inline()


def test_placeholder_has_no_stage(mm):
    A, B, C, s = mm
    with pytest.raises(ScheduleError, match="placeholder"):
        s[A]


def test_spatial_block_must_be_innermost(mm):
    A, B, C, s = mm
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    s[C].reorder(k, i, j)
    s[C].spatial_for(j)
    with pytest.raises(ScheduleError, match="spatial"):
        s[C].reorder(k, j, i)


def test_cache_write_after_split(mm):
    A, B, C, s = mm
    s[C].split(s[C].axis[0], factor=4)
    with pytest.raises(ScheduleError, match="before any other primitive"):
        s.cache_write(C, "local")


def test_error_message_golden(mm, golden):
    A, B, C, s = mm
    i, j = s[C].axis
    io, ii = s[C].split(i, factor=16)
    s[C].vectorize(j)
    try:
        s[C].split(i, factor=4)
    except ScheduleError as e:
        golden("error_non_leaf.txt", str(e) + "\n")
    else:
        pytest.fail("no error")
