"""Tuning records: append-only JSON lines, one measurement per line.

A line::

    {"workload": "conv2d_NCHWc|1,64,56,56|...", "template": "conv2d_NCHWc",
     "config": {"tile_ic": [-1, 16], ...}, "index": 123, "costs": [1.2e-4],
     "error": null, "message": "", "timestamp": 1700000000.0, "all_cost": 0.8,
     "seed": 0, "tuner": "XGBTuner", "versions": {"tiletune": "0.1.0", ...}}

A measurement stopped by the cutoff after one timed repeat also has ``"cut": true``: its
cost is only a bound (the config is at least that slow), so it never counts as a best
(:func:`best_records`, ``apply_history_best``, ``--resume``).

Files are only ever appended to, one ``write`` per batch followed by flush + fsync. A line
cut short by an interrupted write is reported by :func:`load_records` and skipped, and the
next append starts on a fresh line so the damage never spreads.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import RecordsError, TuningError
from ..measure.result import ERROR_CLASSES, MeasureInput, MeasureResult

if TYPE_CHECKING:
    from ..search.tuner import Tuner
    from ..space.config_space import ConfigSpace

Record = dict[str, Any]


@dataclass(frozen=True)
class RecordProblem:
    """A line of a records file that could not be used."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@functools.cache
def versions() -> dict[str, str | None]:
    """Versions of tiletune and of the libraries that shape a measurement."""
    import tiletune

    out: dict[str, str | None] = {"tiletune": str(getattr(tiletune, "__version__", "0"))}
    for lib, dists in (("llvmlite", ("llvmlite",)), ("xgboost", ("xgboost", "xgboost-cpu"))):
        out[lib] = None
        for dist in dists:
            try:
                out[lib] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def make_record(inp: MeasureInput, res: MeasureResult, *, template: str = "",
                seed: int | None = None, tuner: str = "") -> Record:
    """The JSON-ready record of one measurement (``"cut": true`` only on a cut one)."""
    rec = {
        "workload": inp.workload_key, "template": template, "config": dict(inp.config),
        "index": int(inp.config_index), "costs": list(res.costs), "error": res.error,
        "message": res.message, "timestamp": res.timestamp, "all_cost": res.all_cost,
        "seed": seed, "tuner": tuner, "versions": versions(),
    }
    if res.cut:
        rec["cut"] = True
    return rec


def record_result(rec: Record) -> MeasureResult:
    """The :class:`MeasureResult` stored in a record."""
    return MeasureResult(costs=tuple(rec["costs"]), error=rec["error"],
                         message=rec.get("message", ""), timestamp=rec.get("timestamp", 0.0),
                         all_cost=rec.get("all_cost", 0.0), cut=bool(rec.get("cut", False)))


class RecordWriter:
    """Appends records to ``path``: one write + flush + fsync per batch, never a rewrite."""

    def __init__(self, path: str | os.PathLike[str], *, template: str = "",
                 seed: int | None = None, tuner: str = "") -> None:
        self.path = Path(path)
        self.template, self.seed, self.tuner = template, seed, tuner

    def write(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult],
              **overrides: Any) -> None:
        """Append one record per (input, result) pair."""
        if len(inputs) != len(results):
            raise RecordsError(f"{len(inputs)} inputs but {len(results)} results")
        meta = {"template": self.template, "seed": self.seed, "tuner": self.tuner} | overrides
        self.write_records([make_record(i, r, **meta) for i, r in zip(inputs, results)])

    def write_records(self, records: Iterable[Record]) -> None:
        """Append ready-made records (a single write, then flush and fsync)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not _ends_with_newline(self.path):
            text = "\n" + text  # isolate a partial line left by an interrupted write
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def callback(self, workload_key: str) -> Callable[[Tuner, list[int], list], None]:
        """A :meth:`Tuner.tune` callback that appends each measured batch."""
        def log(tuner: Tuner, indices: list[int], results: list[MeasureResult]) -> None:
            inputs = [MeasureInput(workload_key, i, tuner.space.get(i).to_json())
                      for i in indices]
            self.write(inputs, results, seed=tuner.seed,
                       tuner=self.tuner or type(tuner).__name__)
        return log


def _ends_with_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return True
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    except FileNotFoundError:
        return True


def _problem(rec: Any) -> str | None:
    """Why a parsed line is not a usable record (None if it is)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    for key, kind in (("workload", str), ("config", dict), ("costs", list)):
        if not isinstance(rec.get(key), kind):
            return f"field {key!r} missing or not a {kind.__name__}"
    if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in rec["costs"]):
        return "field 'costs' holds a non-number"
    err = rec.get("error")
    if err is not None and err not in ERROR_CLASSES:
        return f"unknown error class {err!r}"
    if err is None and not rec["costs"]:
        return "a successful record without costs"
    return None


