"""Tuning templates of the conv2d algorithms: Winograd, im2col, grouped, and the combined
``conv2d_auto`` whose space covers every applicable algorithm of a layer.

``conv2d_auto`` has two knobs: ``algorithm`` (the applicable names) and ``schedule`` (every
valid config of every applicable algorithm, a :class:`AlgorithmScheduleKnob`), constrained to
agree, so its valid configs are the disjoint union of the algorithms' spaces. The schedule
knob's cost-model features are the algorithm one-hot followed by one slot per knob of every
algorithm (the value, or -1 when that algorithm is not the one chosen), so a tree model can
split on the algorithm first and on its knobs after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...schedules import conv2d, conv2d_auto, grouped, im2col, winograd
from ..space.config_space import ConfigSpace
from ..space.knobs import OtherKnob, OtherOptionEntity
from ..templates.registry import template
from .llvm import LIBRARY, LLVM, _conv_inputs, _conv_reference, _library, _rand, values

LIBRARY.update({
    "conv2d_winograd": (winograd, winograd.WinogradWorkload),
    "conv2d_im2col": (im2col, im2col.Im2colWorkload),
    "grouped_conv2d": (grouped, grouped.GroupedConv2dWorkload),
    "conv2d_auto": (conv2d_auto, conv2d_auto.AutoConv2dWorkload),
})


class AlgorithmScheduleKnob(OtherKnob):
    """The ``schedule`` knob of ``conv2d_auto``: configs of several algorithms in one list."""

    kind = "algo"

    def __init__(self, name: str, by_algorithm: Mapping[str, list[dict[str, Any]]],
                 spaces: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        choices = [c for cfgs in by_algorithm.values() for c in cfgs]
        super().__init__(name, choices)
        self.algorithms = list(spaces)
        self.spaces = {a: dict(sp) for a, sp in spaces.items()}
        owners = [a for a, cfgs in by_algorithm.items() for _ in cfgs]
        self.algorithm_by_id = {id(e): a for e, a in zip(self.entities, owners)}

    def algorithm(self, entity: OtherOptionEntity) -> str:
        return self.algorithm_by_id[id(entity)]

    def _feature(self, entity: OtherOptionEntity) -> list[float]:
        algo = self.algorithm(entity)
        row = [float(a == algo) for a in self.algorithms]
        for a in self.algorithms:
            for knob, choices in self.spaces[a].items():
                if a != algo:
                    row.append(-1.0)
                    continue
                v = entity.val[knob]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    row.append(float(list(choices).index(v)))
                else:
                    row.append(math.log2(float(v)) if v > 0 else 0.0)
        return row


def agree(e: Any) -> bool:
    """The ``schedule`` knob's entity belongs to the chosen ``algorithm``."""
    knob = e.space.knobs["schedule"]
    return knob.algorithm(e["schedule"]) == e["algorithm"].val


def _auto_space(cfg: ConfigSpace, w: conv2d.Conv2dWorkload) -> None:
    names = conv2d_auto.applicable(w)
    by_algo = {n: conv2d_auto.algorithm_configs(w, n) for n in names}
    spaces = {n: conv2d_auto.ALGORITHMS[n].space(w) for n in names}
    cfg.define_knob("algorithm", names)
    cfg._add("schedule", lambda: AlgorithmScheduleKnob("schedule", by_algo, spaces))
    cfg.add_constraint(agree, "the schedule is a config of the chosen algorithm")


def _prepare_with(module: Any):
    def prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                ) -> list[np.ndarray]:
        data, weight = inputs
        return [data, module.pack_weight(weight, config)]
    return prepare


# -- conv2d_auto: the algorithm is a knob -----------------------------------------------------
@LLVM.op("conv2d_auto")
@template("conv2d_auto", inputs=_conv_inputs, reference=_conv_reference,
          prepare=_prepare_with(conv2d_auto),
          default_config=lambda *a: conv2d_auto.default_config(conv2d.Conv2dWorkload(*a)))
def conv2d_auto_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                         stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """conv2d by any applicable algorithm (direct NCHWc/NCHW, Winograd, im2col)."""
    w = conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad, dtype)
    cfg.add_flop(w.flop)
    if isinstance(cfg, ConfigSpace):
        _auto_space(cfg, w)
        return None
    return conv2d_auto.schedule(w, values(cfg))


# -- single algorithms ------------------------------------------------------------------------
@LLVM.op("winograd")
@template("conv2d_winograd", inputs=_conv_inputs, reference=_conv_reference,
          prepare=_prepare_with(winograd),
          default_config=lambda *a: winograd.default_config(conv2d.Conv2dWorkload(*a)))
def conv2d_winograd_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                             stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """Winograd F(m x m, 3 x 3) conv2d (stride-1 3x3 layers)."""
    return _library(cfg, winograd, conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad,
                                                          dtype))


@LLVM.op("im2col")
@template("conv2d_im2col", inputs=_conv_inputs, reference=_conv_reference,
          prepare=_prepare_with(im2col),
          default_config=lambda *a: im2col.default_config(conv2d.Conv2dWorkload(*a)))
def conv2d_im2col_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                           stride: int = 1, pad: int = 0, dtype: str = "float32") -> Any:
    """conv2d as im2col + register-tiled GEMM."""
    return _library(cfg, im2col, conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad,
                                                        dtype))


def _grouped_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, K: int, R: int,
                    S: int, stride: int, pad: int, groups: int, dilation: int, dtype: str
                    ) -> list[np.ndarray]:
    return [_rand(rng, (N, C, H, W), dtype), _rand(rng, (K, C // groups, R, S), dtype)]


def _grouped_reference(inputs: list[np.ndarray], N: int, C: int, H: int, W: int, K: int,
                       R: int, S: int, stride: int, pad: int, groups: int, dilation: int,
                       dtype: str) -> list[np.ndarray]:
    data, weight = inputs
    return [grouped.reference(data, weight, stride, pad, groups, dilation)]


@LLVM.op("grouped")
@template("grouped_conv2d", inputs=_grouped_inputs, reference=_grouped_reference,
          prepare=_prepare_with(grouped),
          default_config=lambda *a: grouped.default_config(grouped.GroupedConv2dWorkload(*a)))
def grouped_conv2d_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                            stride: int = 1, pad: int = 0, groups: int = 1, dilation: int = 1,
                            dtype: str = "float32") -> Any:
    """Grouped conv2d (ResNeXt, ShuffleNet; depthwise with groups = C), NCHW[x]c per group."""
    return _library(cfg, grouped, grouped.GroupedConv2dWorkload(
        N, C, H, W, K, R, S, stride, pad, groups, dilation, dtype))
