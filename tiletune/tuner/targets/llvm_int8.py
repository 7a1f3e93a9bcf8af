"""Tuning templates of the int8 kernels: ``int8_conv2d`` and ``int8_dense``.

Registered on the llvm target next to the fp32 library (``targets.llvm.LIBRARY``), with
the same contract: logical inputs (u8 NCHW data with 7-bit values, so every dot-product
path is exact; s8 OIHW or ``[K, N]`` weights; int32 bias; int32 multipliers), a per-config
``prepare`` that packs the weight, and the bit-exact NumPy integer reference.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...schedules import int8_conv2d, int8_dense
from ...schedules.int8_requant import Requant
from ..templates.registry import template
from .llvm import LIBRARY, _library

LIBRARY.update({
    "int8_conv2d": (int8_conv2d, int8_conv2d.Int8Conv2dWorkload),
    "int8_dense": (int8_dense, int8_dense.Int8DenseWorkload),
})

_SHIFT = Requant().shift


def _mult(rng: np.random.Generator, n: int, depth: int) -> np.ndarray:
    """Multipliers that map the accumulators of a ``depth``-long dot product onto ~0..255."""
    scale = 2.0 ** _SHIFT / (depth * 64 * 40)
    return np.round(rng.uniform(0.5, 1.5, n) * scale).astype(np.int32)


def _conv_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, K: int, R: int,
                 S: int, stride: int = 1, pad: int = 0, path: str = "auto",
                 out_dtype: str = "uint8") -> list[np.ndarray]:
    return [rng.integers(0, 128, (N, C, H, W)).astype(np.uint8),
            rng.integers(-128, 128, (K, C, R, S)).astype(np.int8),
            rng.integers(-1000, 1000, K).astype(np.int32), _mult(rng, K, C * R * S)]


def _conv_reference(inputs: list[np.ndarray], N: int, C: int, H: int, W: int, K: int, R: int,
                    S: int, stride: int = 1, pad: int = 0, path: str = "auto",
                    out_dtype: str = "uint8") -> list[np.ndarray]:
    data, weight, bias, mult = inputs
    return [int8_conv2d.reference(data, weight, bias, stride, pad, 0,
                                  mult if out_dtype == "uint8" else None)]


def _conv_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                  ) -> list[np.ndarray]:
    data, weight, bias, mult = inputs
    out_dtype = args[10] if len(args) > 10 else "uint8"
    packed = [data, int8_conv2d.pack_weight(weight, config), bias]
    return packed + ([mult] if out_dtype == "uint8" else [])


@template("int8_conv2d", inputs=_conv_inputs, reference=_conv_reference, prepare=_conv_prepare,
          default_config=lambda *a: int8_conv2d.default_config(
              int8_conv2d.Int8Conv2dWorkload(*a)))
def int8_conv2d_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                         stride: int = 1, pad: int = 0, path: str = "auto",
                         out_dtype: str = "uint8") -> Any:
    """u8 x s8 conv2d NCHW -> NCHW via NCHW[x]c, requantized; ``[data, weight_packed, bias,
    (mult,) output]``."""
    return _library(cfg, int8_conv2d, int8_conv2d.Int8Conv2dWorkload(
        N, C, H, W, K, R, S, stride, pad, path, out_dtype))


def _dense_inputs(rng: np.random.Generator, M: int, N: int, K: int, path: str = "auto",
                  out_dtype: str = "uint8") -> list[np.ndarray]:
    return [rng.integers(0, 128, (M, K)).astype(np.uint8),
            rng.integers(-128, 128, (K, N)).astype(np.int8),
            rng.integers(-1000, 1000, N).astype(np.int32), _mult(rng, N, K)]


def _dense_reference(inputs: list[np.ndarray], M: int, N: int, K: int, path: str = "auto",
                     out_dtype: str = "uint8") -> list[np.ndarray]:
    a, B, bias, mult = inputs
    return [int8_dense.reference(a, B, bias, 0, mult if out_dtype == "uint8" else None)]


def _dense_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                   ) -> list[np.ndarray]:
    a, B, bias, mult = inputs
    out_dtype = args[4] if len(args) > 4 else "uint8"
    packed = [np.ascontiguousarray(a).view(np.int32), int8_dense.pack_weight(B, config["nr"]),
              bias]
    return packed + ([mult] if out_dtype == "uint8" else [])


@template("int8_dense", inputs=_dense_inputs, reference=_dense_reference,
          prepare=_dense_prepare,
          default_config=lambda *a: int8_dense.default_config(int8_dense.Int8DenseWorkload(*a)))
def int8_dense_template(cfg: Any, M: int, N: int, K: int, path: str = "auto",
                        out_dtype: str = "uint8") -> Any:
    """u8 x s8 dense, requantized; ``[A_u8x4, B_packed, bias, (mult,) Y]``."""
    return _library(cfg, int8_dense, int8_dense.Int8DenseWorkload(M, N, K, path, out_dtype))
