"""Attached stages follow their loop through later transforms (issue 17).

A stage computed at a loop of its consumer (``compute_at``, or the cache stage of
``cache_write``) moves with that loop: to the outer loop of a split or tile, to the fused loop
of a fuse, to the matching loop of the cache stage when ``cache_write`` replaces the consumer.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import tiletune as tt
from tests import ops
from tiletune.errors import ScheduleError, TileTuneError


def build_check(s, args, inputs, expected):
    out = np.empty(args[-1].shape, "float32")
    tt.build(s, args, opt_level=1)(*inputs, out)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------- the three cases
def scaled_row_sum():
    X = tt.placeholder((40, 23), "float32", name="X")
    T = tt.compute((40, 23), lambda i, j: X[i, j] * 2.0, name="T")
    r = tt.reduce_axis(23, name="k")
    R = tt.compute((40,), lambda i: tt.sum(T[i, r], axis=r), name="R")
    return X, T, R


def test_fuse_after_cache_write_attached(rng):
    A = tt.placeholder((33, 17), "float32", name="A")
    B = tt.placeholder((17, 16), "float32", name="B")
    k = tt.reduce_axis(17, name="k")
    C = tt.compute((33, 16), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    CC = s.cache_write(C, "local")
    i, j = s[C].axis
    s[CC].compute_at(s[C], i)
    f = s[C].fuse(i, j)
    assert s[CC].attach_ivar is f
    a, b = rng.random((33, 17), "float32"), rng.random((17, 16), "float32")
    build_check(s, [A, B, C], [a, b], a @ b)


def test_split_nparts_of_reduce_attach_loop(rng):
    X, T, R = scaled_row_sum()
    s = tt.create_schedule(R)
    s[T].compute_at(s[R], s[R].reduce_axis[0])
    ko, ki = s[R].split(s[R].reduce_axis[0], nparts=3)
    assert s[T].attach_ivar is ko
    x = rng.random((40, 23), "float32")
    build_check(s, [X, R], [x], (x * 2).sum(axis=1))


def test_cache_write_moves_producer_to_cache_stage(rng):
    X, T, R = scaled_row_sum()
    s = tt.create_schedule(R)
    s[T].compute_at(s[R], s[R].axis[0])
    RR = s.cache_write(R, "local")
    s[RR].compute_at(s[R], s[R].axis[0])
    assert s[T].attach_stage is s[RR] and s[T].attach_ivar is s[RR].axis[0]
    x = rng.random((40, 23), "float32")
    build_check(s, [X, R], [x], (x * 2).sum(axis=1))


# ----------------------------------------------------------------- each transform x attach loop
def scaled_matmul(M=13, N=10, K=7):
    """C = (A * 2) @ B with the scaling a separate stage T (the one attached)."""
    A = tt.placeholder((M, K), "float32", name="A")
    B = tt.placeholder((K, N), "float32", name="B")
    T = tt.compute((M, K), lambda i, k: A[i, k] * 2.0, name="T")
    k = tt.reduce_axis(K, name="k")
    C = tt.compute((M, N), lambda i, j: tt.sum(T[i, k] * B[k, j], axis=k), name="C")
    return A, B, T, C


def _loop(s, C, where):
    i, j = s[C].axis
    return {"outer": i, "inner": j, "reduce": s[C].reduce_axis[0]}[where]


def _split_factor(s, T, C, at):
    outer, _ = s[C].split(at, factor=3)
    return outer


def _split_nparts(s, T, C, at):
    outer, _ = s[C].split(at, nparts=2)
    return outer


def _tile(s, T, C, at):
    i, j = s[C].axis
    io, jo, _, _ = s[C].tile(i, j, 4, 3)
    return {id(i): io, id(j): jo}.get(id(at), at)


def _fuse(s, T, C, at):
    if at.kind == "reduce":
        ko, ki = s[C].split(at, factor=2)
        return s[C].fuse(ko, ki)
    return s[C].fuse(*s[C].axis)


def _reorder(s, T, C, at):
    s[C].reorder(*reversed(s[C].leaf_iter_vars))
    return at


def _cache_write(s, T, C, at):
    CL = s.cache_write(C, "local")
    return {id(C.op.axis[0]): CL.op.axis[0], id(C.op.axis[1]): CL.op.axis[1]}.get(id(at), at)


def _cache_read(s, T, C, at):
    TL = s.cache_read(T, "local", [C])
    assert s[TL].attach_stage is s[C] and s[TL].attach_ivar is at
    s.cache_read(C.op.input_tensors[1], "local", [C])  # B: a root copy
    return at


TRANSFORMS = {"split_factor": _split_factor, "split_nparts": _split_nparts, "tile": _tile,
              "fuse": _fuse, "reorder": _reorder, "cache_write": _cache_write,
              "cache_read": _cache_read}


@pytest.mark.parametrize("where", ["outer", "inner", "reduce"])
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_transform_after_compute_at(transform, where, rng):
    A, B, T, C = scaled_matmul()
    s = tt.create_schedule(C)
    at = _loop(s, C, where)
    s[T].compute_at(s[C], at)
    expected_loop = TRANSFORMS[transform](s, T, C, at)
    assert s[T].attach_ivar is expected_loop
    owner = s[T].attach_stage
    assert any(iv is expected_loop for iv in owner.leaf_iter_vars)
    a, b = rng.random((13, 7), "float32"), rng.random((7, 10), "float32")
    build_check(s, [A, B, C], [a, b], (a * 2) @ b)


# ----------------------------------------------------------------- printing and errors
def test_lower_shows_where_the_stage_landed():
    X, T, R = scaled_row_sum()
    s = tt.create_schedule(R)
    s[T].compute_at(s[R], s[R].reduce_axis[0])
    s[R].split(s[R].reduce_axis[0], factor=8)
    text = str(tt.lower(s, [X, R]))
    assert "# T computed at loop k.outer of R (moved: split k -> k.outer)" in text


def _two_level():
    """P read by Q, both attached at C; Q inside P's loop."""
    A = tt.placeholder((12, 10), "float32", name="A")
    P = tt.compute((12, 10), lambda i, j: A[i, j] + 1.0, name="P")
    Q = tt.compute((12, 10), lambda i, j: P[i, j] * 3.0, name="Q")
    C = tt.compute((12, 10), lambda i, j: Q[i, j] - 2.0, name="C")
    s = tt.create_schedule(C)
    i, j = s[C].axis
    s[P].compute_at(s[C], i)
    s[Q].compute_at(s[C], j)
    return A, P, Q, C, s


