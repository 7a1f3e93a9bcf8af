"""Every operator against NumPy, under several schedules each."""
import numpy as np
import pytest

import tiletune as tt
from tests import ops


def run(s, args, inputs, out_shape, out_dtype="float32"):
    f = tt.build(s, args)
    out = np.empty(out_shape, out_dtype)
    f(*inputs, out)
    return out


# ------------------------------------------------------------------ matmul
def mm_plain(s, C):
    pass


def mm_tiled(s, C):
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, 8, 16)
    ko, ki = s[C].split(k, factor=4)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    s[C].unroll(ki)
    s[C].parallel(io)


def mm_imperfect(s, C):
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    io, ii = s[C].split(i, factor=7)
    jo, ji = s[C].split(j, factor=16)
    ko, ki = s[C].split(k, nparts=3)
    s[C].reorder(ko, io, jo, ki, ii, ji)
    s[C].vectorize(ji)


def mm_interleaved(s, C):
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    ko, ki = s[C].split(k, factor=5)
    s[C].reorder(ko, i, ki, j)


def mm_fused_parallel(s, C):
    i, j = s[C].axis
    io, ii = s[C].split(i, factor=4)
    jo, ji = s[C].split(j, factor=8)
    s[C].reorder(io, jo, ii, ji)
    f = s[C].fuse(io, jo)
    s[C].parallel(f)
    s[C].vectorize(ji)


def mm_cache_write(s, C):
    CL = s.cache_write(C, "local")
    i, j = s[C].axis
    io, jo, ii, ji = s[C].tile(i, j, 4, 32)
    s[C].parallel(io)
    s[C].vectorize(ji)
    s[CL].compute_at(s[C], jo)
    ci, cj = s[CL].axis
    (k,) = s[CL].reduce_axis
    cjo, cji = s[CL].split(cj, factor=16)
    ko, ki = s[CL].split(k, factor=2)
    s[CL].reorder(ko, ki, ci, cjo, cji)
    s[CL].unroll(ci)
    s[CL].unroll(cjo)
    s[CL].unroll(ki)
    s[CL].vectorize(cji)


@pytest.mark.parametrize("sched", [mm_plain, mm_tiled, mm_imperfect, mm_interleaved,
                                   mm_fused_parallel, mm_cache_write])
@pytest.mark.parametrize("shape", [(64, 64, 32), (50, 70, 33)])
def test_matmul(sched, shape, rng):
    M, N, K = shape
    A, B, C = ops.matmul(M, N, K)
    s = tt.create_schedule(C)
    sched(s, C)
    a = rng.standard_normal((M, K)).astype("float32")
    b = rng.standard_normal((K, N)).astype("float32")
    np.testing.assert_allclose(run(s, [A, B, C], [a, b], (M, N)), a @ b, rtol=1e-4, atol=1e-4)


def test_int8_matmul_int32_acc(rng):
    M, N, K = 32, 48, 64
    A, B, C = ops.matmul(M, N, K, "int8", "int32")
    for sched in (mm_plain, mm_tiled, mm_cache_write):
        s = tt.create_schedule(C)
        sched(s, C)
        a = rng.integers(-128, 128, (M, K)).astype("int8")
        b = rng.integers(-128, 128, (K, N)).astype("int8")
        out = run(s, [A, B, C], [a, b], (M, N), "int32")
        np.testing.assert_array_equal(out, a.astype("int32") @ b.astype("int32"))


