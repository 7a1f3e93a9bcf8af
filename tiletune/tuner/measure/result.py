"""Measurement data types shared by the harness, the tuners and the records."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from ...errors import TuningError

#: Error classes a failed measurement can carry, from "cannot even instantiate the template"
#: to "ran but computed the wrong thing".
ERROR_CLASSES = (
    "InstantiationError",
    "BuildError",
    "BuildTimeout",
    "RuntimeError",
    "RunTimeout",
    "Crash",
    "WrongAnswer",
    "Unknown",
)


@dataclass(frozen=True)
class MeasureInput:
    """What was measured: a workload and one point of its config space."""

    workload_key: str
    config_index: int
    config: dict[str, Any]


@dataclass(frozen=True)
class MeasureResult:
    """Outcome of one measurement.

    ``costs`` are seconds per run (one per repeat); ``error`` is None on success or one of
    :data:`ERROR_CLASSES`; ``message`` is a one-line reason; ``all_cost`` is the wall time the
    whole build + run took; ``traceback`` is the failure's traceback (may be empty).
    ``cut``: the measurement stopped after its first timed repeat because that repeat was
    more than ``MeasureOption.cutoff`` times slower than the best mean so far. ``costs``
    then hold that one warm repeat: the config is at least that slow (an upper bound on its
    throughput, a lower bound on what a full measurement could show), so a cut result
    is never a best (:attr:`usable`) and the cost models see it as a censored sample.
    """

    costs: tuple[float, ...] = ()
    error: str | None = None
    message: str = ""
    timestamp: float = field(default_factory=time.time)
    all_cost: float = 0.0
    traceback: str = field(default="", compare=False)
    cut: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", tuple(float(c) for c in self.costs))
        if self.error is not None and self.error not in ERROR_CLASSES:
            raise TuningError(
                f"unknown measurement error class {self.error!r}; expected one of "
                f"{', '.join(ERROR_CLASSES)}"
            )
        if "\n" in self.message:
            object.__setattr__(self, "message", " ".join(self.message.split()))
        if self.error is None and not self.costs:
            raise TuningError("a successful MeasureResult needs at least one cost")

    @classmethod
    def success(cls, costs: tuple[float, ...] | list[float], **kw: Any) -> MeasureResult:
        """A successful measurement with the given per-repeat costs (seconds)."""
        return cls(costs=tuple(costs), **kw)

    @classmethod
    def failure(cls, error: str, message: str = "", **kw: Any) -> MeasureResult:
        """A failed measurement of error class ``error``."""
        return cls(costs=(), error=error, message=message, **kw)

    @property
    def ok(self) -> bool:
        """True when the config built, ran and (if checked) gave the right answer."""
        return self.error is None

    @property
    def usable(self) -> bool:
        """True for a full, successful measurement: one that may be chosen as the best."""
        return self.error is None and not self.cut

    @property
    def mean(self) -> float:
        """Mean cost in seconds; ``inf`` for a failure."""
        return sum(self.costs) / len(self.costs) if self.ok else math.inf

    def throughput(self, flop: float = 0.0) -> float:
        """flop/s if ``flop`` > 0, else 1/cost; 0 for failures (the cost models' target)."""
        if not self.ok or self.mean <= 0:
            return 0.0
        return (flop if flop > 0 else 1.0) / self.mean

    def describe(self) -> str:
        """``"BuildError: message"`` or ``"ok 1.23e-04 s"``."""
        if self.ok:
            return f"ok {self.mean:.3e} s" + (" (cut: one repeat)" if self.cut else "")
        return f"{self.error}: {self.message}" if self.message else str(self.error)


@dataclass(frozen=True)
class TuneSummary:
    """What :meth:`Tuner.tune` did: the best config found and why it stopped."""

    best_index: int | None
    best_cost: float
    best_flops: float
    n_measured: int
    n_failed: int
    stop_reason: str
    elapsed: float