def test_two_level_attachment_survives_split_and_fuse(rng):
    A, P, Q, C, s = _two_level()
    i, j = s[C].axis
    io, ii = s[C].split(i, factor=5)
    s[C].fuse(ii, j)
    a = rng.random((12, 10), "float32")
    build_check(s, [A, C], [a], (a + 1) * 3 - 2)


def test_reorder_breaking_an_attachment_fails_at_the_call(golden):
    A, P, Q, C, s = _two_level()
    i, j = s[C].axis
    with pytest.raises(ScheduleError) as e:
        s[C].reorder(j, i)
    golden("error_reorder_attachment.txt", str(e.value) + "\n")
    assert s[C].leaf_iter_vars == [i, j]  # unchanged


def test_vectorize_extent_checked_after_bound_inference(rng):
    """TVM's GEMM tutorial: vectorize the cache stage's 1024-wide axis, attached at a tile."""
    A, B, T, C = scaled_matmul(64, 1024, 8)
    s = tt.create_schedule(C)
    CC = s.cache_write(C, "local")
    mo, no, mi, ni = s[C].tile(C.op.axis[0], C.op.axis[1], 8, 16)
    s[CC].compute_at(s[C], no)
    s[CC].vectorize(s[CC].op.axis[1])  # 1024 before inference, 16 after
    s[T].compute_inline()
    a, b = rng.random((64, 8), "float32"), rng.random((8, 1024), "float32")
    build_check(s, [A, B, C], [a, b], (a * 2) @ b)
    s2 = tt.create_schedule(C)
    CC2 = s2.cache_write(C, "local")
    s2[CC2].vectorize(s2[CC2].op.axis[1])  # stays at the root: 1024 lanes is an error
    with pytest.raises(ScheduleError, match="1024 lanes after bound inference"):
        tt.lower(s2, [A, B, C])


# ----------------------------------------------------------------- random programs and schedules


def _program(kind, dims, rng):
    """(kernel args, input arrays, NumPy result, producer tensors, consumer tensor)."""
    if kind == "matmul":
        M, N, K = dims
        A, B, T, C = scaled_matmul(M, N, K)
        a, b = rng.random((M, K), "float32"), rng.random((K, N), "float32")
        return [A, B, C], [a, b], (a * 2) @ b, [T], C
    if kind == "conv":
        H, W, K = dims
        data, weight, P, O = ops.conv2d_nchw(1, 2, H, W, K, 3, 3, 1, 1)
        a = rng.random((1, 2, H, W), "float32")
        w = rng.random((K, 2, 3, 3), "float32")
        return [data, weight, O], [a, w], ops.conv2d_ref(a, w, 1, 1), [P], O
    M, N, _ = dims
    X = tt.placeholder((M, N), "float32", name="X")
    T = tt.compute((M, N), lambda i, j: X[i, j] * 2.0, name="T")
    U = tt.compute((M, N), lambda i, j: T[i, j] + 1.0, name="U")
    r = tt.reduce_axis(N, name="r")
    R = tt.compute((M,), lambda i: tt.sum(U[i, r], axis=r), name="R")
    x = rng.random((M, N), "float32")
    return [X, R], [x], (x * 2 + 1).sum(axis=1), [T, U], R


