"""Tuning templates of the graph's fused kernels (what ``tiletune tune --model`` tunes).

* ``conv2d_nchwc_fused(N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn, epilogue,
  dtype)``: ``schedules.conv2d`` reading NCHW (pack fused) or NCHW[ic_bn]c, writing
  NCHW[oc_bn]c, with the epilogue (``Epilogue.key()``, e.g. ``bias_residual_relu``) applied
  before the store. The channel blocks are fixed by the graph's layout plan, so the knobs
  are the register tile, kw unrolling and the parallel loops.
* ``conv2d_auto_fused(...)``, the same arguments: the algorithm is a knob too (config
  ``{"algorithm": "nchwc" | "winograd" | "im2col", "schedule": {...}}``, the space the
  disjoint union of ``schedules.conv2d_auto.fused_configs`` with the plan's blocks), same
  layouts and epilogue; the graph build uses its records first.
* ``depthwise_nchwc(N, C, H, W, R, S, block, sh, sw, pt, pl, pb, pr, dh, dw, epilogue,
  dtype)``: ``schedules.depthwise_nchwc``.
* ``dense_fused(M, N, K, epilogue, dtype)``: ``schedules.dense`` with the epilogue.

Inputs are logical (NCHW data, OIHW weights, bias, NCHW residual); ``prepare`` lays them
out for the kernel and the NumPy reference gives the output in the kernel's layout.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...graph.ir import TensorType, blocked
from ...graph.kernels import to_physical
from ...graph.reference import epilogue as apply_epilogue
from ...schedules import conv2d, conv2d_auto, dense, depthwise_nchwc
from ...schedules.epilogue import Epilogue
from ..space.config_space import ConfigSpace
from ..templates.registry import template
from .llvm_conv_algorithms import AlgorithmScheduleKnob, agree

_REASON = "register budget: the accumulator tile must fit the vector registers"


def _define(cfg: Any, module: Any, w: Any, fixed: Mapping[str, Any] | None = None) -> bool:
    """Knobs of the library module (``fixed`` ones get one choice); True in collect mode."""
    for knob, choices in module.space(w).items():
        cfg.define_knob(knob, [fixed[knob]] if fixed and knob in fixed else choices)
    cfg.add_constraint(lambda e: bool(module.is_valid(w, e.to_json())), _REASON)
    cfg.add_flop(w.flop)
    return isinstance(cfg, ConfigSpace)


def _rand(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def _epilogue_inputs(rng, epi: Epilogue, channels: int, out_shape: tuple) -> list[np.ndarray]:
    out = []
    if epi.has_bias:
        out.append(_rand(rng, (channels,)))
    if epi.has_residual:
        out.append(_rand(rng, out_shape))
    return out


# -- conv2d, NCHW[x]c ------------------------------------------------------------------------
def _conv_w(N, C, H, W, K, R, S, stride, pad, dtype) -> conv2d.Conv2dWorkload:
    return conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad, dtype)


def _conv_inputs(rng, N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn, epilogue,
                 dtype):
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    return [_rand(rng, (N, C, H, W)), _rand(rng, (K, C, R, S))] + _epilogue_inputs(
        rng, Epilogue.from_key(epilogue), K, (N, K, w.OH, w.OW))


def _conv_reference(inputs, N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn,
                    epilogue, dtype):
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    y = conv2d.reference(inputs[0], inputs[1], stride, pad)
    y = apply_epilogue(y, Epilogue.from_key(epilogue).steps, inputs[2:], 1)
    return [to_physical(y, TensorType((N, K, w.OH, w.OW), dtype, blocked(oc_bn)))]


def _conv_prepare(config, inputs, N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn,
                  epilogue, dtype):
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    data = inputs[0] if layout_in == "NCHW" else to_physical(
        inputs[0], TensorType((N, C, H, W), dtype, blocked(ic_bn)))
    pack = conv2d_auto.pack_weight if "algorithm" in config else conv2d.pack_weight
    out = [data, pack(inputs[1], config)]
    epi = Epilogue.from_key(epilogue)
    rest = list(inputs[2:])
    if epi.has_bias:
        out.append(rest.pop(0))
    if epi.has_residual:
        out.append(to_physical(rest.pop(0), TensorType((N, K, w.OH, w.OW), dtype,
                                                       blocked(oc_bn))))
    return out


def _conv_default(N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn, epilogue, dtype):
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    return {**conv2d.default_config(w), "ic_bn": ic_bn, "oc_bn": oc_bn}


@template("conv2d_nchwc_fused", inputs=_conv_inputs, reference=_conv_reference,
          prepare=_conv_prepare, default_config=_conv_default)
def conv2d_nchwc_fused(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                       stride: int, pad: int, layout_in: str, ic_bn: int, oc_bn: int,
                       epilogue: str = "", dtype: str = "float32") -> Any:
    """conv2d as the graph runs it: blocked output, fused epilogue."""
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    if _define(cfg, conv2d, w, {"ic_bn": ic_bn, "oc_bn": oc_bn}):
        return None
    return conv2d.schedule(w, cfg.to_json(), Epilogue.from_key(epilogue), layout_in, "NCHWc")


def _auto_fused_default(N, C, H, W, K, R, S, stride, pad, layout_in, ic_bn, oc_bn, epilogue,
                        dtype):
    return conv2d_auto.fused_default(_conv_w(N, C, H, W, K, R, S, stride, pad, dtype), ic_bn,
                                     oc_bn)


@template("conv2d_auto_fused", inputs=_conv_inputs, reference=_conv_reference,
          prepare=_conv_prepare, default_config=_auto_fused_default)
def conv2d_auto_fused(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                      stride: int, pad: int, layout_in: str, ic_bn: int, oc_bn: int,
                      epilogue: str = "", dtype: str = "float32") -> Any:
    """conv2d as the graph runs it, by any applicable algorithm (direct NCHWc, Winograd,
    im2col): blocked output, fused epilogue."""
    w = _conv_w(N, C, H, W, K, R, S, stride, pad, dtype)
    cfg.add_flop(w.flop)
    if isinstance(cfg, ConfigSpace):
        names = conv2d_auto.fused_applicable(w, ic_bn, oc_bn)
        by_algo = {n: conv2d_auto.fused_configs(w, n, ic_bn, oc_bn) for n in names}
        spaces = {n: conv2d_auto.ALGORITHMS[n].space(w) for n in names}
        cfg.define_knob("algorithm", names)
        cfg._add("schedule", lambda: AlgorithmScheduleKnob("schedule", by_algo, spaces))
        cfg.add_constraint(agree, "the schedule is a config of the chosen algorithm")
        return None
    return conv2d_auto.fused_schedule(w, cfg.to_json(), Epilogue.from_key(epilogue), layout_in,
                                      ic_bn, oc_bn)


# -- depthwise, NCHW[x]c ---------------------------------------------------------------------
def _dw(args) -> depthwise_nchwc.DepthwiseNCHWcWorkload:
    *shape, _epi, dtype = args
    return depthwise_nchwc.DepthwiseNCHWcWorkload(*shape, dtype)


def _dw_inputs(rng, *args):
    w = _dw(args)
    return [_rand(rng, (w.N, w.C, w.H, w.W)), _rand(rng, (w.C, 1, w.R, w.S))] + \
        _epilogue_inputs(rng, Epilogue.from_key(args[-2]), w.C, (w.N, w.C, w.OH, w.OW))


def _dw_reference(inputs, *args):
    from ...graph.reference import _conv2d
    w = _dw(args)
    attrs = {"strides": (w.stride_h, w.stride_w), "dilations": (w.dilation_h, w.dilation_w),
             "pads": (w.pad_t, w.pad_l, w.pad_b, w.pad_r), "groups": w.C}
    y = _conv2d(inputs[0].astype(np.float64), inputs[1].astype(np.float64), attrs)
    y = apply_epilogue(y, Epilogue.from_key(args[-2]).steps, inputs[2:], 1)
    return [to_physical(y, TensorType((w.N, w.C, w.OH, w.OW), w.dtype, blocked(w.block)))]


def _dw_prepare(config, inputs, *args):
    w = _dw(args)
    t = TensorType((w.N, w.C, w.H, w.W), w.dtype, blocked(w.block))
    out = [to_physical(inputs[0], t), depthwise_nchwc.pack_weight(inputs[1], w.block)]
    epi = Epilogue.from_key(args[-2])
    rest = list(inputs[2:])
    if epi.has_bias:
        out.append(rest.pop(0))
    if epi.has_residual:
        out.append(to_physical(rest.pop(0), TensorType((w.N, w.C, w.OH, w.OW), w.dtype,
                                                       blocked(w.block))))
    return out


@template("depthwise_nchwc", inputs=_dw_inputs, reference=_dw_reference, prepare=_dw_prepare,
          default_config=lambda *a: depthwise_nchwc.default_config(_dw(a)))
def depthwise_nchwc_template(cfg: Any, N: int, C: int, H: int, W: int, R: int, S: int,
                             block: int, stride_h: int, stride_w: int, pad_t: int, pad_l: int,
                             pad_b: int, pad_r: int, dilation_h: int, dilation_w: int,
                             epilogue: str = "", dtype: str = "float32") -> Any:
    """Depthwise conv2d in NCHW[block]c with a fused epilogue."""
    w = depthwise_nchwc.DepthwiseNCHWcWorkload(N, C, H, W, R, S, block, stride_h, stride_w,
                                               pad_t, pad_l, pad_b, pad_r, dilation_h,
                                               dilation_w, dtype)
    if _define(cfg, depthwise_nchwc, w):
        return None
    return depthwise_nchwc.schedule(w, cfg.to_json(), Epilogue.from_key(epilogue))


# -- dense -----------------------------------------------------------------------------------
def _dense_inputs(rng, M, N, K, epilogue, dtype):
    return [_rand(rng, (M, K)), _rand(rng, (K, N))] + _epilogue_inputs(
        rng, Epilogue.from_key(epilogue), N, (M, N))


def _dense_reference(inputs, M, N, K, epilogue, dtype):
    y = inputs[0].astype(np.float64) @ inputs[1].astype(np.float64)
    return [apply_epilogue(y, Epilogue.from_key(epilogue).steps, inputs[2:], 1)]


@template("dense_fused", inputs=_dense_inputs, reference=_dense_reference,
          default_config=lambda M, N, K, epilogue, dtype="float32": dense.default_config(
              dense.DenseWorkload(M, N, K, dtype)))
def dense_fused(cfg: Any, M: int, N: int, K: int, epilogue: str = "",
                dtype: str = "float32") -> Any:
    """``C = epilogue(A @ B)``; arguments ``[A, B, (bias), (residual), C]``."""
    w = dense.DenseWorkload(M, N, K, dtype)
    if _define(cfg, dense, w):
        return None
    return dense.schedule(w, cfg.to_json(), Epilogue.from_key(epilogue))
