"""The history a tuner learns from: records of earlier sessions (``--transfer-from``).

:func:`load_history` reads several records files; :func:`transfer_history` turns the records
of a template's *other* workloads into ``(features, throughputs)`` training data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import TuningError
from ..records.store import Record, RecordProblem, load_records, record_result

if TYPE_CHECKING:
    from .registry import TunerContext


def load_history(paths: Iterable[str | Path]) -> tuple[list[Record], list[RecordProblem]]:
    """All records of several files (``--transfer-from``); unusable lines reported."""
    records: list[Record] = []
    problems: list[RecordProblem] = []
    for p in paths:
        recs, probs = load_records(p)
        records += recs
        problems += probs
    return records, problems


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
