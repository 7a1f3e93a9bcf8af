"""The int8 requantize epilogue shared by the int8 conv and dense templates.

An int32 accumulator becomes a u8 activation of the next layer by a per-channel
fixed-point multiplier and one rounding shift (round half up), then the zero point and
a clip (ReLU / ReLU6 are clips in the quantized domain), then saturation::

    y = clip(((acc + bias[k]) * mult[k] + 2**(shift-1)) >> shift) + zp_out, lo, hi)

``acc + bias`` is int32, the product int64. ``requantize_numpy`` is the bit-exact NumPy
reference; ``fixed_point`` turns real scales into ``(mult, shift)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError


@dataclass(frozen=True)
class Requant:
    """The constants of the epilogue (per-channel ``bias`` and ``mult`` are kernel inputs)."""

    shift: int = 24
    zp_out: int = 0
    lo: int = 0
    hi: int = 255

    def __post_init__(self) -> None:
        if not 1 <= self.shift <= 62:
            raise ScheduleError(f"requantize shift must be in [1, 62], got {self.shift}")
        if not 0 <= self.lo <= self.hi <= 255:
            raise ScheduleError(f"requantize clip [{self.lo}, {self.hi}] must lie in [0, 255]")
        if not 0 <= self.zp_out <= 255:
            raise ScheduleError(f"output zero point {self.zp_out} must lie in [0, 255]")

    def apply(self, acc, bias_k, mult_k):
        """The epilogue as a DSL expression of an int32 ``acc`` (result uint8)."""
        x = (acc + bias_k).astype("int64") * mult_k.astype("int64")
        x = (x + tt.const(1 << (self.shift - 1), "int64")) // tt.const(1 << self.shift, "int64")
        x = x + tt.const(self.zp_out, "int64")
        x = tt.min(tt.max(x, tt.const(self.lo, "int64")), tt.const(self.hi, "int64"))
        return x.astype("uint8")


def requantize_numpy(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, rq: Requant,
                     channel_axis: int = 1) -> np.ndarray:
    """Bit-exact NumPy reference of :meth:`Requant.apply` (channels on ``channel_axis``)."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    b = bias.astype(np.int32).reshape(shape)
    m = mult.astype(np.int64).reshape(shape)
    x = (acc.astype(np.int32) + b).astype(np.int64) * m
    x = (x + (1 << (rq.shift - 1))) >> rq.shift
    return np.clip(x + rq.zp_out, rq.lo, rq.hi).astype(np.uint8)


def fixed_point(scales: np.ndarray, max_bits: int = 31) -> tuple[np.ndarray, int]:
    """``(mult int32[], shift)`` with ``mult / 2**shift ~= scales`` (one shift per layer, the
    largest that keeps every multiplier below ``2**(max_bits-1)``... and the shift <= 62)."""
    s = np.asarray(scales, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ScheduleError("requantize scales must be finite and positive")
    top = float(s.max())
    shift = int(np.floor(np.log2((2 ** (max_bits - 1) - 1) / top)))
    shift = max(1, min(shift, 62))
    mult = np.round(s * 2.0 ** shift)
    if mult.max() >= 2 ** 31:
        raise ScheduleError(f"requantize scale {top:g} is too large for a 31-bit multiplier")
    return mult.astype(np.int32), shift