def load_records(path: str | os.PathLike[str]) -> tuple[list[Record], list[RecordProblem]]:
    """Read a records file. Unusable lines (corrupt JSON, a line cut short, missing fields)
    are skipped and reported as problems, never fatal. A missing file is a RecordsError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecordsError(f"cannot read records file {path}: {e.strerror or e}") from e
    records: list[Record] = []
    problems: list[RecordProblem] = []
    lines = data.split(b"\n")
    for no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = no == len(lines)  # no newline after it: the write was interrupted
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            what = "truncated line (interrupted write?)" if last else "corrupt line"
            problems.append(RecordProblem(str(path), no, f"{what}: {e}"))
            continue
        reason = _problem(rec)
        if reason is None and last:
            reason = "last line has no newline (interrupted write?)"
            records.append(rec)  # complete JSON: keep it, but say so
            problems.append(RecordProblem(str(path), no, reason))
            continue
        if reason is not None:
            problems.append(RecordProblem(str(path), no, reason))
        else:
            records.append(rec)
    return records, problems


def record_cost(rec: Record) -> float:
    """Mean cost of a successful record, ``inf`` for a failure."""
    if rec.get("error") is not None or not rec.get("costs"):
        return math.inf
    return sum(rec["costs"]) / len(rec["costs"])


def usable_cost(rec: Record) -> float:
    """Mean cost of a full successful measurement; ``inf`` for a failure or a cut one (its
    cost is a bound, never a best)."""
    return math.inf if rec.get("cut") else record_cost(rec)


def best_records(records: Iterable[Record]) -> dict[str, Record]:
    """The fastest successful, uncut record of each workload."""
    best: dict[str, Record] = {}
    for rec in records:
        cost = usable_cost(rec)
        if math.isfinite(cost) and (rec["workload"] not in best
                                    or cost < record_cost(best[rec["workload"]])):
            best[rec["workload"]] = rec
    return best


def merge(paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str]
          ) -> tuple[int, list[RecordProblem]]:
    """Append to ``out`` the records of ``paths`` it does not hold yet (exact duplicates
    are dropped). Returns (records appended, problems met while reading)."""
    out = Path(out)
    problems: list[RecordProblem] = []
    seen: set[str] = set()
    if out.exists():
        existing, probs = load_records(out)
        problems += probs
        seen = {json.dumps(r, sort_keys=True) for r in existing}
    new: list[Record] = []
    for p in paths:
        if Path(p).resolve() == out.resolve():
            continue
        recs, probs = load_records(p)
        problems += probs
        for r in recs:
            key = json.dumps(r, sort_keys=True)
            if key not in seen:
                seen.add(key)
                new.append(r)
    RecordWriter(out).write_records(new)
    return len(new), problems


def measured_configs(records: Iterable[Record], workload_key: str, space: ConfigSpace
                     ) -> dict[int, MeasureResult]:
    """Index -> result of this workload's records, for ``Tuner.tune(resume_from=...)``.

    Configs are matched by knob values (not the stored index), so a template whose knobs
    were defined in another order still resumes correctly; records that no longer fit the
    space are skipped. The latest record of a config wins.
    """
    out: dict[int, MeasureResult] = {}
    for rec in records:
        if rec.get("workload") != workload_key:
            continue
        try:
            out[space.index_of(rec["config"])] = record_result(rec)
        except TuningError:
            continue
    return out