def _step(s, stages, data, focus=None):
    """One random primitive on a random stage (``focus`` half of the time), steered away from
    the plainly illegal ones (one still illegal raises ScheduleError, which is accepted)."""
    st = data.draw(hs.sampled_from(stages), label="stage")
    if focus is not None and data.draw(hs.booleans(), label="focus?"):
        st = focus
    if st.attach_type == "inline":
        return
    leaves = list(st.leaf_iter_vars)
    what = data.draw(hs.sampled_from(["split", "nparts", "tile", "fuse", "reorder", "vectorize",
                                      "unroll", "parallel", "compute_at", "compute_at",
                                      "compute_at", "inline", "cache_write", "cache_read"]),
                     label="what")
    same_kind = [k for k in range(len(leaves) - 1) if leaves[k].kind == leaves[k + 1].kind]
    data_leaves = [iv for iv in leaves if iv.kind == "data"]
    if what in ("split", "nparts"):
        iv = data.draw(hs.sampled_from(leaves), label="loop")
        n = data.draw(hs.integers(1, max(1, iv.extent)), label="factor")
        st.split(iv, **({"factor": n} if what == "split" else {"nparts": n}))
    elif what == "tile" and len(data_leaves) >= 2:
        p = data.draw(hs.integers(0, len(data_leaves) - 2), label="tile at")
        st.tile(data_leaves[p], data_leaves[p + 1], data.draw(hs.integers(1, 6)),
                data.draw(hs.integers(1, 6)))
    elif what == "fuse" and same_kind:
        p = data.draw(hs.sampled_from(same_kind), label="fuse at")
        st.fuse(leaves[p], leaves[p + 1])
    elif what == "reorder":
        st.reorder(*data.draw(hs.permutations(leaves), label="order"))
    elif what == "vectorize" and leaves[-1].kind == "data":
        st.vectorize(leaves[-1])
    elif what == "unroll":
        st.unroll(data.draw(hs.sampled_from(leaves), label="loop"))
    elif what == "parallel" and data_leaves:
        st.parallel(data_leaves[0])
    elif what == "compute_at" and st.origin_op not in s.output_ops:
        readers = [c for c in s.stages if s._reaches(st, c) and c.attach_type != "inline"]
        if readers:
            parent = data.draw(hs.sampled_from(readers), label="parent")
            st.compute_at(parent, data.draw(hs.sampled_from(list(parent.leaf_iter_vars))))
    elif what == "inline" and not st.op.reduce_axis and not st.relations:
        st.compute_inline()
    elif what == "cache_write" and not st.relations and st.attach_type == "root":
        stages.append(s[s.cache_write(st.op.output(0), "local")])
    elif what == "cache_read" and st.op.input_tensors:
        tensor = data.draw(hs.sampled_from(st.op.input_tensors), label="cached")
        stages.append(s[s.cache_read(tensor, "local", [st])])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=hs.data())
def test_random_attachments_build_right_or_fail_cleanly(data):
    kind = data.draw(hs.sampled_from(["matmul", "conv", "rowsum"]), label="program")
    dims = data.draw(hs.sampled_from([(9, 7, 5), (13, 10, 7), (6, 11, 3)]), label="dims")
    args, inputs, expected, producers, out = _program(kind, dims, np.random.default_rng(0))
    s = tt.create_schedule(out)
    stages = [s[t] for t in producers] + [s[out]]
    try:
        for _ in range(data.draw(hs.integers(0, 3), label="steps before")):
            _step(s, stages, data)
        # attach a producer somewhere, then transform (mostly) the stage it is attached to
        producer = data.draw(hs.sampled_from(stages[:-1]), label="producer")
        readers = [c for c in s.stages if s._reaches(producer, c) and c.attach_type != "inline"]
        if producer.attach_type == "inline" or not readers:
            return
        parent = data.draw(hs.sampled_from(readers), label="parent")
        producer.compute_at(parent, data.draw(hs.sampled_from(list(parent.leaf_iter_vars))))
        for _ in range(data.draw(hs.integers(1, 4), label="steps after")):
            _step(s, stages, data, focus=parent)
        result = np.empty(out.shape, "float32")
        tt.build(s, args, opt_level=1)(*inputs, result)
    except TileTuneError:
        return
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


def test_kernel_argument_computed_at_a_loop_is_written_in_place(rng):
    """As in TVM: an attached stage that is also a kernel argument fills the argument."""
    A = tt.placeholder((37,), "float32", name="A")
    B = tt.compute((37,), lambda i: A[i] + 1.0, name="B")
    C = tt.compute((37,), lambda i: B[i] * 2.0, name="C")
    s = tt.create_schedule(C.op)
    s[B].compute_at(s[C], C.op.axis[0])
    s[C].split(C.op.axis[0], factor=8)  # 37 = 4 * 8 + 5: the last tile overshoots
    text = str(tt.lower(s, [A, B, C]))
    assert "  # B computed at loop i.outer of C (moved: split i -> i.outer)" in text
    a = rng.random(37, "float32")
    b, c = np.zeros(37, "float32"), np.zeros(37, "float32")
    tt.build(s, [A, B, C], opt_level=1)(a, b, c)
    np.testing.assert_allclose(b, a + 1, rtol=1e-6)
    np.testing.assert_allclose(c, (a + 1) * 2, rtol=1e-6)
