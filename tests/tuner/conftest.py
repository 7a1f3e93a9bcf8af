"""Shared fixtures: a synthetic conv2d-like tuning landscape and a fake schedule stage."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import pytest

from tiletune.tuner import ConfigSpace, MeasureResult


def conv_template(cfg, ic: int = 256, oc: int = 256, ow: int = 56) -> None:
    """The knobs of AutoTVM's x86 conv2d_NCHWc template, plus an annotation knob."""
    cfg.define_split("tile_ic", ic)
    cfg.define_split("tile_oc", oc)
    cfg.define_split("tile_ow", ow, policy="verbose", filter=lambda e: e.size[-1] <= 64)
    cfg.define_knob("unroll_kw", [True, False])
    cfg.define_annotate("ann", ["ax0", "ax1"], policy="try_unroll_vec")
    cfg.add_constraint(
        lambda c: c["tile_ow"].size[-1] * max(1, c["tile_oc"].size[-1] // 16) <= 28,
        "register tile fits 28 accumulators")
    cfg.add_flop(2 * ic * oc * ow * ow * 9)


def efficiency(cfg, ow: int) -> float:
    """A made-up but plausible roofline: SIMD width, register blocking, L1 footprint, loop
    overhead, tails, unrolling and vectorisation all interact multiplicatively."""
    ic_bn, oc_bn = cfg["tile_ic"].size[-1], cfg["tile_oc"].size[-1]
    ow_bn = cfg["tile_ow"].size[-1]
    a0, a1 = cfg["ann"].anns
    eff = min(oc_bn, 16) / 16 * (0.9 if oc_bn > 16 else 1.0)
    eff *= min(1.0, (ow_bn * max(1, oc_bn // 16) / 14) ** 0.6)
    footprint = ic_bn * oc_bn * 9 * 4 + ic_bn * (ow_bn + 2) * 4
    eff *= 1.0 if footprint <= 32768 else (32768 / footprint) ** 0.5
    eff *= 1 / (1 + 3 / ic_bn)
    eff *= ow / (math.ceil(ow / ow_bn) * ow_bn)
    eff *= (1.06 if ow_bn <= 8 else 0.97) if cfg["unroll_kw"].val else 1.0
    eff *= {"vec": 1.08, "unroll": 1.02, "none": 1.0}[a1]
    eff *= {"vec": 0.85, "unroll": 0.98, "none": 1.0}[a0]
    return eff


def _hash01(text: str) -> float:
    return zlib.crc32(text.encode()) / 2**32


@dataclass
class Landscape:
    """A space plus a deterministic fake ``measure`` with ~4% build failures."""

    space: ConfigSpace
    ow: int
    fail_rate: float = 0.04
    calls: list[list[int]] = field(default_factory=list)

    @property
    def flop(self) -> float:
        return self.space.flop

    def fails(self, i: int) -> bool:
        return _hash01(f"fail{i}") < self.fail_rate

    def cost(self, i: int) -> float:
        jitter = math.exp(0.034 * (2 * _hash01(str(i)) - 1))  # ±3.4% "measurement noise"
        return self.flop / (efficiency(self.space.get(i), self.ow) * 100e9) * jitter

    def measure(self, indices: list[int]) -> list[MeasureResult]:
        self.calls.append(list(indices))
        return [MeasureResult.failure("BuildError", f"config {i}: no registers left")
                if self.fails(i) else MeasureResult.success([self.cost(i)]) for i in indices]

    def best_cost(self) -> float:
        return min(self.cost(int(i)) for i in self.space.valid_indices() if not self.fails(i))


@pytest.fixture(scope="session")
def landscape_space() -> ConfigSpace:
    space = ConfigSpace.collect(conv_template, 256, 256, 56)
    space.num_valid()  # enumerate validity once per session
    return space


@pytest.fixture(scope="session")
def landscape_best(landscape_space) -> float:
    return Landscape(landscape_space, 56).best_cost()


@pytest.fixture
def landscape(landscape_space) -> Landscape:
    return Landscape(landscape_space, 56)


class FakeAxis:
    def __init__(self, name: str, extent: int) -> None:
        self.name, self.extent = name, extent

    def __repr__(self) -> str:
        return f"{self.name}({self.extent})"


class FakeStage:
    """Records schedule calls the way ``Stage`` would receive them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def split(self, axis: FakeAxis, factor: int) -> tuple[FakeAxis, FakeAxis]:
        self.calls.append(("split", axis.name, factor))
        return (FakeAxis(axis.name + ".o", -(-axis.extent // factor)),
                FakeAxis(axis.name + ".i", factor))

    def reorder(self, *axes: FakeAxis) -> None:
        self.calls.append(("reorder", *[a.name for a in axes]))

    def unroll(self, axis: FakeAxis) -> None:
        self.calls.append(("unroll", axis.name))

    def vectorize(self, axis: FakeAxis) -> None:
        self.calls.append(("vectorize", axis.name))


@pytest.fixture
def stage() -> FakeStage:
    return FakeStage()


@pytest.fixture
def axis():
    return FakeAxis
