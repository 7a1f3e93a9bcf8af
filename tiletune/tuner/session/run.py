"""One workload of a session, as explicit steps: default, search, confirm, finish.

    run = WorkloadRun(job, plan, pos=1, total=12, share=90.0)
    result = run.run()  # skip (no time left) or start -> default -> search -> confirm -> finish

``default`` measures the heuristic default config (the speed-up baseline; resumed when the
records have it); ``search`` runs the tuner, appending every batch to the records;
``confirm`` re-measures the default and the search's top configs in interleaved rounds (full
measurements: the harness's cutoff applies to the search only), with progress, and says
why when its best differs from the search's;
``finish`` fills in the :class:`WorkloadResult` from what the steps left, also after
Ctrl-C (a partial result) or an error.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import TuningError
from ..measure.result import MeasureInput, MeasureResult
from ..records.shared import SharedRecords
from ..records.store import Record, RecordWriter, measured_configs
from ..search.registry import TunerContext, make_tuner
from .progress import JobProgress, Reporter
from .results import WorkloadResult
from .signals import interrupt_reason

if TYPE_CHECKING:
    from ..measure.local import MeasureOption
    from ..search.tuner import Tuner
    from ..templates.task import Task

CONFIRM_TOP = 3  # search candidates re-measured with the default at the end of a workload
CONFIRM_ROUNDS = 3  # back-to-back rounds; each config keeps its fastest time
#: A config replaces the default only when its confirmed time is this much faster: within
#: it the two are a tie on a shared machine, and the default (no tuning needed) is kept.
CONFIRM_MARGIN = 0.02


@dataclass
class Job:
    """A workload ready to tune: display names and its task."""

    name: str
    description: str
    shape: str
    task: Task


@dataclass
class RunPlan:
    """What every workload of a session shares."""

    trials: int
    tuner: str
    records: Path
    seed: int
    option: MeasureOption
    reporter: Reporter
    batch_size: int
    early_stopping: int | None = None
    confirm: bool = True
    prior: Sequence[Record] = ()  # --resume: the records file's records
    history: Sequence[Record] = ()  # --transfer-from records


def default_index(task: Task) -> int | None:
    """Index of the template's heuristic default config, None if it is not in the space."""
    try:
        cfg = task.default_config()
        index = cfg.index if hasattr(cfg, "index") else task.space.index_of(cfg)
    except TuningError:
        return None
    return int(index) if task.space.is_valid(int(index)) else None


