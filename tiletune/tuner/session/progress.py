"""Progress reporting for tuning sessions: a live rich display, plain log lines, or nothing.

A :class:`Reporter` receives events from :func:`tiletune.tuner.session.tune_workloads`:
``job_start`` / ``batch`` / ``failure`` / ``confirm`` / ``job_end`` / ``message``.
:func:`make_reporter` picks the live display when the stream is a terminal and one plain
line per batch otherwise (no carriage returns, so CI logs stay readable)::

    [2/12 resnet18:2] 24/64 trials | best 120.4 GFLOP/s | current 98.2 | failures 0 | 12.3 s
    [2/12 resnet18:2] confirming: round 1/3, default + top 3 configs (full measurements)
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from ..measure.result import MeasureResult


@dataclass
class JobProgress:
    """The live state of one workload in a session."""

    position: int  # 1-based
    total: int  # number of workloads in the session
    name: str
    description: str
    n_trial: int
    done: int = 0
    best_gflops: float = 0.0
    current_gflops: float = 0.0
    failures: int = 0
    status: str = "pending"  # pending, running, confirming, done, interrupted, skipped
    confirm_round: int = 0  # the confirmation round under way (0: none yet)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def label(self) -> str:
        return f"[{self.position}/{self.total} {self.name}]"


def fmt_gflops(x: float) -> str:
    return f"{x:.1f}" if x > 0 else "-"


class Reporter:
    """Receives session events; this base class ignores them all (``-q``)."""

    def start(self, total: int, trials: int, time_budget: float | None, records: str
              ) -> None: ...

    def job_start(self, p: JobProgress) -> None: ...

    def batch(self, p: JobProgress) -> None: ...

    def failure(self, p: JobProgress, index: int, config: dict, result: MeasureResult
                ) -> None: ...

    def confirm(self, p: JobProgress, round: int, rounds: int, configs: list[int]) -> None:
        """The confirmation round ``round`` of ``rounds`` starts, measuring ``configs`` (the
        default first)."""

    def job_end(self, p: JobProgress, reason: str) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _failure_text(p: JobProgress, index: int, config: dict, result: MeasureResult) -> str:
    text = f"{p.label} config {index} failed: {result.describe()}\n  config: {config}"
    tb = getattr(result, "traceback", None) or getattr(result, "details", None)
    if tb:
        text += "\n  " + str(tb).rstrip().replace("\n", "\n  ")
    return text


def _confirm_what(configs: list[int]) -> str:
    top = len(configs) - 1
    return f"default + top {top} config{'s' if top != 1 else ''} (full measurements)"


class LogReporter(Reporter):
    """One plain line per batch and per finished workload (for logs and pipes)."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, total: int, trials: int, time_budget: float | None, records: str
              ) -> None:
        budget = f", time budget {time_budget:g} s" if time_budget else ""
        self._print(f"tuning {total} workload(s), up to {trials} trials each{budget}; "
                    f"records: {records}")

    def job_start(self, p: JobProgress) -> None:
        self._print(f"{p.label} {p.description}: tuning up to {p.n_trial} trials")

    def batch(self, p: JobProgress) -> None:
        self._print(f"{p.label} {p.done}/{p.n_trial} trials | best {fmt_gflops(p.best_gflops)}"
                    f" GFLOP/s | current {fmt_gflops(p.current_gflops)} | failures "
                    f"{p.failures} | {p.elapsed:.1f} s")

    def failure(self, p: JobProgress, index: int, config: dict, result: MeasureResult
                ) -> None:
        if self.verbose:
            self._print(_failure_text(p, index, config, result))

    def confirm(self, p: JobProgress, round: int, rounds: int, configs: list[int]) -> None:
        self._print(f"{p.label} confirming: round {round}/{rounds}, {_confirm_what(configs)}"
                    f" | {p.elapsed:.1f} s")

    def job_end(self, p: JobProgress, reason: str) -> None:
        self._print(f"{p.label} {p.status}: {p.done} trials, best "
                    f"{fmt_gflops(p.best_gflops)} GFLOP/s, {p.elapsed:.1f} s ({reason})")

    def message(self, text: str) -> None:
        self._print(text)


class RichReporter(Reporter):
    """A live table: one bar per workload with trials, best/current GFLOP/s, failures, time."""

    def __init__(self, console: Console, verbose: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.verbose = verbose
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[status]}"),
            console=console, refresh_per_second=4, transient=False)
        self.progress.start()
        self.ids: dict[int, int] = {}
        self.total_id: int | None = None
        self.n_done = 0

    def start(self, total: int, trials: int, time_budget: float | None, records: str
              ) -> None:
        budget = f"budget {time_budget:g} s" if time_budget else "no time limit"
        self.total_id = self.progress.add_task(
            "[bold]all workloads", total=total, stats=f"{budget}; records {records}",
            status="")

    def job_start(self, p: JobProgress) -> None:
        self.ids[p.position] = self.progress.add_task(
            f"{p.position:>2}/{p.total} {p.name}", total=p.n_trial, stats=self._stats(p),
            status="")

    @staticmethod
    def _stats(p: JobProgress) -> str:
        return (f"best [bold green]{fmt_gflops(p.best_gflops):>7}[/] GFLOP/s  cur "
                f"{fmt_gflops(p.current_gflops):>7}  fail {p.failures:>3}")

    def batch(self, p: JobProgress) -> None:
        tid = self.ids.get(p.position)
        if tid is not None:
            self.progress.update(tid, completed=p.done, stats=self._stats(p))

    def failure(self, p: JobProgress, index: int, config: dict, result: MeasureResult
                ) -> None:
        if self.verbose:
            from rich.markup import escape

            self.progress.console.print(f"[red]{escape(_failure_text(p, index, config, result))}")

    def confirm(self, p: JobProgress, round: int, rounds: int, configs: list[int]) -> None:
        tid = self.ids.get(p.position)
        if tid is not None:
            self.progress.update(tid, status=f"confirming {round}/{rounds}")

    def job_end(self, p: JobProgress, reason: str) -> None:
        tid = self.ids.get(p.position)
        if tid is None:
            return
        self.batch(p)
        short = reason if len(reason) <= 40 else reason[:37] + "..."
        self.progress.update(tid, total=max(p.done, 1) if p.status != "done" else p.n_trial,
                             status=f"{p.status}: {short}" if p.status != "done" else short)
        self.progress.stop_task(tid)
        self.n_done += 1
        if self.total_id is not None:
            self.progress.update(self.total_id, completed=self.n_done)

    def message(self, text: str) -> None:
        from rich.markup import escape

        self.progress.console.print(f"[yellow]{escape(text)}")

    def close(self) -> None:
        self.progress.stop()


def make_reporter(stream: TextIO | None = None, *, quiet: bool = False, verbose: bool = False,
                  live: bool | None = None) -> Reporter:
    """The reporter for ``stream`` (default stderr): nothing if ``quiet``; the live display if
    ``live`` (default: the stream is a terminal); plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return Reporter()
    if live is None:
        live = bool(getattr(stream, "isatty", lambda: False)())
    if live:
        from rich.console import Console

        return RichReporter(Console(file=stream), verbose=verbose)
    return LogReporter(stream, verbose=verbose)
