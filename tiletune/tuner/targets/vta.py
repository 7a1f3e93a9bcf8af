"""The vta target: its templates ``vta_conv2d`` and ``vta_dense``, measurer and limits.

Importing this module registers the target and its templates. Each
defines one knob per entry of the library module's ``space``, its validity check (buffer
capacities, thread splits) as a constraint, so impossible configs are never measured, and
the flop count. The measured cost is simulated time (cycles / clock):
``VTAModule.time_evaluator`` reports it from a cycles-only run; the bit-exact call checks
the output against the NumPy reference.

Inputs are logical arrays (NCHW data, OIHW weights, int8); ``prepare`` packs them into VTA's
blocked layouts and the reference is returned packed like the kernel's output.

The target's measurer is :class:`~tiletune.tuner.measure.vta.VTAMeasurer` (in process, the
simulator's cycles-only mode).

    task = Task("vta_conv2d", (1, 64, 56, 56, 64, 3, 3, 1, 1, "int8"), target="vta")
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import ScheduleError
from ...schedules import vta_conv2d as vc
from ...schedules import vta_dense as vd
from ..measure.vta import VTAMeasurer
from ..space.config_space import ConfigSpace
from ..templates.registry import template
from .registry import register_target

VTA = register_target("vta", measurer=VTAMeasurer, dtype="int8")

_REASON = "VTA: tiles must fit the INP/WGT/ACC buffers and threads split the tiles evenly"


def unsupported_reason(N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                       stride: int = 1, pad: int = 0, dtype: str = "int8") -> str | None:
    """Why a conv2d layer cannot run on VTA (None if it can), e.g. 3 input channels."""
    if dtype != "int8":
        return f"VTA computes int8 convolutions, not {dtype}"
    try:
        vc.VTAConv2dWorkload(N, C, H, W, K, R, S, stride, pad).check()
    except ScheduleError as e:
        return str(e)
    return None


def _workload(N: int, C: int, H: int, W: int, K: int, R: int, S: int, stride: int, pad: int,
              dtype: str) -> vc.VTAConv2dWorkload:
    reason = unsupported_reason(N, C, H, W, K, R, S, stride, pad, dtype)
    if reason:
        raise ScheduleError(reason)
    return vc.VTAConv2dWorkload(N, C, H, W, K, R, S, stride, pad)


def _define(cfg: Any, space: dict[str, list[Any]], valid: Any, flop: int) -> None:
    for knob, choices in space.items():
        cfg.define_knob(knob, choices)
    cfg.add_constraint(lambda e: bool(valid(e.to_json())), _REASON)
    cfg.add_flop(flop)


# -- conv2d -------------------------------------------------------------------------------------
def _conv_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, K: int, R: int,
                 S: int, stride: int, pad: int, dtype: str) -> list[np.ndarray]:
    return [rng.integers(-128, 128, (N, C, H, W)).astype(np.int8),
            rng.integers(-128, 128, (K, C, R, S)).astype(np.int8)]


def _conv_reference(inputs: list[np.ndarray], *args: Any) -> list[np.ndarray]:
    w = _workload(*args)
    return [vc.pack_output(vc.reference(w, inputs[0], inputs[1]))]


def _conv_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                  ) -> list[np.ndarray]:
    return [vc.pack_data(inputs[0]), vc.pack_kernel(inputs[1])]


@VTA.op("conv2d", unsupported=unsupported_reason)
@template("vta_conv2d", inputs=_conv_inputs, reference=_conv_reference, prepare=_conv_prepare,
          default_config=lambda *a: vc.default_config(_workload(*a)))
def vta_conv2d_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                        stride: int = 1, pad: int = 0, dtype: str = "int8") -> Any:
    """int8 conv2d on VTA; arguments ``[data, kernel, out]`` in the packed layouts."""
    w = _workload(N, C, H, W, K, R, S, stride, pad, dtype)
    _define(cfg, vc.space(w), lambda c: vc.is_valid(w, c), w.flop)
    if isinstance(cfg, ConfigSpace):
        return None  # collect mode: the space is known without scheduling
    return vc.schedule(w, cfg.to_json())


# -- dense --------------------------------------------------------------------------------------
def _dense_inputs(rng: np.random.Generator, M: int, N: int, K: int, dtype: str = "int8"
                  ) -> list[np.ndarray]:
    return [rng.integers(-128, 128, (M, K)).astype(np.int8),
            rng.integers(-128, 128, (N, K)).astype(np.int8)]


def _dense_reference(inputs: list[np.ndarray], M: int, N: int, K: int, dtype: str = "int8"
                     ) -> list[np.ndarray]:
    y = vd.reference(vd.VTADenseWorkload(M, N, K), inputs[0], inputs[1])
    return [np.ascontiguousarray(y.reshape(M, 1, N // 16, 16).transpose(0, 2, 1, 3))]


def _dense_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                   ) -> list[np.ndarray]:
    return [vd.pack_data(inputs[0]), vd.pack_weight(inputs[1])]


@VTA.op("dense")
@template("vta_dense", inputs=_dense_inputs, reference=_dense_reference, prepare=_dense_prepare,
          default_config=lambda M, N, K, dtype="int8": vd.default_config(
              vd.VTADenseWorkload(M, N, K)))
def vta_dense_template(cfg: Any, M: int, N: int, K: int, dtype: str = "int8") -> Any:
    """int8 dense ``[M, K] x [N, K]^T`` on VTA; arguments ``[data, weight, out]`` packed."""
    if dtype != "int8":
        raise ScheduleError(f"VTA computes int8 dense, not {dtype}")
    w = vd.VTADenseWorkload(M, N, K)
    _define(cfg, vd.space(w), lambda c: vd.is_valid(w, c), w.flop)
    if isinstance(cfg, ConfigSpace):
        return None
    return vd.schedule(w, cfg.to_json())
