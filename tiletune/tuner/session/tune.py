"""Tune a list of workloads under one budget: the library function behind ``tiletune tune``.

    from tiletune.tuner.session.tune import tune_workloads
    from tiletune.tuner.session.workloads import parse_workloads
    summary = tune_workloads(parse_workloads("resnet18:2-3"), trials=64, time_budget=300)
    print(summary.geomean_speedup, summary.to_json())

For every workload, in order:

1. its share of the remaining time budget (unused time flows to the next workloads);
2. with ``resume``, the configs already in the records file become the tuner's history
   (``Tuner.tune(resume_from=...)``) and are never measured again;
3. the heuristic default config is measured first (unless resumed): it is the baseline of
   the speed-up and, through the harness, the correctness check;
4. the tuner runs, each batch appended and fsynced to the records before the next one;
5. ``confirm``: the default and the search's top 3 configs are measured again, in 3
   interleaved back-to-back rounds; each keeps its fastest time and the fastest config wins.
   The speed-up compares those times, so noise that flattered the search's minimum (or hit
   the default's first measurement) does not distort it.

Shapes a target cannot run (``Workload.unsupported_reason()``, e.g. VTA and ResNet-18's
3-channel first layer) are skipped with one warning each (``status="skipped"``). Each
target's tasks are measured by the measurer its target declares (llvm: ``LocalMeasurer``;
vta: ``VTAMeasurer``, in process, simulated cycles -> seconds).

Ctrl-C stops the session: records already written stay, and :class:`SessionSummary` reports
what was done (``interrupted=True``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import RecordsError, TuningError
from ..measure.result import MeasureInput, MeasureResult
from ..records.store import (
    Record,
    RecordProblem,
    RecordWriter,
    load_records,
    measured_configs,
    record_result,
)
from .progress import JobProgress, Reporter

if TYPE_CHECKING:
    from ..measure.local import MeasureOption
    from ..search.tuner import Tuner
    from ..space.config_space import ConfigSpace
    from ..templates.task import Task
    from .workloads import Workload

DEFAULT_RECORDS = "tiletune_records.jsonl"
DEFAULT_TRIALS = 256
DEFAULT_TIME_BUDGET = 1080.0  # ResNet-18 (12 layers) within 20 minutes on 2 cores


# --------------------------------------------------------------------------- the tuner registry
@dataclass
class TunerContext:
    """What a tuner factory may use: the task, the seed, the trial budget, the history."""

    task: Task
    seed: int = 0
    n_trial: int = DEFAULT_TRIALS
    history: list[Record] = field(default_factory=list)  # --transfer-from records

    @property
    def space(self) -> ConfigSpace:
        return self.task.space


@dataclass(frozen=True)
class TunerEntry:
    factory: Callable[[TunerContext], Tuner]
    help: str
    uses_history: bool = False


TUNERS: dict[str, TunerEntry] = {}


def register_tuner(name: str, help: str, uses_history: bool = False  # noqa: A002
                   ) -> Callable[[Callable[[TunerContext], Tuner]], Callable]:
    """Decorator: ``@register_tuner("mine", "what it does")`` on ``factory(ctx) -> Tuner``."""
    def deco(factory: Callable[[TunerContext], Tuner]) -> Callable[[TunerContext], Tuner]:
        TUNERS[name] = TunerEntry(factory, help, uses_history)
        return factory
    return deco


def xgb_plan(n_trial: int) -> dict[str, int]:
    """XGBTuner sizes for a trial budget: model-guided after a quarter of it (8..64)."""
    n_initial = min(64, max(8, n_trial // 4))
    return {"plan_size": max(16, min(64, 2 * n_initial)), "n_initial": n_initial}


@register_tuner("xgb", "XGBoost rank model + search over it (AutoTVM's XGBTuner)")
def _xgb(ctx: TunerContext) -> Tuner:
    from ..search.xgb_tuner import XGBTuner

    return XGBTuner(ctx.space, seed=ctx.seed, **xgb_plan(ctx.n_trial))


@register_tuner("random", "uniformly random valid configs")
def _random(ctx: TunerContext) -> Tuner:
    from ..search.random_tuner import RandomTuner

    return RandomTuner(ctx.space, seed=ctx.seed)


@register_tuner("grid", "every valid config in index order")
def _grid(ctx: TunerContext) -> Tuner:
    from ..search.grid_tuner import GridSearchTuner

    return GridSearchTuner(ctx.space, seed=ctx.seed)


@register_tuner("active", "active learning: BTED warm-up + bootstrap-UCB (BAO) plans")
def _active(ctx: TunerContext) -> Tuner:
    from ..search.active import ActiveTuner

    return ActiveTuner(ctx.space, seed=ctx.seed, plan_size=xgb_plan(ctx.n_trial)["plan_size"])


@register_tuner("transfer", "transfer learning from --transfer-from records of other shapes "
                "of the same template (deep-kernel GP, ICCV'21)", uses_history=True)
def _transfer(ctx: TunerContext) -> Tuner:
    from ..search.transfer import TransferTuner

    featurize, history = transfer_history(ctx)
    return TransferTuner(ctx.space, history, featurize, seed=ctx.seed, method="gp",
                         plan_size=xgb_plan(ctx.n_trial)["plan_size"])


def transfer_history(ctx: TunerContext, kind: str = "knob",
                     featurizer: Callable[[Any], Callable] | None = None
                     ) -> tuple[Callable, list[tuple[np.ndarray, np.ndarray]]]:
    """``(featurize, [(features, throughputs)])`` of the history's other workloads of the
    task's template. Knob features: the library templates' knobs are numeric values or
    fixed-order choices, so they mean the same thing across shapes. ``featurizer(task)``
    replaces ``make_featurizer(task, kind)`` (e.g. to append shape descriptors)."""
    from ..models.features import make_featurizer
    from ..templates.task import Task, parse_workload_key

    if featurizer is None:
        featurizer = lambda task: make_featurizer(task, kind)  # noqa: E731

    groups: dict[str, list[Record]] = {}
    for rec in ctx.history:
        if rec.get("workload") != ctx.task.workload_key and \
                rec.get("workload", "").startswith(f"{ctx.task.name}("):
            groups.setdefault(rec["workload"], []).append(rec)
    history = []
    for key, recs in groups.items():
        try:
            name, args, target = parse_workload_key(key)
            task = Task(name, args, target)
        except TuningError:
            continue
        idx, ys = [], []
        for r in recs:
            try:
                idx.append(task.space.index_of(r["config"]))
            except TuningError:
                continue
            ys.append(record_result(r).throughput(float(task.flop)))
        if idx:
            history.append((featurizer(task)(idx), np.asarray(ys)))
    if not history:
        raise TuningError(f"no records of other {ctx.task.name} workloads in the transfer "
                          "history")
    return featurizer(ctx.task), history


def make_tuner(name: str, ctx: TunerContext) -> Tuner:
    """The registered tuner ``name`` for a context."""
    try:
        entry = TUNERS[name]
    except KeyError:
        raise TuningError(f"unknown tuner {name!r}; expected one of {', '.join(TUNERS)}"
                          ) from None
    return entry.factory(ctx)


# --------------------------------------------------------------------------- results
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
        for k in ("best_cost", "default_cost"):
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
        """0 all good, 1 some trials failed or a workload has no working config, 130 Ctrl-C."""
        if self.interrupted:
            return 130
        return 1 if self.n_failed or self.unsolved else 0

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "tuner": self.tuner, "seed": self.seed,
                "elapsed": self.elapsed, "interrupted": self.interrupted,
                "geomean_speedup": self.geomean_speedup, "failed_trials": self.n_failed,
                "exit_code": self.exit_code, "record_problems": self.problems,
                "workloads": [r.to_json() for r in self.results]}


# --------------------------------------------------------------------------- the session
@dataclass
class _Job:
    name: str
    description: str
    shape: str
    task: Task


def measurer_class(target: str | None) -> type:
    """The class that measures tasks of ``target`` (``cls(task, option, seed=...)``), as
    the target declares it (``tiletune/tuner/targets/``)."""
    from ..targets.registry import get_target

    return get_target(target).measurer


def _unsupported(item: Workload | Task) -> str | None:
    """Why a Workload cannot run on its target (harness Tasks: None, they exist already)."""
    check = getattr(item, "unsupported_reason", None)
    return check() if callable(check) else None


def _skipped(item: Workload, reason: str, trials: int) -> WorkloadResult:
    from ..templates.task import workload_key

    return WorkloadResult(item.name, item.describe(),
                          workload_key(item.template, item.args, item.target), item.template,
                          list(item.args), trials, item.compact(), status="skipped",
                          stop_reason=f"unsupported on {item.target}: {reason}")


def _as_job(item: Workload | Task) -> _Job:
    if hasattr(item, "task") and callable(item.task):  # a Workload
        return _Job(item.name, item.describe(), item.compact(), item.task())
    task = item
    from .workloads import find_by_template

    wl = find_by_template(task.name, tuple(task.args), getattr(task, "target", "llvm"))
    if wl is not None:
        return _Job(wl.name, wl.describe(), wl.compact(), task)
    args = ",".join(map(str, task.args))
    return _Job(task.name, f"{task.name}({args})", args, task)


def default_index(task: Task) -> int | None:
    """Index of the template's heuristic default config, None if it is not in the space."""
    try:
        cfg = task.default_config()
        index = cfg.index if hasattr(cfg, "index") else task.space.index_of(cfg)
    except TuningError:
        return None
    return int(index) if task.space.is_valid(int(index)) else None


