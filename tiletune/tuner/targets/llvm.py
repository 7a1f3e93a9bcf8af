"""The llvm target: the operator library's schedules as tuning templates (dense,
conv2d_nchwc, conv2d_nchw, depthwise_conv2d), measured by ``LocalMeasurer``.

Each template defines one knob per entry of ``module.space(w)``, the module's cross-knob
check as a constraint, the workload's flop count, and in apply mode calls
``module.schedule(w, config)`` with the plain knob -> value dict. Inputs are the logical
arrays (NCHW data, OIHW / CRR weights); conv2d's ``prepare`` packs the weight for the
config's channel blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from ...schedules import conv2d, conv2d_nchw, dense, depthwise
from ..measure.local import LocalMeasurer
from ..space.config_space import ConfigSpace
from ..templates.registry import template
from .registry import register_target

#: Worker processes, wall-clock time.
LLVM = register_target("llvm", measurer=LocalMeasurer, dtype="float32")

#: template name -> (library module, workload class).
LIBRARY: dict[str, tuple[ModuleType, type]] = {
    "dense": (dense, dense.DenseWorkload),
    "conv2d_nchwc": (conv2d, conv2d.Conv2dWorkload),
    "conv2d_nchw": (conv2d_nchw, conv2d.Conv2dWorkload),
    "depthwise_conv2d": (depthwise, depthwise.DepthwiseWorkload),
}

_REASON = "register budget: the accumulator tile must fit the vector registers"


def values(cfg: Any) -> dict[str, Any]:
    """The plain knob -> value dict the library schedules take."""
    return cfg.to_json()


def _library(cfg: Any, module: ModuleType, w: Any) -> Any:
    for knob, choices in module.space(w).items():
        cfg.define_knob(knob, choices)
    cfg.add_constraint(lambda e: bool(module.is_valid(w, values(e))), _REASON)
    cfg.add_flop(w.flop)
    if isinstance(cfg, ConfigSpace):
        return None  # collect mode: the space is known without scheduling
    return module.schedule(w, values(cfg))


def workload_of(name: str, args: tuple[Any, ...]) -> Any | None:
    """The library workload object of template ``name`` with ``args`` (None if not one)."""
    entry = LIBRARY.get(name)
    return None if entry is None else entry[1](*args)


def task_args(w: Any) -> tuple[Any, ...]:
    """Template arguments of a library workload (inverse of :func:`workload_of`)."""
    return dataclasses.astuple(w)


def template_of(w: Any) -> str | None:
    """The template name of a library workload object."""
    exact = next((n for n, (_, cls) in LIBRARY.items() if type(w) is cls), None)
    return exact or next((n for n, (_, cls) in LIBRARY.items() if isinstance(w, cls)), None)


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


# -- dense ---------------------------------------------------------------------------------
def _dense_inputs(rng: np.random.Generator, M: int, N: int, K: int, dtype: str
                  ) -> list[np.ndarray]:
    return [_rand(rng, (M, K), dtype), _rand(rng, (K, N), dtype)]


def _dense_reference(inputs: list[np.ndarray], M: int, N: int, K: int, dtype: str
                     ) -> list[np.ndarray]:
    a, b = inputs
    return [a.astype(np.float64) @ b.astype(np.float64)]


@LLVM.op("dense", aliases=("matmul",))
@template("dense", inputs=_dense_inputs, reference=_dense_reference,
          default_config=lambda *a: dense.default_config(dense.DenseWorkload(*a)))
def dense_template(cfg: Any, M: int, N: int, K: int, dtype: str = "float32") -> Any:
    """``C[M, N] = A[M, K] @ B[K, N]``; arguments ``[A, B, C]``."""
    return _library(cfg, dense, dense.DenseWorkload(M, N, K, dtype))


# -- conv2d (NCHWc inside, NCHW in and out) ------------------------------------------------
def _conv_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, K: int, R: int,
                 S: int, stride: int, pad: int, dtype: str) -> list[np.ndarray]:
    return [_rand(rng, (N, C, H, W), dtype), _rand(rng, (K, C, R, S), dtype)]


def _conv_reference(inputs: list[np.ndarray], N: int, C: int, H: int, W: int, K: int, R: int,
                    S: int, stride: int, pad: int, dtype: str) -> list[np.ndarray]:
    data, weight = inputs
    return [conv2d.reference(data, weight, stride, pad)]


def _conv_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                  ) -> list[np.ndarray]:
    data, weight = inputs
    return [data, conv2d.pack_weight(weight, config)]


@LLVM.op("conv2d")
@template("conv2d_nchwc", inputs=_conv_inputs, reference=_conv_reference, prepare=_conv_prepare,
          default_config=lambda *a: conv2d.default_config(conv2d.Conv2dWorkload(*a)))
def conv2d_nchwc_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                          stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """conv2d NCHW -> NCHW via NCHW[x]c; arguments ``[data, weight_packed, output]``."""
    return _library(cfg, conv2d, conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad, dtype))


def _nchw_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                  ) -> list[np.ndarray]:
    data, weight = inputs
    return [data, conv2d_nchw.pack_weight(weight, config)]


@template("conv2d_nchw", inputs=_conv_inputs, reference=_conv_reference, prepare=_nchw_prepare,
          default_config=lambda *a: conv2d_nchw.default_config(conv2d.Conv2dWorkload(*a)))
def conv2d_nchw_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                         stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """Direct conv2d on NCHW (vectors along the width; 1x1 as a GEMM over H*W)."""
    return _library(cfg, conv2d_nchw,
                    conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad, dtype))


# -- depthwise conv2d ----------------------------------------------------------------------
def _dw_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, R: int, stride: int,
               pad: int, dtype: str) -> list[np.ndarray]:
    return [_rand(rng, (N, C, H, W), dtype), _rand(rng, (C, R, R), dtype)]


def _dw_reference(inputs: list[np.ndarray], N: int, C: int, H: int, W: int, R: int,
                  stride: int, pad: int, dtype: str) -> list[np.ndarray]:
    data, weight = inputs
    return [depthwise.reference(data, weight, stride, pad)]


@LLVM.op("depthwise")
@template("depthwise_conv2d", inputs=_dw_inputs, reference=_dw_reference,
          default_config=lambda *a: depthwise.default_config(depthwise.DepthwiseWorkload(*a)))
def depthwise_conv2d_template(cfg: Any, N: int, C: int, H: int, W: int, R: int,
                              stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """Depthwise conv2d, NCHW; arguments ``[data, weight, output]``."""
    return _library(cfg, depthwise, depthwise.DepthwiseWorkload(N, C, H, W, R, stride, pad,
                                                                dtype))
