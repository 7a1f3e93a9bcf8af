"""Quantized conv layers that run bit-identically on VTA and on the CPU int8 kernels.

VTA multiplies signed int8 by int8 into int32 and requantizes with an ALU chain of add,
arithmetic shift right and clip -- no per-channel multiplier, no rounding. A layer fits it
when its scales are powers of two (TVM's VTA flow did the same)::

    x.scale = 2**-a, w.scale = 2**-b (one per tensor), y.scale = 2**-c, zero points 0
    y = clip((acc + bias + 2**(s-1)) >> s, 0, 127)      s = c - a - b ... as a right shift

Folding the rounding constant ``2**(s-1)`` into the bias makes VTA's floor shift equal the
CPU epilogue's round-half-up ``((acc + bias) * 1 + 2**(s-1)) >> s``, so the same
:class:`QuantizedLayer` gives the same bits on either target. Activations are 7-bit
(``[0, 127]``, ReLU outputs): valid u8 for the CPU and valid s8 for VTA.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tiletune.compress.quantize.calibrate import Range
from tiletune.compress.quantize.layer import QuantizedLayer
from tiletune.compress.quantize.qparams import QParams, quantize_bias
from tiletune.errors import CompressError


def pow2_scale(amax: float, qmax: int = 127) -> float:
    """The smallest power of two ``s`` with ``amax / s <= qmax``."""
    if not amax > 0 or not math.isfinite(amax):
        return 1.0
    return 2.0 ** math.ceil(math.log2(amax / qmax))


def quantize_layer_pow2(name: str, weight: np.ndarray, bias: np.ndarray | None,
                        x_range: Range, y_range: Range, *, stride: int = 1,
                        pad: int = 0) -> QuantizedLayer:
    """A conv + ReLU layer quantized with power-of-two per-tensor scales (runs on VTA and
    on the CPU, bit-identically). ``x_range`` must be non-negative (a ReLU output or a
    non-negative input)."""
    if x_range.lo < 0:
        raise CompressError(f"layer {name}: a VTA layer needs a non-negative input range "
                            f"(a ReLU output), got [{x_range.lo}, {x_range.hi}]")
    w = np.asarray(weight, np.float64)
    s_w = pow2_scale(float(np.abs(w).max()))
    wq = np.clip(np.round(w / s_w), -127, 127).astype(np.int8)
    x = QParams(pow2_scale(x_range.hi), 0, 127)
    y = QParams(pow2_scale(y_range.hi), 0, 127)
    ws = np.full(w.shape[0], s_w)
    return QuantizedLayer(name, "conv", wq, ws, quantize_bias(bias, x.scale, ws), x, y,
                          stride, pad, relu=True)


def vta_requant(layer: QuantizedLayer) -> tuple[int, np.ndarray]:
    """``(shift, bias)`` of the layer's requantization as VTA's add + shift right (the
    rounding constant folded into the bias), or CompressError saying why it cannot."""
    if layer.kind != "conv" or layer.y is None:
        raise CompressError(f"layer {layer.name}: only requantized convs run on VTA")
    if layer.x.zero_point or layer.y.zero_point or layer.y.qmax > 127:
        raise CompressError(f"layer {layer.name}: VTA needs zero points 0 and 7-bit outputs")
    mult, rq = layer.requant()
    m = int(mult[0])
    if np.any(mult != m) or m & (m - 1) or m <= 0:
        raise CompressError(f"layer {layer.name}: its scales are not one power of two; "
                            "quantize it with quantize_layer_pow2 to run it on VTA")
    shift = rq.shift - (m.bit_length() - 1)
    if shift < 1:
        raise CompressError(f"layer {layer.name}: requantization scales up (shift {shift})")
    bias = layer.bias.astype(np.int64) + (1 << (shift - 1))
    return shift, bias.astype(np.int32)


class VTAConvLayer:
    """A :class:`QuantizedLayer` compiled for the VTA simulator: ``layer(x_u7) -> y_u7``
    (NCHW, 7-bit), with the simulated cycles of the last run in ``cycles``."""

    def __init__(self, layer: QuantizedLayer, input_shape: tuple[int, int, int, int],
                 cfg: dict[str, Any] | None = None) -> None:
        from tiletune.schedules import vta_conv2d as vc
        shift, bias = vta_requant(layer)
        N, C, H, W = input_shape
        K, C2, R, S = layer.weight.shape
        if C2 != C:
            raise CompressError(f"layer {layer.name}: weight reads {C2} channels, input has {C}")
        self.workload = vc.VTAConv2dWorkload(N, C, H, W, K, R, S, layer.stride, layer.pad,
                                             shift, (0, 127), True)
        self.workload.check()
        self.kernel = vc.build(self.workload, cfg, name=f"vta_{layer.name}".replace(".", "_"))
        self.weight = vc.pack_kernel(layer.weight)
        self.bias = vc.pack_bias(bias)
        self.cycles = 0
        self._vc = vc

    @property
    def seconds(self) -> float:
        """Simulated time of the last run (at the simulator's clock)."""
        return float(self.kernel.seconds)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        w, vc = self.workload, self._vc
        if x.shape != (w.N, w.C, w.H, w.W) or x.dtype != np.uint8 or (x.size and x.max() > 127):
            raise CompressError(f"VTA layer input must be 7-bit uint8 {(w.N, w.C, w.H, w.W)}")
        out = np.zeros((w.N, w.K // 16, w.OH, w.OW, 1, 16), np.int8)
        self.kernel(vc.pack_data(x.view(np.int8)), self.weight, self.bias, out)
        self.cycles = int(self.kernel.cycles)
        return vc.unpack_output(out).view(np.uint8)


def place(layer: QuantizedLayer, input_shape: tuple[int, ...]) -> tuple[str, str]:
    """``("vta" | "cpu", reason)``: where a quantized layer runs when VTA is preferred."""
    from tiletune.errors import ScheduleError
    from tiletune.schedules import vta_conv2d as vc
    try:
        shift, _ = vta_requant(layer)
        N, C, H, W = input_shape
        K, _, R, S = layer.weight.shape
        vc.VTAConv2dWorkload(N, C, H, W, K, R, S, layer.stride, layer.pad, shift, (0, 127),
                             True).check()
    except (CompressError, ScheduleError, ValueError) as exc:
        return "cpu", str(exc)
    return "vta", "power-of-two scales, channels in blocks of 16"


def compile_layer(layer: QuantizedLayer, input_shape: tuple[int, ...],
                  prefer_vta: bool = True) -> tuple[Any, str, str]:
    """``(runner, target, reason)``: the layer on VTA when it fits and is preferred, else on
    the CPU int8 kernels (the first conv, the classifier, non-power-of-two layers)."""
    target, reason = place(layer, input_shape) if prefer_vta else ("cpu", "VTA not preferred")
    if target == "vta":
        return VTAConvLayer(layer, input_shape), target, reason  # type: ignore[arg-type]
    return layer.build(input_shape), target, reason