class WorkloadRun:
    """Tunes one job under ``plan`` within ``share`` seconds (None: no time limit)."""

    def __init__(self, job: Job, plan: RunPlan, pos: int, total: int, share: float | None,
                 measurer_cls: type) -> None:
        self.job, self.plan, self.share, self.measurer_cls = job, plan, share, measurer_cls
        task = self.task = job.task
        self.space = task.space
        self.flop = 0.0  # start() asks the task (may build the default config)
        self.t0 = time.monotonic()
        self.result = WorkloadResult(job.name, job.description, task.workload_key, task.name,
                                     list(task.args), plan.trials, job.shape)
        self.progress = JobProgress(pos, total, job.name, job.description, plan.trials)
        self.failures: Counter[str] = Counter()
        self.resume_from: dict[int, MeasureResult] = {}
        self.default: int | None = None
        self.tuner: Tuner | None = None
        self.confirmed: Confirmation | None = None
        self._writer: RecordWriter | None = None
        self._shared: SharedRecords | None = None
        self._measurer: Any = None
        self._who = ""  # the "tuner" field of records written now (default, the tuner)
        self.signal: int | None = None  # SIGTERM/SIGHUP that interrupted it (None: Ctrl-C)

    # -- the steps ----------------------------------------------------------------------------
    def run(self) -> WorkloadResult:
        """Every step in order; returns :attr:`result` (status done, interrupted, skipped)."""
        if self.share is not None and self.share <= 0:
            return self.skip("time budget exhausted")
        self.start()
        try:
            with self.measurer_cls(self.task, self.plan.option, seed=self.plan.seed) as m:
                self._measurer = m
                self.measure_default(self.shared_measure(m, full=True))
                self.search(self.shared_measure(m), recorded=True)
                self.confirm(m)
        except KeyboardInterrupt as e:
            self.result.status, self.result.stop_reason = "interrupted", interrupt_reason(e)
            self.signal = getattr(e, "signum", None)
        finally:
            if self._shared is not None:
                self._shared.close()
            self.finish()
        return self.result

    def skip(self, reason: str) -> WorkloadResult:
        self.result.status, self.result.stop_reason = "skipped", reason
        self.progress.status = "skipped"
        self.plan.reporter.job_start(self.progress)
        self.plan.reporter.job_end(self.progress, reason)
        return self.result

    def start(self) -> None:
        """Resume from the records, make the tuner, announce the job."""
        plan = self.plan
        self.flop = float(self.task.flop)
        if plan.prior:
            self.resume_from = measured_configs(list(plan.prior), self.task.workload_key,
                                                self.space)
        self.result.resumed = len(self.resume_from)
        self._shared = SharedRecords(plan.records, self.task.workload_key, self.space)
        self._writer = RecordWriter(plan.records, template=self.task.name, seed=plan.seed,
                                    tuner=plan.tuner,
                                    threads=int(getattr(plan.option, "threads", 1) or 1))
        self.tuner = make_tuner(plan.tuner, TunerContext(self.task, plan.seed, plan.trials,
                                                         list(plan.history)))
        self.progress.status = "running"
        plan.reporter.job_start(self.progress)

    def shared_measure(self, measurer: Callable, full: bool = False
                       ) -> Callable[[list[int]], list[MeasureResult]]:
        """``measurer`` behind the records file's claims (:class:`SharedRecords`): configs
        another ``tune`` process on the same file measured or is measuring are not measured
        again; what is measured here is recorded here (and only that). ``full``: no
        cutoff (:func:`measure_full`, for the default config)."""
        shared = self._shared
        assert shared is not None, "start() opens the records"
        run = functools.partial(measure_full, measurer) if full else measurer

        def measure(indices: list[int]) -> list[MeasureResult]:
            todo, out, busy = shared.claim([int(i) for i in indices])
            if todo:
                res = list(run(todo))
                self._record(todo, res, self._who)
                out.update(zip(todo, res))
            if busy:
                out.update(shared.wait_for(busy))
                rest = [i for i in busy if i not in out]  # their claimer died: measure here
                if rest:
                    res = list(run(rest))
                    self._record(rest, res, self._who)
                    out.update(zip(rest, res))
            return [out[int(i)] for i in indices]

        return measure

    def measure_default(self, measurer: Callable) -> None:
        """Measure the heuristic default config (unless resumed): the speed-up baseline."""
        res, d = self.result, default_index(self.task)
        self.default = res.default_index = d
        if d is None:
            self.plan.reporter.message(f"{self.progress.label} the heuristic default config "
                                       "is not in the space: no speed-up baseline")
            return
        if d not in self.resume_from:
            self._who = "default"
            (dres,) = measurer([d])
            self.resume_from[d] = dres
        dres = self.resume_from[d]
        if dres.ok:
            res.default_cost = dres.mean
            res.default_gflops = self.flop / dres.mean / 1e9
        else:
            res.default_error = dres.describe()
            self.plan.reporter.message(f"{self.progress.label} the default config failed: "
                                       f"{dres.describe()}")

    def search(self, measurer: Callable, recorded: bool = False) -> None:
        """Run the tuner within the trial and time budgets, recording every batch
        (``recorded``: ``measurer`` records what it measures itself)."""
        plan, tuner = self.plan, self.tuner
        assert tuner is not None, "start() makes the tuner"
        self._who = plan.tuner

        def measure(indices: list[int]) -> list[MeasureResult]:
            out = list(measurer(indices))
            if len(out) == len(indices) and not recorded:
                self._record(indices, out, plan.tuner)
            return out

        def on_batch(t: Tuner, indices: list[int], results: list[MeasureResult]) -> None:
            prog = self.progress
            prog.done = len(t.visited)
            prog.best_gflops = t.best_flops / 1e9
            prog.current_gflops = max((r.throughput(self.flop) for r in results),
                                      default=0.0) / 1e9
            plan.reporter.batch(prog)

        budget = None if self.share is None else max(
            0.0, self.share - (time.monotonic() - self.t0))
        ts = tuner.tune(measure, plan.trials, flop=self.flop, batch_size=plan.batch_size,
                        early_stopping=plan.early_stopping, time_budget=budget,
                        callbacks=[on_batch], resume_from=self.resume_from)
        self.result.stop_reason = ts.stop_reason
        self.result.status = "done"

    def confirm(self, measurer: Callable) -> None:
        """Re-measure the default and the search's top configs in interleaved rounds, when
        the search found something new that beats the (working) default."""
        tuner, d = self.tuner, self.default
        assert tuner is not None, "start() makes the tuner"
        bi = tuner.best_index
        fresh = len(tuner.visited) > self.result.resumed  # measured anything new?
        if (self.plan.confirm and fresh and d is not None and bi is not None and bi != d
                and math.isfinite(self.result.default_cost)):
            prog, reporter = self.progress, self.plan.reporter
            prog.status = "confirming"

            def on_round(k: int, cand: list[int]) -> None:
                prog.confirm_round = k
                reporter.confirm(prog, k, CONFIRM_ROUNDS, cand)

            self.confirmed = confirm_rounds(measurer, tuner, d, self._record, on_round)
            note = self.confirmed.explanation(self.flop) if self.confirmed else ""
            if note:
                self.result.confirm_note = note
                reporter.message(f"{prog.label} {note}")

    def finish(self) -> None:
        """Fill in the result from the tuner, the resumed records and the confirmation."""
        res, tuner, flop = self.result, self.tuner, self.flop
        visited = len(tuner.visited) if tuner is not None else 0
        res.trials = visited or len(self.resume_from)
        bi = tuner.best_index if tuner is not None else None
        if bi is None and self.resume_from:  # interrupted before tune() fed the history
            ok = {i: r for i, r in self.resume_from.items() if r.usable}
            bi = min(ok, key=lambda i: ok[i].mean) if ok else None
            res.best_cost = ok[bi].mean if bi is not None else math.inf
        elif bi is not None:
            res.best_cost = tuner.best_cost
        if self.confirmed is not None:
            c = self.confirmed
            res.search_best_index, res.search_best_cost = c.search_best, c.search_cost
            res.default_cost, res.best_cost, bi = c.default_cost, c.best_cost, c.best_index
            res.confirmed = True
        if bi is not None:
            res.best_index = int(bi)
            res.best_config = self.space.get(int(bi)).to_json()
            res.best_gflops = flop / res.best_cost / 1e9 if flop else 0.0
        if math.isfinite(res.default_cost) and flop:
            res.default_gflops = flop / res.default_cost / 1e9
        res.failures = dict(self.failures)
        res.elapsed = time.monotonic() - self.t0
        prog = self.progress
        prog.done, prog.best_gflops = res.trials, res.best_gflops
        prog.status, prog.finished = res.status, time.monotonic()
        self.plan.reporter.job_end(prog, res.stop_reason)

    # -- recording ----------------------------------------------------------------------------
    def _record(self, indices: Sequence[int], results: Sequence[MeasureResult], who: str
                ) -> None:
        """Append to the records and count and report the failures."""
        assert self._writer is not None, "start() opens the records"
        key = self.task.workload_key
        inputs = [MeasureInput(key, int(i), self.space.get(int(i)).to_json()) for i in indices]
        hosts = getattr(self._measurer, "hosts", None)  # remote measurements: where
        each = None
        if hosts:
            threads = getattr(self._measurer, "threads", {})
            each = [{"host": hosts[int(i)], "threads": threads[int(i)]}
                    if int(i) in hosts else {} for i in indices]
        self._writer.write(inputs, results, each=each, tuner=who)
        for i, r in zip(indices, results):
            if not r.ok:
                self.failures[r.error or "Unknown"] += 1
                self.progress.failures += 1
                self.plan.reporter.failure(self.progress, int(i),
                                           self.space.get(int(i)).to_json(), r)