CONFIRM_TOP = 3  # search candidates re-measured with the default at the end of a workload
CONFIRM_ROUNDS = 3  # back-to-back rounds; each config keeps its fastest time


def _confirm(measurer: Callable, tuner: Tuner, default: int, write: Callable,
             note: Callable) -> tuple[float, float, int] | None:
    """Re-measure the default and the search's top configs in interleaved rounds; return
    (default cost, best cost, best index), costs the minimum over every repeat of every
    round (interference on a busy machine only ever slows a run down)."""
    ranked = sorted((r.mean, i) for i, r in zip(tuner.xs, tuner.results)
                    if r.ok and i != default)
    top = list(dict.fromkeys(int(i) for _, i in ranked))[:CONFIRM_TOP]
    cand = [default, *top]
    fastest = dict.fromkeys(cand, math.inf)
    for _ in range(CONFIRM_ROUNDS):
        again = list(measurer(cand))
        write(cand, again, "confirm")
        note(cand, again)
        for i, r in zip(cand, again):
            if r.ok:
                fastest[i] = min(fastest[i], *r.costs)
    if not math.isfinite(fastest[default]):
        return None
    winner = min(cand, key=lambda i: (fastest[i], i != default))
    return fastest[default], fastest[winner], winner


def load_history(paths: Iterable[str | Path]) -> tuple[list[Record], list[RecordProblem]]:
    """All records of several files (``--transfer-from``); unusable lines reported."""
    records: list[Record] = []
    problems: list[RecordProblem] = []
    for p in paths:
        recs, probs = load_records(p)
        records += recs
        problems += probs
    return records, problems


