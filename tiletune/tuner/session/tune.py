"""Tune a list of workloads under one budget: the library function behind ``tiletune tune``.

    from tiletune.tuner.session import tune_workloads
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
5. ``confirm``: the default and the search's top 3 configs are measured again, in full
   (the harness's cutoff only applies to the search), in 3 interleaved back-to-back rounds
   with one progress line each; each config keeps its fastest repeat and the fastest config
   wins. The speed-up compares those times, so noise that flattered the search's minimum
   (or hit the default's first measurement) does not distort it; when the confirmed best
   is another config than the search's, or the same one re-measured more than 10% off, a
   line (and ``WorkloadResult.confirm_note``) says so.

Shapes a target cannot run (``Workload.unsupported_reason()``, e.g. VTA and ResNet-18's
3-channel first layer) are skipped with one warning each (``status="skipped"``). Each
target's tasks are measured by the measurer its target declares (llvm: ``LocalMeasurer``;
vta: ``VTAMeasurer``, in process, simulated cycles -> seconds).

Ctrl-C stops the session: records already written stay, and :class:`SessionSummary` reports
what was done (``interrupted=True``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import RecordsError, TuningError
from ..records.store import Record, RecordProblem, load_records
from ..search.history import load_history
from ..search.registry import DEFAULT_TRIALS, TUNERS
from .progress import Reporter
from .results import SessionSummary, WorkloadResult
from .run import Job, RunPlan, WorkloadRun
from .signals import stop_signals_interrupt

if TYPE_CHECKING:
    from ..measure.local import MeasureOption
    from ..templates.task import Task
    from .workloads import Workload

DEFAULT_RECORDS = "tiletune_records.jsonl"
DEFAULT_TIME_BUDGET = 1080.0  # ResNet-18 (12 layers) within 20 minutes on 2 cores


def measurer_class(target: str | None, cluster: str | None = None) -> Any:
    """The class that measures tasks of ``target`` (``cls(task, option, seed=...)``), as
    the target declares it (``tiletune/tuner/targets/``); with ``cluster`` (a Dask
    scheduler address), llvm tasks are measured on that cluster."""
    from ..targets.registry import get_target

    if cluster and str(target or "llvm").split()[0] == "llvm":
        from ..measure.dask import DaskMeasurer

        return functools.partial(DaskMeasurer, address=cluster)
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


def _as_job(item: Workload | Task) -> Job:
    if hasattr(item, "task") and callable(item.task):  # a Workload
        return Job(item.name, item.describe(), item.compact(), item.task())
    task = item
    from .workloads import find_by_template

    wl = find_by_template(task.name, tuple(task.args), getattr(task, "target", "llvm"))
    if wl is not None:
        return Job(wl.name, wl.describe(), wl.compact(), task)
    args = ",".join(map(str, task.args))
    return Job(task.name, f"{task.name}({args})", args, task)


def tune_workloads(
    items: Sequence[Workload | Task], *, trials: int = DEFAULT_TRIALS,
    time_budget: float | None = None, early_stopping: int | None = None, tuner: str = "xgb",
    records: str | Path = DEFAULT_RECORDS, resume: bool = False, seed: int = 0,
    option: MeasureOption | None = None, transfer_from: Sequence[str | Path] = (),
    reporter: Reporter | None = None, batch_size: int | None = None, confirm: bool = True,
    cluster: str | None = None,
) -> SessionSummary:
    """Tune each workload (a :class:`Workload` or a harness ``Task``) and summarise.

    ``trials`` is per workload (the default config and resumed configs count);
    ``time_budget`` (seconds) is for the whole session, checked between batches. With
    ``confirm`` (step 5 of the module docstring), the reported default and best times come
    from interleaved re-measurements at the end of each workload. Raises
    :class:`TuningError` / :class:`RecordsError` for bad arguments or unreadable records
    before anything is measured; never for failed measurements. ``cluster``: a Dask
    scheduler address (``tcp://host:8786``); llvm workloads are then measured on its
    workers (:mod:`tiletune.tuner.measure.dask`); a lost cluster raises TuningError with
    the records written so far intact.
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
    entries: list[Job | WorkloadResult] = []
    for item in items:
        why = _unsupported(item)
        entries.append(_as_job(item) if why is None else _skipped(item, why, trials))
    jobs = [e for e in entries if isinstance(e, Job)]
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
    plan = RunPlan(trials, tuner, records, seed, option, reporter, batch_size, early_stopping,
                   confirm, prior, history)
    deadline = None if time_budget is None else start + time_budget
    for e in entries:
        if isinstance(e, WorkloadResult):
            reporter.message(f"warning: skipping {e.name} ({e.description}): {e.stop_reason}")
    reporter.start(len(jobs), trials, time_budget, str(records))
    with stop_signals_interrupt():
        _run_jobs(entries, jobs, plan, summary, deadline, start, cluster)
    return summary


def _run_jobs(entries: list[Job | WorkloadResult], jobs: list[Job], plan: RunPlan,
              summary: SessionSummary, deadline: float | None, start: float,
              cluster: str | None = None) -> None:
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
            run = WorkloadRun(job, plan, pos, len(jobs), share,
                              measurer_class(getattr(job.task, "target", "llvm"), cluster))
            summary.results.append(run.result)
            res = run.run()
            if res.status == "interrupted":
                summary.interrupted, summary.signal = True, run.signal
                break
    finally:
        summary.elapsed = time.monotonic() - start