def measure_full(measurer: Callable, indices: Sequence[int]) -> list[MeasureResult]:
    """Measure ``indices`` in full, without the harness's cutoff (the default config and
    the confirmation rounds); measurers without a cutoff are simply called."""
    full = getattr(measurer, "measure_full", None)
    return list(full(indices) if callable(full) else measurer(indices))


@dataclass
class Confirmation:
    """What the confirmation rounds measured: per config its fastest repeat over every round
    (interference on a busy machine only ever slows a run down)."""

    default: int
    fastest: dict[int, float]
    search_best: int  # the search's best index (before the confirmation)
    search_cost: float  # its cost as the search measured it

    @property
    def best_index(self) -> int:
        fastest = min(self.fastest, key=lambda i: (self.fastest[i], i != self.default))
        if self.fastest[fastest] * (1 + CONFIRM_MARGIN) > self.fastest[self.default]:
            return self.default  # a tie within the margin: keep the default
        return fastest

    @property
    def best_cost(self) -> float:
        return self.fastest[self.best_index]

    @property
    def default_cost(self) -> float:
        return self.fastest[self.default]

    def explanation(self, flop: float) -> str:
        """Why the confirmed best differs from the search's ('' when it does not: the same
        config, within 10% of the search's figure)."""
        def rate(cost: float) -> str:
            return (f"{flop / cost / 1e9:.1f} GFLOP/s" if flop and math.isfinite(cost)
                    else f"{cost * 1e6:.2f} us")

        bi, sb = self.best_index, self.search_best
        again = self.fastest.get(sb, math.inf)
        if bi == sb and abs(again / self.search_cost - 1) <= 0.10:
            return ""
        head = (f"confirmed best: config {bi} at {rate(self.best_cost)} (fastest repeat of "
                f"{CONFIRM_ROUNDS} interleaved rounds)")
        if bi == sb:
            return (f"{head}; the search measured it once at {rate(self.search_cost)} "
                    "(noise in that one measurement)")
        if bi == self.default:
            return (f"{head}: the default config; the search's best, config {sb}, measured "
                    f"{rate(self.search_cost)} once but {rate(again)} when re-measured "
                    f"(a config must beat the default by {CONFIRM_MARGIN:.0%} to replace it)")
        return (f"{head}; the search's best, config {sb}, measured {rate(self.search_cost)} "
                f"once but {rate(again)} when re-measured")