def tune_workloads(
    items: Sequence[Workload | Task], *, trials: int = DEFAULT_TRIALS,
    time_budget: float | None = None, early_stopping: int | None = None, tuner: str = "xgb",
    records: str | Path = DEFAULT_RECORDS, resume: bool = False, seed: int = 0,
    option: MeasureOption | None = None, transfer_from: Sequence[str | Path] = (),
    reporter: Reporter | None = None, batch_size: int | None = None, confirm: bool = True,
) -> SessionSummary:
    """Tune each workload (a :class:`Workload` or a harness ``Task``) and summarise.

    ``trials`` is per workload (the default config and resumed configs count);
    ``time_budget`` (seconds) is for the whole session, checked between batches. With
    ``confirm`` (step 5 of the module docstring), the reported default and best times come
    from interleaved re-measurements at the end of each workload. Raises
    :class:`TuningError` / :class:`RecordsError` for bad arguments or unreadable records
    before anything is measured; never for failed measurements.
    """
    from ..measure.local import MeasureOption

    if trials < 1:
        raise TuningError(f"trials must be >= 1, got {trials}")
    if time_budget is not None and time_budget <= 0:
        raise TuningError(f"time budget must be > 0 seconds, got {time_budget}")
    if early_stopping is not None and early_stopping < 1:
        raise TuningError(f"early stopping must be >= 1 trials, got {early_stopping}")
    if tuner not in TUNERS:
        raise TuningError(f"unknown tuner {tuner!r}; expected one of {', '.join(TUNERS)}")
    if transfer_from and not TUNERS[tuner].uses_history:
        users = [n for n, e in TUNERS.items() if e.uses_history]
        raise TuningError(f"--transfer-from needs a tuner that learns from history "
                          f"({', '.join(users) or 'none installed'}), not {tuner!r}")
    option = option if option is not None else MeasureOption()
    reporter = reporter if reporter is not None else Reporter()
    batch_size = batch_size or max(8, 2 * int(getattr(option, "jobs", 1) or 1))
    records = Path(records)
    start = time.monotonic()

    # shapes the target cannot run (VTA: 3 input channels) are skipped with one warning each;
    # every other task is built now, so bad shapes fail before anything is measured
    entries: list[_Job | WorkloadResult] = []
    for item in items:
        why = _unsupported(item)
        entries.append(_as_job(item) if why is None else _skipped(item, why, trials))
    jobs = [e for e in entries if isinstance(e, _Job)]
    if not jobs:
        why = "; ".join(f"{e.name}: {e.stop_reason}" for e in entries)
        raise TuningError(f"nothing to tune: {why}")
    prior: list[Record] = []
    problems: list[RecordProblem] = []
    if resume and records.exists():
        prior, problems = load_records(records)
    history, hist_problems = load_history(transfer_from)
    problems += hist_problems
    if transfer_from and not history:
        raise RecordsError(f"no usable records in {', '.join(map(str, transfer_from))}")
    for p in problems[:5]:
        reporter.message(f"warning: skipped {p}")
    if len(problems) > 5:
        reporter.message(f"warning: skipped {len(problems) - 5} more unusable record lines")

    summary = SessionSummary([], str(records), tuner, seed,
                             problems=[str(p) for p in problems])
    deadline = None if time_budget is None else start + time_budget
    for e in entries:
        if isinstance(e, WorkloadResult):
            reporter.message(f"warning: skipping {e.name} ({e.description}): {e.stop_reason}")
    reporter.start(len(jobs), trials, time_budget, str(records))
    try:
        pos = 0
        for job in entries:
            if isinstance(job, WorkloadResult):
                summary.results.append(job)
                continue
            pos += 1
            share = None
            if deadline is not None:
                share = (deadline - time.monotonic()) / (len(jobs) - pos + 1)
            res = _tune_one(job, pos, len(jobs), trials=trials, share=share,
                            early_stopping=early_stopping, tuner=tuner, records=records,
                            prior=prior, seed=seed, option=option, history=history,
                            reporter=reporter, batch_size=batch_size, confirm=confirm,
                            measurer_cls=measurer_class(getattr(job.task, "target", "llvm")),
                            summary=summary)
            if res.status == "interrupted":
                summary.interrupted = True
                break
    finally:
        summary.elapsed = time.monotonic() - start
    return summary


