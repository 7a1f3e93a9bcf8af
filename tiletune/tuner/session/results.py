"""What a session reports: one :class:`WorkloadResult` per workload, a :class:`SessionSummary`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class WorkloadResult:
    """What tuning one workload achieved."""

    name: str
    description: str
    workload_key: str
    template: str
    args: list[Any]
    n_trial: int
    shape: str = ""  # compact, for tables
    trials: int = 0  # measured configs, resumed ones included
    resumed: int = 0
    best_index: int | None = None
    best_config: dict[str, Any] | None = None
    best_cost: float = math.inf  # seconds
    best_gflops: float = 0.0
    default_index: int | None = None
    default_cost: float = math.inf
    default_gflops: float = 0.0
    default_error: str | None = None
    failures: dict[str, int] = field(default_factory=dict)  # this run's failures by class
    stop_reason: str = ""
    status: str = "pending"  # done, interrupted, skipped
    elapsed: float = 0.0
    confirmed: bool = False  # default and best: fastest of the confirmation rounds
    search_best_index: int | None = None  # with confirmed: the search's own best ...
    search_best_cost: float = math.inf  # ... as the search measured it
    confirm_note: str = ""  # why the confirmed best differs from the search's ('' if not)

    @property
    def new_trials(self) -> int:
        return self.trials - self.resumed

    @property
    def n_failed(self) -> int:
        return sum(self.failures.values())

    @property
    def speedup(self) -> float | None:
        """Best over the heuristic default (None when the default did not run)."""
        if math.isfinite(self.default_cost) and math.isfinite(self.best_cost):
            return self.default_cost / self.best_cost
        return None

    @property
    def best_ms(self) -> float | None:
        return self.best_cost * 1e3 if math.isfinite(self.best_cost) else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("best_cost", "default_cost", "search_best_cost"):
            d[k] = d[k] if math.isfinite(d[k]) else None
        return d | {"new_trials": self.new_trials, "speedup": self.speedup,
                    "best_ms": self.best_ms}


@dataclass
class SessionSummary:
    """Every workload's result, the records file and how the session ended."""

    results: list[WorkloadResult]
    records: str
    tuner: str
    seed: int
    elapsed: float = 0.0
    interrupted: bool = False
    signal: int | None = None  # SIGTERM / SIGHUP that stopped the session (None: Ctrl-C)
    problems: list[str] = field(default_factory=list)  # unusable record lines met

    @property
    def n_failed(self) -> int:
        return sum(r.n_failed for r in self.results)

    @property
    def unsolved(self) -> list[WorkloadResult]:
        """Workloads that ran but have no successful config."""
        return [r for r in self.results if r.status != "skipped" and r.best_index is None]

    @property
    def geomean_speedup(self) -> float | None:
        ups = [r.speedup for r in self.results if r.speedup]
        return math.exp(sum(math.log(u) for u in ups) / len(ups)) if ups else None

    @property
    def exit_code(self) -> int:
        """0 every workload got a best (failed trials are reported, not fatal, so
        ``tiletune tune && tiletune compile`` works), 1 a workload has no working config,
        130 Ctrl-C, 128 + N when signal N (SIGTERM: 143, SIGHUP: 129) stopped the session."""
        if self.interrupted:
            return 128 + self.signal if self.signal else 130
        return 1 if self.unsolved else 0

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "tuner": self.tuner, "seed": self.seed,
                "elapsed": self.elapsed, "interrupted": self.interrupted,
                "geomean_speedup": self.geomean_speedup, "failed_trials": self.n_failed,
                "exit_code": self.exit_code, "record_problems": self.problems,
                "workloads": [r.to_json() for r in self.results]}