@pytest.mark.parametrize("variant", ["plain", "vector"])
def test_batch_matmul_transposed(variant, rng):
    Bt, M, N, K = 3, 20, 24, 16
    A, B, C = ops.batch_matmul_nt(Bt, M, N, K)
    s = tt.create_schedule(C)
    if variant == "vector":
        b_, i, j = s[C].axis
        (k,) = s[C].reduce_axis
        jo, ji = s[C].split(j, factor=8)
        s[C].reorder(b_, i, jo, k, ji)
        s[C].vectorize(ji)
        s[C].parallel(b_)
    a = rng.standard_normal((Bt, M, K)).astype("float32")
    b = rng.standard_normal((Bt, N, K)).astype("float32")
    out = run(s, [A, B, C], [a, b], (Bt, M, N))
    np.testing.assert_allclose(out, a @ b.transpose(0, 2, 1), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ conv2d
def conv_inline(s, P, O):
    s[P].compute_inline()


def conv_root(s, P, O):
    pass


def conv_pad_at(s, P, O):
    n, k, h, w = s[O].axis
    s[P].compute_at(s[O], h)


def conv_tiled(s, P, O):
    s[P].compute_inline()
    n, k, h, w = s[O].axis
    rc, rh, rw = s[O].reduce_axis
    ko, ki = s[O].split(k, factor=4)
    wo, wi = s[O].split(w, factor=8)
    s[O].reorder(n, ko, h, wo, rc, rh, ki, rw, wi)
    s[O].vectorize(wi)
    s[O].unroll(rw)
    s[O].parallel(ko)


def conv_cache_write(s, P, O):
    OL = s.cache_write(O, "local")
    n, k, h, w = s[O].axis
    ko, ki = s[O].split(k, factor=4)
    wo, wi = s[O].split(w, factor=8)
    s[O].reorder(n, ko, h, wo, ki, wi)
    s[O].vectorize(wi)
    s[O].parallel(ko)
    s[OL].compute_at(s[O], wo)
    s[P].compute_at(s[O], h)
    nl, kl, hl, wl = s[OL].axis
    rc, rh, rw = s[OL].reduce_axis
    s[OL].reorder(nl, hl, rc, rh, rw, kl, wl)
    s[OL].unroll(kl)
    s[OL].unroll(rw)
    s[OL].vectorize(wl)


@pytest.mark.parametrize("sched", [conv_inline, conv_root, conv_pad_at, conv_tiled,
                                   conv_cache_write])
@pytest.mark.parametrize("cfg", [(1, 3, 12, 12, 8, 3, 3, 1, 1), (2, 4, 13, 11, 6, 3, 3, 2, 1),
                                 (1, 5, 9, 9, 4, 1, 1, 2, 0)])
def test_conv2d(sched, cfg, rng):
    N, C, H, W, K, R, S, stride, pad = cfg
    data, weight, P, O = ops.conv2d_nchw(N, C, H, W, K, R, S, stride, pad)
    s = tt.create_schedule(O)
    sched(s, P, O)
    a = rng.standard_normal((N, C, H, W)).astype("float32")
    w = rng.standard_normal((K, C, R, S)).astype("float32")
    out = run(s, [data, weight, O], [a, w], O.shape)
    np.testing.assert_allclose(out, ops.conv2d_ref(a, w, stride, pad), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", ["inline", "at"])
def test_depthwise(variant, rng):
    data, weight, P, O = ops.depthwise(1, 8, 14, 14, 3, 2, 1)
    s = tt.create_schedule(O)
    n, c, h, w = s[O].axis
    if variant == "inline":
        s[P].compute_inline()
        wo, wi = s[O].split(w, factor=4)
        s[O].vectorize(wi)
        s[O].parallel(c)
    else:
        s[P].compute_at(s[O], c)
        rh, rw = s[O].reduce_axis
        s[O].reorder(n, c, rh, rw, h, w)
    a = rng.standard_normal(data.shape).astype("float32")
    wt = rng.standard_normal(weight.shape).astype("float32")
    out = run(s, [data, weight, O], [a, wt], O.shape)
    np.testing.assert_allclose(out, ops.depthwise_ref(a, wt, 2, 1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", ["plain", "vector"])
def test_maxpool(variant, rng):
    data, O = ops.maxpool(1, 4, 12, 12, 3, 2)
    s = tt.create_schedule(O)
    if variant == "vector":
        n, c, h, w = s[O].axis
        rh, rw = s[O].reduce_axis
        s[O].reorder(n, c, h, rh, rw, w)
        s[O].vectorize(w)
        s[O].parallel(c)
    a = rng.standard_normal(data.shape).astype("float32")
    out = run(s, [data, O], [a], O.shape)
    np.testing.assert_array_equal(out, ops.maxpool_ref(a, 3, 2))


@pytest.mark.parametrize("variant", ["plain", "at", "vector"])
def test_softmax(variant, rng):
    A, mx, ex, sm, out = ops.softmax(10, 37)
    s = tt.create_schedule(out)
    if variant == "at":
        i, j = s[out].axis
        s[mx].compute_at(s[out], i)
        s[ex].compute_at(s[out], i)
        s[sm].compute_at(s[out], i)
        s[out].parallel(i)
    elif variant == "vector":
        i, j = s[out].axis
        jo, ji = s[out].split(j, factor=16)
        s[out].vectorize(ji)
        i2, j2 = s[ex].axis
        jo2, ji2 = s[ex].split(j2, factor=16)
        s[ex].vectorize(ji2)
    a = rng.standard_normal((10, 37)).astype("float32")
    res = run(s, [A, out], [a], (10, 37))
    np.testing.assert_allclose(res, ops.softmax_ref(a), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["plain", "vector"])
def test_bias_relu(variant, rng):
    A, b, O = ops.bias_relu(2, 5, 6, 20)
    s = tt.create_schedule(O)
    if variant == "vector":
        n, c, h, w = s[O].axis
        f = s[O].fuse(n, c)
        s[O].parallel(f)
        wo, wi = s[O].split(w, factor=16)
        s[O].vectorize(wi)
    a = rng.standard_normal(A.shape).astype("float32")
    bias = rng.standard_normal(b.shape).astype("float32")
    res = run(s, [A, b, O], [a, bias], O.shape)
    np.testing.assert_allclose(res, np.maximum(a + bias[None, :, None, None], 0), rtol=1e-6)


@pytest.mark.parametrize("variant", ["plain", "tiled"])
def test_transpose_and_reshape(variant, rng):
    A = tt.placeholder((6, 40), "float32", name="A")
    T = tt.compute((40, 6), lambda i, j: A[j, i], name="T")
    R = tt.compute((12, 20), lambda i, j: A[(i * 20 + j) // 40, (i * 20 + j) % 40], name="R")
    s = tt.create_schedule([T, R])
    if variant == "tiled":
        i, j = s[T].axis
        io, ii = s[T].split(i, factor=16)
        s[T].reorder(io, j, ii)
        s[T].vectorize(ii)
        i2, j2 = s[R].axis
        s[R].vectorize(j2)
    a = rng.standard_normal((6, 40)).astype("float32")
    f = tt.build(s, [A, T, R])
    t, r = np.empty((40, 6), "float32"), np.empty((12, 20), "float32")
    f(a, t, r)
    np.testing.assert_array_equal(t, a.T)
    np.testing.assert_array_equal(r, a.reshape(12, 20))


def test_int_floor_division_and_casts(rng):
    A = tt.placeholder((64,), "int32", name="A")
    B = tt.compute((64,), lambda i: (A[i] // 3 + A[i] % 5).astype("float32") * 0.5, name="B")
    s = tt.create_schedule(B)
    s[B].vectorize(s[B].split(s[B].axis[0], factor=16)[1])
    a = rng.integers(-100, 100, 64).astype("int32")
    out = run(s, [A, B], [a], (64,))
    np.testing.assert_array_equal(out, ((a // 3 + a % 5).astype("float32") * 0.5))


def test_math_functions(rng):
    A = tt.placeholder((40,), "float32", name="A")
    B = tt.compute((40,), lambda i: tt.sqrt(tt.abs(A[i])) + tt.tanh(A[i]) +
                   tt.log(tt.exp(A[i]) + 1.0), name="B")
    s = tt.create_schedule(B)
    s[B].vectorize(s[B].split(s[B].axis[0], factor=8)[1])
    a = rng.standard_normal(40).astype("float32")
    out = run(s, [A, B], [a], (40,))
    ref = np.sqrt(np.abs(a)) + np.tanh(a) + np.log(np.exp(a) + 1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_any_all_and_where_reduction(rng):
    A = tt.placeholder((8, 30), "float32", name="A")
    k = tt.reduce_axis(30, "k")
    C = tt.compute((8,), lambda i: tt.sum(A[i, k], axis=k, where=tt.any(k < 5, k >= 25)),
                   name="C")
    s = tt.create_schedule(C)
    a = rng.standard_normal((8, 30)).astype("float32")
    out = run(s, [A, C], [a], (8,))
    ref = a[:, :5].sum(1) + a[:, 25:].sum(1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_spatial_for_block_runs_as_simd_lanes(rng):
    A, B, C = ops.matmul(32, 64, 16)
    s = tt.create_schedule(C)
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, 4, 16)
    s[C].reorder(io, jo, k, ii, ji)
    s[C].spatial_for(ii)
    s[C].spatial_for(ji)
    lowered = str(tt.lower(s, [A, B, C], target="llvm"))
    assert "ramp(" in lowered and "spatial" not in lowered
    a = rng.standard_normal((32, 16)).astype("float32")
    b = rng.standard_normal((16, 64)).astype("float32")
    np.testing.assert_allclose(run(s, [A, B, C], [a, b], (32, 64)), a @ b, rtol=1e-4,
                               atol=1e-4)
