"""A quantized conv/dense layer: its integer constants, and the int8 kernel that runs it.

``QuantizedLayer`` is what both the post-training quantizer (``quantize_layer``) and the QDQ
importer (``qdq.read_qdq``) produce; ``build`` compiles it with the int8 templates::

    x_q (u8, x.scale, x.zero_point) --conv/dense, s8 weights (w_scale[k])--> acc int32
    y_q = requant(acc + bias)    with  mult[k] / 2**shift = x.scale * w_scale[k] / y.scale

With ``y`` None the layer returns the int32 accumulator plus bias (dequantize with
``x.scale * w_scale``), e.g. for the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tiletune.backends.llvm import int8dot
from tiletune.compress.quantize.calibrate import Range
from tiletune.compress.quantize.qparams import (
    QParams,
    activation_qparams,
    quantize_bias,
    quantize_weight,
)
from tiletune.errors import CompressError
from tiletune.schedules import int8_conv2d, int8_dense
from tiletune.schedules.int8_requant import Requant, fixed_point

KINDS = ("conv", "dense")


@dataclass
class QuantizedLayer:
    """Integer constants of one conv (OIHW weight) or dense (``[out, in]`` weight) layer."""

    name: str
    kind: str
    weight: np.ndarray  # int8
    w_scale: np.ndarray  # float64 [out]
    bias: np.ndarray  # int32 [out], in the accumulator scale x.scale * w_scale
    x: QParams
    y: QParams | None
    stride: int = 1
    pad: int = 0
    relu: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CompressError(f"quantized layer kind must be one of {KINDS}, got {self.kind}")
        if self.weight.dtype != np.int8:
            raise CompressError(f"layer {self.name}: weight must be int8, got {self.weight.dtype}")

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    def requant(self) -> tuple[np.ndarray, Requant]:
        """Per-channel multipliers and the epilogue constants (needs an output ``y``)."""
        if self.y is None:
            raise CompressError(f"layer {self.name} has no output quantization")
        mult, shift = fixed_point(self.x.scale * self.w_scale / self.y.scale)
        lo = self.y.zero_point if self.relu else 0
        return mult, Requant(shift, self.y.zero_point, lo, self.y.qmax)

    def path(self) -> str:
        """The host's fastest int8 path if it multiplies this layer exactly (the vpmaddubsw
        paths need 7-bit weights or 7-bit activations), else the fastest exact one (the
        int16 ``avx2_s16`` path on AVX2)."""
        best = int8dot.best_path()
        amax = int8dot.activation_max(best, int8dot.weight_abs(self.weight))
        return best if self.x.qmax <= amax else int8dot.exact_path()

    def build(self, input_shape: tuple[int, ...], path: str | None = None,
              cfg: dict[str, Any] | None = None) -> Any:
        """The compiled layer: a callable on u8 input of ``input_shape`` (NCHW or [M, K])."""
        path = path or self.path()
        out_dtype = "int32" if self.y is None else "uint8"
        mult, rq = self.requant() if self.y is not None else (None, None)
        if self.kind == "conv":
            N, C, H, W = input_shape
            K, C2, R, S = self.weight.shape
            if C2 != C:
                raise CompressError(f"layer {self.name}: weight reads {C2} channels, input "
                                    f"has {C}")
            w = int8_conv2d.Int8Conv2dWorkload(N, C, H, W, K, R, S, self.stride, self.pad,
                                               path, out_dtype)
            return int8_conv2d.Int8Conv2d(w, self.weight, self.bias, mult,
                                          zp_in=self.x.zero_point, rq=rq, cfg=cfg,
                                          name=f"q_{_ident(self.name)}")
        M, K = input_shape
        w = int8_dense.Int8DenseWorkload(M, self.out_channels, K, path, out_dtype)
        return int8_dense.Int8Dense(w, np.ascontiguousarray(self.weight.T), self.bias, mult,
                                    zp_in=self.x.zero_point, rq=rq, cfg=cfg,
                                    name=f"q_{_ident(self.name)}")

    def dequantize_output(self, out: np.ndarray) -> np.ndarray:
        """Real values of the layer's output (u8 with ``y``, else the int32 accumulator)."""
        if self.y is not None:
            return self.y.dequantize(out)
        shape = [1] * out.ndim
        shape[1] = -1
        return (out * (self.x.scale * self.w_scale).reshape(shape)).astype(np.float32)


def _ident(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name) or "layer"
    return out if out[0].isalpha() else "l" + out


def quantize_layer(name: str, kind: str, weight: np.ndarray, bias: np.ndarray | None,
                   x_range: Range, y_range: Range | None, *, stride: int = 1, pad: int = 0,
                   relu: bool = False, qmax: int | None = None,
                   weight_bits: int | None = None) -> QuantizedLayer:
    """Post-training quantization of one layer from calibrated input/output ranges.

    ``qmax``: largest activation code (default 255). ``weight_bits`` (7 or 8): default 7
    when the host's int8 path is a saturating one (AVX2 / AVX-512BW without VNNI) and the
    activations are full u8 (the layer then runs exactly on it), else 8."""
    q = 255 if qmax is None else qmax
    if weight_bits is None:
        path = int8dot.best_path()
        weight_bits = 8 if q <= int8dot.activation_max(path) else int8dot.weight_bits(path)
    wq, ws = quantize_weight(weight, bits=weight_bits)
    x = activation_qparams(x_range, q)
    y = None if y_range is None else activation_qparams(
        Range(0.0, y_range.hi) if relu else y_range, q)
    return QuantizedLayer(name, kind, wq, ws, quantize_bias(bias, x.scale, ws), x, y,
                          stride, pad, relu)
