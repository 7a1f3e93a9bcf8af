"""What a report shows, computed from tuning records (no plotting here).

Per workload: one :class:`Curve` per search run (records grouped by tuner and seed, in the
order they were measured), the heuristic default against the best, failures by class, the
winning config and its schedule code, the fraction of the measured FMA peak (CPU) or the
GEMM-unit utilisation (VTA). ``ReportData.to_json()`` is the data the plots are drawn from
(the golden test compares it).

Records whose ``tuner`` is ``default`` (the heuristic default, measured first by a session)
or ``confirm`` (the end-of-session re-measurements) are not search trials: they feed
"default vs best", not the curves.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiletune.report.profile import NetworkProfile
from tiletune.report.schedule_code import display_name, python_for, task_of
from tiletune.tuner.records import load_records, record_cost  # the public records API

if TYPE_CHECKING:
    from tiletune.tuner.records import Record

NOT_SEARCH = ("default", "confirm")  # record tuners that are not search trials


@dataclass
class Curve:
    """One search run on one workload: every trial in measuring order.

    ``gflops[i]`` is trial i's GFLOP/s (calls/s when the workload's flop count is unknown;
    None: it failed, ``errors[i]`` says how),
    ``best[i]`` the best throughput of trials 1..i (0 before the first success), and
    ``elapsed[i]`` the wall time in seconds from the start of the run to the end of trial i
    (the first trial's own build + run time counts; timestamps are per measured batch).
    """

    tuner: str
    seed: int | None
    trials: list[int] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    gflops: list[float | None] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.tuner if self.seed is None else f"{self.tuner} (seed {self.seed})"

    def to_json(self) -> dict[str, Any]:
        return {"tuner": self.tuner, "seed": self.seed, "trials": self.trials,
                "elapsed": [_r(x) for x in self.elapsed],
                "gflops": [None if g is None else _r(g) for g in self.gflops],
                "best": [_r(b) for b in self.best], "errors": self.errors}


@dataclass
class WorkloadReport:
    """Everything the report shows about one workload."""

    key: str
    name: str
    target: str
    flop: float
    records: int
    curves: list[Curve]
    failures: dict[str, int]
    default_gflops: float | None
    best_gflops: float | None
    best_ms: float | None
    best_config: dict[str, Any] | None
    best_tuner: str | None
    threads: int | None
    peak_fraction: float | None = None
    gemm_utilization: dict[str, float] | None = None  # VTA: {"default": u, "best": u}
    code: str | None = None
    code_problem: str | None = None

    @property
    def speedup(self) -> float | None:
        if self.default_gflops and self.best_gflops:
            return self.best_gflops / self.default_gflops
        return None

    @property
    def unit(self) -> str:
        """What ``*_gflops`` hold: GFLOP/s, or calls/s for a template of unknown flops."""
        return "GFLOP/s" if self.flop else "calls/s"

    @property
    def slug(self) -> str:
        text = self.name if self.target == "llvm" else f"{self.name}-{self.target}"
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "workload"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "target": self.target,
                "flop": self.flop, "records": self.records,
                "curves": [c.to_json() for c in self.curves], "failures": self.failures,
                "default_gflops": _r(self.default_gflops), "best_gflops": _r(self.best_gflops),
                "speedup": _r(self.speedup), "best_ms": _r(self.best_ms),
                "best_config": self.best_config, "best_tuner": self.best_tuner,
                "threads": self.threads, "peak_fraction": _r(self.peak_fraction),
                "gemm_utilization": None if self.gemm_utilization is None else
                {k: _r(v) for k, v in self.gemm_utilization.items()},
                "code": self.code}


@dataclass
class ReportData:
    """A report: the workloads of every records file given, plus an optional profile."""

    sources: list[str]
    workloads: list[WorkloadReport]
    problems: list[str]
    peak_gflops: float | None  # single-core fp32 FMA peak of this host (None: not measured)
    profiles: list[NetworkProfile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"sources": self.sources, "peak_gflops": _r(self.peak_gflops),
                "workloads": [w.to_json() for w in self.workloads],
                "profiles": [p.to_json() for p in self.profiles], "problems": self.problems}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"


def _r(x: float | None) -> float | None:
    """Six significant digits: stable across platforms for the golden test."""
    return None if x is None else float(f"{x:.6g}")


def curves_of(records: Sequence[Record], flop: float) -> list[Curve]:
    """One curve per (tuner, seed) in measuring order (stable by timestamp)."""
    groups: dict[tuple[str, Any], list[Record]] = defaultdict(list)
    for r in records:
        tuner = r.get("tuner") or "?"
        if tuner not in NOT_SEARCH:
            groups[(tuner, r.get("seed"))].append(r)
    curves = []
    for (tuner, seed), recs in groups.items():
        recs = sorted(recs, key=lambda r: r.get("timestamp") or 0.0)
        first = recs[0]
        t0 = (first.get("timestamp") or 0.0) - (first.get("all_cost") or 0.0)
        c = Curve(tuner, seed)
        best = 0.0
        for n, r in enumerate(recs, start=1):
            g = speed(record_cost(r), flop)
            if g is not None:
                best = max(best, g)
            c.trials.append(n)
            c.elapsed.append(max(0.0, (r.get("timestamp") or 0.0) - t0))
            c.gflops.append(g)
            c.best.append(best)
            c.errors.append(r.get("error"))
        curves.append(c)
    return sorted(curves, key=lambda c: (c.tuner, -1 if c.seed is None else c.seed))


def speed(cost: float, flop: float) -> float | None:
    """GFLOP/s (calls per second when the flop count is unknown); None for a failure."""
    if not math.isfinite(cost) or cost <= 0:
        return None
    return flop / cost / 1e9 if flop else 1.0 / cost


def default_config(records: Sequence[Record]) -> dict[str, Any] | None:
    """The heuristic default's config: the config of the run's ``default`` record."""
    for r in records:
        if r.get("tuner") == "default":
            return r["config"]
    return None


def workload_report(records: Sequence[Record], peak: float | None,
                    utilization: Callable[[Any, dict[str, Any]], float | None] | None = None
                    ) -> WorkloadReport:
    """The report of one workload's records (all with the same workload key)."""
    first = records[0]
    task = task_of(first)
    flop = float(task.flop) if task is not None else 0.0
    target = getattr(task, "target", None) or first["workload"].rsplit("@", 1)[-1]
    ok = [r for r in records if math.isfinite(record_cost(r))]
    best = min(ok, key=record_cost) if ok else None
    dcfg = default_config(records)
    dcosts = [record_cost(r) for r in ok if dcfg is not None and r["config"] == dcfg]

    def gflops(cost: float | None) -> float | None:
        return None if cost is None else speed(cost, flop)

    threads = next((int(r["threads"]) for r in records if r.get("threads")), None)
    w = WorkloadReport(
        key=first["workload"], name=display_name(first), target=target, flop=flop,
        records=len(records), curves=curves_of(records, flop),
        failures=dict(sorted(Counter(r["error"] for r in records if r.get("error")).items())),
        default_gflops=gflops(min(dcosts)) if dcosts else None,
        best_gflops=gflops(record_cost(best)) if best else None,
        best_ms=record_cost(best) * 1e3 if best else None,
        best_config=dict(best["config"]) if best else None,
        best_tuner=(best.get("tuner") or "?") if best else None, threads=threads)
    if target == "vta":
        if utilization is not None and task is not None and best is not None:
            u = {"best": utilization(task, best["config"])}
            if dcfg is not None:
                u["default"] = utilization(task, dcfg)
            w.gemm_utilization = {k: v for k, v in u.items() if v is not None} or None
    elif peak and w.best_gflops and flop:
        w.peak_fraction = w.best_gflops / (peak * (threads or 1))
    if best is not None:
        try:
            imports, lines = python_for(best)
            order = sorted(imports, key=lambda s: (s.startswith("from"), s))
            w.code = "\n".join(order) + "\n\n" + "\n".join(lines) + "\n"
        except Exception as e:  # noqa: BLE001 - an unknown template: say why, keep the rest
            w.code_problem = str(e)
    return w


def vta_utilization(task: Any, config: dict[str, Any]) -> float | None:
    """GEMM-unit utilisation (GEMM cycles / cycles) of ``config`` on the VTA simulator."""
    import tiletune as tt

    try:
        s, args = task.instantiate(config)
        return float(tt.build(s, args, target="vta").report.gemm_utilization)
    except Exception:  # noqa: BLE001 - a config that no longer builds: no figure
        return None


def collect(paths: Sequence[str | Path], *, peak: float | None = None,
            profiles: Sequence[NetworkProfile] = (),
            utilization: Callable[[Any, dict[str, Any]], float | None] | None = vta_utilization
            ) -> ReportData:
    """Read every records file and build the report's data (workloads in first-seen order)."""
    groups: dict[str, list[Record]] = {}
    problems: list[str] = []
    for p in paths:
        recs, probs = load_records(p)
        problems += [str(x) for x in probs]
        for r in recs:
            groups.setdefault(r["workload"], []).append(r)
    workloads = [workload_report(recs, peak, utilization) for recs in groups.values()]
    return ReportData([str(p) for p in paths], workloads, problems, peak, list(profiles))
