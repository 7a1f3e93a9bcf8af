"""``apply_history_best``: build library kernels with the best tuned configs of a records file.

    with tt.tuner.apply_history_best("conv.jsonl"):
        f = tt.schedules.conv2d.build(w)            # the best record's config for w, if tuned

Records are loaded once (unusable lines are skipped and reported in one warning); the
fastest successful record of each workload key wins, provided its config still fits the
template's space (a record cut short by the cutoff is a bound, never applied). Inside the
block the library's ``schedule``/``build`` functions, called without a config, ask
``schedules.dispatch`` for it; ``Task.instantiate()`` without a config does too. A workload
with no record falls back to its heuristic ``default_config``; the misses are collected and
reported by ONE warning when the block is left, naming each untuned workload and the command
that would tune it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...errors import TuningError
from ...schedules import dispatch
from ..templates.task import parse_workload_key
from .store import (
    Record,
    RecordProblem,
    load_records,
    record_cost,
    record_problem,
    same_machine,
    usable_cost,
)

#: Template name -> the CLI's ``--op`` name.
CLI_OPS = {"conv2d_nchwc": "conv2d", "dense": "dense", "depthwise_conv2d": "depthwise",
           "conv2d_auto": "conv2d_auto", "conv2d_winograd": "winograd",
           "conv2d_im2col": "im2col", "grouped_conv2d": "grouped"}


class UntunedWarning(UserWarning):
    """Some workloads built inside ``apply_history_best`` had no tuned config."""


class ApplyHistoryBest:
    """The dispatch context made by :func:`apply_history_best` (reusable, re-entrant)."""

    def __init__(self, records: str | os.PathLike[str] | Iterable[Any]) -> None:
        self.paths: list[str] = []
        self.problems: list[RecordProblem] = []
        recs: list[Record] = []
        items = [records] if isinstance(records, str | os.PathLike) else list(records)
        for item in items:
            if isinstance(item, Mapping):
                recs.append(dict(item))
                continue
            self.paths.append(os.fspath(item))
            got, problems = load_records(item)
            recs += got
            self.problems += problems
        #: key -> config: task keys and, for library templates, the schedules' ``w.key()``.
        self.configs: dict[str, dict[str, Any]] = {}
        #: key -> why its records were not usable.
        self.rejected: dict[str, str] = {}
        #: workload key -> the record applied (the fastest one that fits the template).
        self.best: dict[str, Record] = {}
        by_key: dict[str, list[Record]] = {}
        #: successful records measured on another CPU model or thread count: not used.
        self.foreign: list[Record] = []
        for rec in recs:
            if record_problem(rec) is not None:  # records passed in as dicts
                continue
            if not math.isfinite(usable_cost(rec)):  # cut records are bounds, not measurements
                continue
            if "@vta" not in rec["workload"] and not same_machine(rec):
                self.foreign.append(rec)
                continue
            by_key.setdefault(rec["workload"], []).append(rec)
        for key, group in by_key.items():
            self._add(key, sorted(group, key=record_cost))
        self.misses: dict[str, Any] = {}
        self._depth = 0

    def _add(self, key: str, ranked: list[Record]) -> None:
        """Use the fastest record of ``key`` whose config fits the current template."""
        try:
            name, args, target = parse_workload_key(key)
        except TuningError:
            name, args, target = key, (), ""
        from ..targets.llvm import LIBRARY
        entry = LIBRARY.get(name)
        if entry is None:  # a user template: the fastest config inside its space
            rec = _first_in_space(name, args, target, ranked)
            if rec is None:
                self.rejected[key] = "no record's config is in the template's space"
                return
            self.best[key], self.configs[key] = rec, dict(rec["config"])
            return
        module, workload_cls = entry
        try:
            w = workload_cls(*args)
        except TypeError as e:
            self.rejected[key] = f"bad workload arguments: {e}"
            return
        # the schedules look up ``w.key()``: only the template that owns that workload
        # class answers it (conv2d_nchw shares Conv2dWorkload with conv2d_nchwc, whose
        # build would otherwise be handed an NCHW config)
        from ..targets.llvm import template_of
        owns = target == "llvm" and template_of(w) == name
        keys = [key, w.key()] if owns else [key]
        problem = ""
        for rec in ranked:
            problem = _fit_problem(module, w, rec["config"])
            if not problem:
                self.best[key] = rec
                for k in keys:
                    self.configs[k] = dict(rec["config"])
                return
        for k in keys:
            self.rejected[k] = f"no record fits the current template: {problem}"

    # -- the dispatch protocol --------------------------------------------------------------
    def query(self, key: str, workload: Any = None) -> dict[str, Any] | None:
        cfg = self.configs.get(key)
        return None if cfg is None else dict(cfg)

    def miss(self, key: str, workload: Any = None) -> None:
        self.misses.setdefault(key, workload)

    # -- user API ---------------------------------------------------------------------------
    def best_cost(self, key: str) -> float:
        """Mean seconds of the best record of a workload key (``inf`` if none)."""
        rec = self.best.get(key)
        return record_cost(rec) if rec is not None else math.inf

    def tune_command(self, key: str, workload: Any = None) -> str:
        """The CLI command that would tune this workload."""
        from ..targets.llvm import task_args, template_of
        records = self.paths[0] if len(self.paths) == 1 else "FILE"
        name = template_of(workload) if workload is not None else None
        args: tuple[Any, ...] = task_args(workload) if name else ()
        if name is None:
            try:
                name, args, _ = parse_workload_key(key)
            except TuningError:
                return f"tiletune tune ... --records {records}"
        shape = [a for a in args if not isinstance(a, str)]
        dtype = next((a for a in args if isinstance(a, str)), "float32")
        cmd = (f"tiletune tune --op {CLI_OPS.get(name, name)} "
               f"--shape {','.join(str(a) for a in shape)}")
        if dtype != "float32":
            cmd += f" --dtype {dtype}"
        return f"{cmd} --records {records}"

    def __enter__(self) -> ApplyHistoryBest:
        if self.problems and self._depth == 0:
            first = self.problems[0]
            warnings.warn(f"skipped {len(self.problems)} unusable record line(s), e.g. {first}",
                          stacklevel=2)
        self._depth += 1
        if self._depth == 1:
            self.misses = {}
        self._cm = dispatch.push(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)
        self._depth -= 1
        if self._depth == 0 and self.misses:
            self.warn_untuned()

    def warn_untuned(self) -> None:
        """One warning naming every untuned workload met so far and how to tune it."""
        lines = []
        for key, w in self.misses.items():
            why = f" ({self.rejected[key]})" if key in self.rejected else ""
            lines.append(f"  {key}{why}: {self.tune_command(key, w)}")
        warnings.warn(f"{len(lines)} workload(s) had no tuned config in "
                      f"{', '.join(self.paths) or 'the records'} and used the default "
                      "schedule (may be much slower):\n" + "\n".join(lines),
                      UntunedWarning, stacklevel=3)


def _first_in_space(name: str, args: tuple, target: str, ranked: list[Record]
                    ) -> Record | None:
    """The first record whose config is a point of the registered template's space (the
    first record when the template is not registered: checked when instantiated)."""
    from ..templates.task import Task

    try:
        space = Task(name, args, target or "llvm").space
    except Exception:  # noqa: BLE001 - not registered here
        return ranked[0]
    for rec in ranked:
        try:
            space.index_of(rec["config"])
            return rec
        except TuningError:
            continue
    return None


def _fit_problem(module: Any, w: Any, config: Mapping[str, Any]) -> str:
    """Why ``config`` is not a valid config of the library template (empty if it is)."""
    space = module.space(w)
    if set(config) != set(space):
        return f"knobs {sorted(config)} != {sorted(space)}"
    bad = [f"{k}={config[k]!r}" for k in space if config[k] not in space[k]]
    if bad:
        return f"values not in the space: {', '.join(bad)}"
    return "" if module.is_valid(w, config) else "violates the register budget"


def apply_history_best(path: str | Path | list[Any]) -> ApplyHistoryBest:
    """A context manager applying the best records of ``path`` (a file, several files, or a
    list of records) to library builds and ``Task.instantiate()``; see the module docs."""
    return ApplyHistoryBest(path)
