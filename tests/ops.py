"""Operator definitions (DSL) and NumPy references shared by the tests."""
from __future__ import annotations

import numpy as np

import tiletune as tt


def matmul(M, N, K, dtype="float32", acc="float32"):
    A = tt.placeholder((M, K), dtype, name="A")
    B = tt.placeholder((K, N), dtype, name="B")
    k = tt.reduce_axis(K, name="k")
    if acc == dtype:
        C = tt.compute((M, N), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    else:
        C = tt.compute((M, N), lambda i, j: tt.sum(A[i, k].astype(acc) * B[k, j].astype(acc),
                                                   axis=k), name="C")
    return A, B, C


def matmul_ref(a, b, acc=None):
    if acc:
        return a.astype(acc) @ b.astype(acc)
    return (a.astype("float64") @ b.astype("float64")).astype(a.dtype)


def batch_matmul_nt(Bt, M, N, K):
    """C[b, i, j] = sum_k A[b, i, k] * B[b, j, k] (B transposed)."""
    A = tt.placeholder((Bt, M, K), "float32", name="A")
    B = tt.placeholder((Bt, N, K), "float32", name="B")
    k = tt.reduce_axis(K, name="k")
    C = tt.compute((Bt, M, N), lambda b, i, j: tt.sum(A[b, i, k] * B[b, j, k], axis=k),
                   name="C")
    return A, B, C


def pad_nchw(A, pad):
    N, C, H, W = A.shape
    return tt.compute(
        (N, C, H + 2 * pad, W + 2 * pad),
        lambda n, c, h, w: tt.if_then_else(
            tt.all(h >= pad, h < H + pad, w >= pad, w < W + pad),
            A[n, c, h - pad, w - pad], 0.0), name="pad")


def conv2d_nchw(N, C, H, W, K, R, S, stride, pad):
    A = tt.placeholder((N, C, H, W), "float32", name="data")
    Wt = tt.placeholder((K, C, R, S), "float32", name="weight")
    P = pad_nchw(A, pad)
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    rc, rh, rw = tt.reduce_axis(C, "rc"), tt.reduce_axis(R, "rh"), tt.reduce_axis(S, "rw")
    O = tt.compute((N, K, OH, OW), lambda n, k, h, w: tt.sum(
        P[n, rc, h * stride + rh, w * stride + rw] * Wt[k, rc, rh, rw], axis=[rc, rh, rw]),
        name="conv")
    return A, Wt, P, O


def conv2d_ref(a, w, stride, pad):
    from tiletune.schedules.conv2d import reference
    return reference(a, w, stride, pad).astype("float32")


def depthwise(N, C, H, W, R, stride, pad):
    A = tt.placeholder((N, C, H, W), "float32", name="data")
    Wt = tt.placeholder((C, R, R), "float32", name="weight")
    P = pad_nchw(A, pad)
    OH = (H + 2 * pad - R) // stride + 1
    OW = (W + 2 * pad - R) // stride + 1
    rh, rw = tt.reduce_axis(R, "rh"), tt.reduce_axis(R, "rw")
    O = tt.compute((N, C, OH, OW), lambda n, c, h, w: tt.sum(
        P[n, c, h * stride + rh, w * stride + rw] * Wt[c, rh, rw], axis=[rh, rw]), name="dw")
    return A, Wt, P, O


def depthwise_ref(a, w, stride, pad):
    from tiletune.schedules.depthwise import reference
    return reference(a, w, stride, pad).astype("float32")


def maxpool(N, C, H, W, k, stride):
    A = tt.placeholder((N, C, H, W), "float32", name="data")
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    rh, rw = tt.reduce_axis(k, "rh"), tt.reduce_axis(k, "rw")
    O = tt.compute((N, C, OH, OW), lambda n, c, h, w: tt.max(
        A[n, c, h * stride + rh, w * stride + rw], axis=[rh, rw]), name="pool")
    return A, O


def maxpool_ref(a, k, stride):
    N, C, H, W = a.shape
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.full((N, C, OH, OW), -np.inf, dtype="float32")
    for r in range(k):
        for s in range(k):
            out = np.maximum(out, a[:, :, r:r + stride * OH:stride, s:s + stride * OW:stride])
    return out


def softmax(M, N):
    """Softmax along axis 1 as four stages: max, exp, sum, divide."""
    A = tt.placeholder((M, N), "float32", name="A")
    k1, k2 = tt.reduce_axis(N, "k1"), tt.reduce_axis(N, "k2")
    mx = tt.compute((M,), lambda i: tt.max(A[i, k1], axis=k1), name="rowmax")
    ex = tt.compute((M, N), lambda i, j: tt.exp(A[i, j] - mx[i]), name="exp")
    sm = tt.compute((M,), lambda i: tt.sum(ex[i, k2], axis=k2), name="rowsum")
    out = tt.compute((M, N), lambda i, j: ex[i, j] / sm[i], name="softmax")
    return A, mx, ex, sm, out


def softmax_ref(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def bias_relu(N, C, H, W):
    A = tt.placeholder((N, C, H, W), "float32", name="A")
    b = tt.placeholder((C,), "float32", name="bias")
    O = tt.compute((N, C, H, W), lambda n, c, h, w: tt.max(A[n, c, h, w] + b[c], 0.0),
                   name="out")
    return A, b, O


def widest_vector_register() -> str:
    """The asm name of the host's widest SIMD register ("zmm" with AVX-512, else "ymm")."""
    from tiletune.schedules.machine import host_machine

    return "zmm" if host_machine().vector_lanes >= 16 else "ymm"