def _tune_one(job: _Job, pos: int, total: int, *, trials: int, share: float | None,
              early_stopping: int | None, tuner: str, records: Path, prior: list[Record],
              seed: int, option: MeasureOption, history: list[Record], reporter: Reporter,
              batch_size: int, confirm: bool, measurer_cls: type, summary: SessionSummary
              ) -> WorkloadResult:
    task = job.task
    key = task.workload_key
    t0 = time.monotonic()
    res = WorkloadResult(job.name, job.description, key, task.name, list(task.args), trials,
                         job.shape)
    summary.results.append(res)
    prog = JobProgress(pos, total, job.name, job.description, trials)
    if share is not None and share <= 0:
        res.status, res.stop_reason = "skipped", "time budget exhausted"
        prog.status = "skipped"
        reporter.job_start(prog)
        reporter.job_end(prog, res.stop_reason)
        return res

    space = task.space
    flop = float(task.flop)
    resume_from = measured_configs(prior, key, space) if prior else {}
    res.resumed = len(resume_from)
    prior_indices = set(resume_from)
    writer = RecordWriter(records, template=task.name, seed=seed, tuner=tuner)
    failures: Counter[str] = Counter()

    def write(indices: Sequence[int], results: Sequence[MeasureResult], who: str) -> None:
        inputs = [MeasureInput(key, int(i), space.get(int(i)).to_json()) for i in indices]
        writer.write(inputs, results, tuner=who)

    def note(indices: Sequence[int], results: Sequence[MeasureResult]) -> None:
        for i, r in zip(indices, results):
            if not r.ok:
                failures[r.error or "Unknown"] += 1
                prog.failures += 1
                reporter.failure(prog, int(i), space.get(int(i)).to_json(), r)

    tuner_obj = make_tuner(tuner, TunerContext(task, seed, trials, history))
    confirmed: tuple[float, float, int] | None = None
    prog.status = "running"
    reporter.job_start(prog)
    try:
        with measurer_cls(task, option, seed=seed) as measurer:
            d = default_index(task)
            res.default_index = d
            if d is None:
                reporter.message(f"{prog.label} the heuristic default config is not in the "
                                 "space: no speed-up baseline")
            elif d not in resume_from:
                (dres,) = measurer([d])
                write([d], [dres], "default")
                note([d], [dres])
                resume_from[d] = dres
            if d is not None:
                dres = resume_from[d]
                if dres.ok:
                    res.default_cost = dres.mean
                    res.default_gflops = flop / dres.mean / 1e9
                else:
                    res.default_error = dres.describe()
                    reporter.message(f"{prog.label} the default config failed: "
                                     f"{dres.describe()}")

            def measure(indices: list[int]) -> list[MeasureResult]:
                out = list(measurer(indices))
                if len(out) == len(indices):
                    write(indices, out, tuner)
                    note(indices, out)
                return out

            def on_batch(t: Tuner, indices: list[int], results: list[MeasureResult]) -> None:
                prog.done = len(t.visited)
                prog.best_gflops = t.best_flops / 1e9
                prog.current_gflops = max((r.throughput(flop) for r in results),
                                          default=0.0) / 1e9
                reporter.batch(prog)

            budget = None if share is None else max(0.0, share - (time.monotonic() - t0))
            ts = tuner_obj.tune(measure, trials, flop=flop, batch_size=batch_size,
                                early_stopping=early_stopping, time_budget=budget,
                                callbacks=[on_batch], resume_from=resume_from)
            res.stop_reason = ts.stop_reason
            res.status = "done"
            bi = tuner_obj.best_index
            fresh = len(tuner_obj.visited) > len(prior_indices)  # measured anything new?
            if (confirm and fresh and d is not None and bi is not None and bi != d
                    and math.isfinite(res.default_cost)):
                confirmed = _confirm(measurer, tuner_obj, d, write, note)
    except KeyboardInterrupt:
        res.status, res.stop_reason = "interrupted", "interrupted (Ctrl-C)"
    finally:
        res.trials = len(tuner_obj.visited) or len(resume_from)
        bi = tuner_obj.best_index
        if bi is None and resume_from:  # interrupted before tune() fed the history
            ok = {i: r for i, r in resume_from.items() if r.ok}
            bi = min(ok, key=lambda i: ok[i].mean) if ok else None
            res.best_cost = ok[bi].mean if bi is not None else math.inf
        elif bi is not None:
            res.best_cost = tuner_obj.best_cost
        if confirmed is not None:
            res.default_cost, res.best_cost, bi = confirmed
            res.confirmed = True
        if bi is not None:
            res.best_index = int(bi)
            res.best_config = space.get(int(bi)).to_json()
            res.best_gflops = flop / res.best_cost / 1e9 if flop else 0.0
        if math.isfinite(res.default_cost) and flop:
            res.default_gflops = flop / res.default_cost / 1e9
        res.failures = dict(failures)
        res.elapsed = time.monotonic() - t0
        prog.done, prog.best_gflops = res.trials, res.best_gflops
        prog.status, prog.finished = res.status, time.monotonic()
        reporter.job_end(prog, res.stop_reason)
    return res
