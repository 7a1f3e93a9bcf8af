"""Layout transforms as compute stages: NCHW <-> NCHW[x]c and OIHW -> OIHW[x]i[y]o.

    data  NCHW   -> NCHW[c_bn]c     P[n, c//bn, h, w, c%bn] = A[n, c, h, w]   (padding fused)
    data  NCHWc  -> padded NCHWc    P[n, cc, h, w, cb] = A[n, cc, h - pad, w - pad, cb] (or 0)
    weight OIHW  -> OIHW[ic]i[oc]o  Wp[o//ob, i//ib, h, w, i%ib, o%ob] = W[o, i, h, w]
    output NCHWc -> NCHW            O[n, k, h, w] = Oc[n, k//ob, h, w, k%ob]
"""
from __future__ import annotations

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError


def pack_data(A: tt.Tensor, c_bn: int, pad: int = 0, stride: int = 1, name: str = "data_pack"
              ) -> tt.Tensor:
    """NCHW -> NCHW[c_bn]c with ``pad`` zeros around H and W; ``stride`` subsamples (1x1 convs).

    The packed spatial size is ``(H + 2*pad - 1) // stride + 1``: ``P[n, cc, h, w, cb] =
    A[n, cc*c_bn + cb, h*stride - pad, w*stride - pad]`` (zero outside A).
    """
    N, C, H, W = A.shape
    if C % c_bn:
        raise ScheduleError(f"pack_data: channel block {c_bn} does not divide {C} channels")
    PH, PW = (H + 2 * pad - 1) // stride + 1, (W + 2 * pad - 1) // stride + 1

    def body(n, cc, h, w, cb):
        hh, ww = h * stride - pad, w * stride - pad
        value = A[n, cc * c_bn + cb, hh, ww] if not pad else None
        if not pad:
            return value
        inside = tt.all(hh >= 0, hh < H, ww >= 0, ww < W)
        return tt.if_then_else(inside, A[n, cc * c_bn + cb, tt.max(tt.min(hh, H - 1), 0),
                                         tt.max(tt.min(ww, W - 1), 0)], 0.0)

    return tt.compute((N, C // c_bn, PH, PW, c_bn), body, name=name)


def pad_blocked(A: tt.Tensor, pad: int, name: str = "data_pad") -> tt.Tensor:
    """NCHW[x]c -> the same layout with ``pad`` zeros around H and W."""
    N, CC, H, W, cb = A.shape
    return tt.compute((N, CC, H + 2 * pad, W + 2 * pad, cb), lambda n, cc, h, w, b: (
        tt.if_then_else(tt.all(h >= pad, h < H + pad, w >= pad, w < W + pad),
                        A[n, cc, tt.max(tt.min(h - pad, H - 1), 0),
                          tt.max(tt.min(w - pad, W - 1), 0), b], tt.const(0, A.dtype))),
        name=name)


def pack_weight(Wt: tt.Tensor, ic_bn: int, oc_bn: int, name: str = "weight_pack") -> tt.Tensor:
    """OIHW -> OIHW[ic_bn]i[oc_bn]o."""
    K, C, R, S = Wt.shape
    if K % oc_bn or C % ic_bn:
        raise ScheduleError(f"pack_weight: blocks ({ic_bn}, {oc_bn}) do not divide ({C}, {K})")
    return tt.compute((K // oc_bn, C // ic_bn, R, S, ic_bn, oc_bn),
                      lambda oc, ic, r, s, ib, ob: Wt[oc * oc_bn + ob, ic * ic_bn + ib, r, s],
                      name=name)


def unpack_output(Oc: tt.Tensor, name: str = "output") -> tt.Tensor:
    """NCHW[k_bn]c -> NCHW."""
    N, KC, H, W, kb = Oc.shape
    return tt.compute((N, KC * kb, H, W), lambda n, k, h, w: Oc[n, k // kb, h, w, k % kb],
                      name=name)


def pack_weight_numpy(w: np.ndarray, ic_bn: int, oc_bn: int) -> np.ndarray:
    """The same packing as ``pack_weight``, in NumPy (for pre-packing constant weights)."""
    K, C, R, S = w.shape
    return np.ascontiguousarray(
        w.reshape(K // oc_bn, oc_bn, C // ic_bn, ic_bn, R, S).transpose(0, 2, 4, 5, 3, 1))