def confirm_rounds(measurer: Callable, tuner: Tuner, default: int,
                   record: Callable[[Sequence[int], Sequence[MeasureResult], str], Any],
                   on_round: Callable[[int, list[int]], None] | None = None
                   ) -> Confirmation | None:
    """Re-measure the default and the search's top configs (full measurements, never cut)
    in ``CONFIRM_ROUNDS`` interleaved rounds; None when the default failed every round.
    ``on_round(round, configs)`` is called before each round (1-based)."""
    ranked = sorted((r.mean, i) for i, r in zip(tuner.xs, tuner.results)
                    if r.usable and i != default)
    top = list(dict.fromkeys(int(i) for _, i in ranked))[:CONFIRM_TOP]
    cand = [default, *top]
    fastest = dict.fromkeys(cand, math.inf)
    for k in range(CONFIRM_ROUNDS):
        if on_round is not None:
            on_round(k + 1, cand)
        again = measure_full(measurer, cand)
        record(cand, again, "confirm")
        for i, r in zip(cand, again):
            if r.usable:
                fastest[i] = min(fastest[i], *r.costs)
    if not math.isfinite(fastest[default]):
        return None
    sb = tuner.best_index if tuner.best_index is not None else default
    return Confirmation(default, fastest, int(sb), float(tuner.best_cost))
