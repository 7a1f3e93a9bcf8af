"""Quantization parameters: per-tensor asymmetric u8 activations, per-channel symmetric s8
weights, and the integer bias and fixed-point requantization of a conv/dense layer.

    activation  q = clip(round(x / s) + zp, 0, qmax)      x ~ s * (q - zp)
    weight      q = clip(round(w / s_k), -wq, wq)         w ~ s_k * q      (per channel k;
                                                          wq = 127, or 63 with 7 bits)
    bias        b_q = round(b / (s_in * s_k))             int32
    output      y_q = zp_out + (acc + b_q) * (s_in * s_k / s_out)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tiletune.compress.quantize.calibrate import Range
from tiletune.errors import CompressError


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine u8 quantization ``x ~ scale * (q - zero_point)``."""

    scale: float
    zero_point: int
    qmax: int = 255

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, np.float64) / self.scale) + self.zero_point
        return np.clip(q, 0, self.qmax).astype(np.uint8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (self.scale * (q.astype(np.float64) - self.zero_point)).astype(np.float32)


def activation_qparams(r: Range, qmax: int = 255) -> QParams:
    """u8 parameters covering ``r`` (0 exactly representable), on ``[0, qmax]``."""
    if not 0 < qmax <= 255:
        raise CompressError(f"activation qmax must be in (0, 255], got {qmax}")
    lo, hi = min(r.lo, 0.0), max(r.hi, 0.0)
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        raise CompressError(f"cannot quantize the empty or infinite range [{lo}, {hi}]")
    scale = span / qmax
    zp = int(np.clip(round(-lo / scale), 0, qmax))
    return QParams(float(scale), zp, qmax)


def quantize_weight(w: np.ndarray, axis: int = 0, bits: int = 8
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 (``[-127, 127]``, or ``[-63, 63]`` with ``bits`` 7: the
    reduce_range that keeps the vpmaddubsw paths exact) along ``axis``: ``(q, scales)``.
    An all-zero channel gets scale 1 (its weights stay 0)."""
    if bits not in (7, 8):
        raise CompressError(f"weights are quantized to 7 or 8 bits, not {bits}")
    wq = 2 ** (bits - 1) - 1
    w = np.asarray(w, np.float64)
    if w.ndim == 0 or w.size == 0:
        raise CompressError("cannot quantize an empty weight")
    red = tuple(d for d in range(w.ndim) if d != axis % w.ndim)
    amax = np.abs(w).max(axis=red) if red else np.abs(w)
    scales = np.where(amax > 0, amax / wq, 1.0)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -wq, wq).astype(np.int8)
    return q, scales.astype(np.float64)


def quantize_bias(bias: np.ndarray | None, in_scale: float, w_scales: np.ndarray
                  ) -> np.ndarray:
    """int32 bias in the accumulator's scale ``in_scale * w_scale[k]``."""
    if bias is None:
        return np.zeros(len(w_scales), np.int32)
    q = np.round(np.asarray(bias, np.float64) / (in_scale * w_scales))
    if np.abs(q).max(initial=0) >= 2 ** 31:
        raise CompressError("a quantized bias overflows int32 (activation scale too small)")
    return q.astype(np.int32)
