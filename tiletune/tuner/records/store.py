"""Tuning records: append-only JSON lines, one measurement per line.

A line::

    {"workload": "conv2d_NCHWc|1,64,56,56|...", "template": "conv2d_NCHWc",
     "config": {"tile_ic": [-1, 16], ...}, "index": 123, "costs": [1.2e-4],
     "error": null, "message": "", "timestamp": 1700000000.0, "all_cost": 0.8,
     "seed": 0, "tuner": "XGBTuner", "versions": {"tiletune": "0.1.0", ...},
     "format": 2, "threads": 2,
     "host": {"name": "lab-3", "cpu": "znver3", "features": "3f2a9c1d"}}

``format`` is the record format version (1: before ``host``/``threads``); ``host`` says
where it was measured: host name, LLVM CPU name and a short hash of the CPU features;
``threads`` is the kernel's thread count. A best is only taken from records of the same
CPU and thread count as the target (:func:`same_machine`); others are reported, not used.

A measurement stopped by the cutoff after one timed repeat also has ``"cut": true``: its
cost is only a bound (the config is at least that slow), so it never counts as a best
(:func:`best_records`, ``apply_history_best``, ``--resume``).

Files are only ever appended to, one ``write`` per batch followed by flush + fsync, under an
exclusive ``fcntl.flock`` (:func:`locked`), so several processes can share one file. A line
cut short by an interrupted write is reported by :func:`load_records` and skipped, and the
next append starts on a fresh line so the damage never spreads. Every line read goes
through one strict validator (:func:`record_problem`): a bad line is skipped with a message,
it never crashes a command.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
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

#: Version of the record format written by this tiletune.
FORMAT_VERSION = 2


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


@functools.cache
def host_info() -> dict[str, str]:
    """This machine: host name, LLVM CPU name and a short hash of its CPU features."""
    try:
        import llvmlite.binding as llvm

        cpu = llvm.get_host_cpu_name()
        feats = sorted(f for f, on in llvm.get_host_cpu_features().items() if on)
    except Exception:  # noqa: BLE001 - no LLVM: still a valid record, CPU unknown
        cpu, feats = "unknown", []
    digest = hashlib.sha256(",".join(feats).encode()).hexdigest()[:8]
    return {"name": socket.gethostname(), "cpu": cpu, "features": digest}


def default_threads() -> int:
    """The kernel thread count the runtime uses (``TILETUNE_NUM_THREADS`` or the cores)."""
    from ...runtime.threads import default_num_threads

    return default_num_threads()


def make_record(inp: MeasureInput, res: MeasureResult, *, template: str = "",
                seed: int | None = None, tuner: str = "", threads: int | None = None,
                host: dict[str, str] | None = None) -> Record:
    """The JSON-ready record of one measurement (``host``: where it was measured, default
    this machine; ``"cut": true`` only on a cut one)."""
    rec = {
        "workload": inp.workload_key, "template": template, "config": dict(inp.config),
        "index": int(inp.config_index), "costs": list(res.costs), "error": res.error,
        "message": res.message, "timestamp": res.timestamp, "all_cost": res.all_cost,
        "seed": seed, "tuner": tuner, "versions": versions(), "format": FORMAT_VERSION,
        "threads": int(threads) if threads is not None else default_threads(),
        "host": dict(host or host_info()),
    }
    if res.cut:
        rec["cut"] = True
    return rec


def same_machine(rec: Record, cpu: str | None = None, threads: int | None = None) -> bool:
    """True when ``rec`` was measured on a ``cpu`` CPU (default this one) with ``threads``
    kernel threads (default the runtime's); format-1 records, which do not say, match."""
    host, n = rec.get("host"), rec.get("threads")
    cpu = cpu or host_info()["cpu"]
    threads = threads or default_threads()
    if isinstance(host, dict) and host.get("cpu") not in (None, cpu):
        return False
    return n is None or n == threads


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def record_result(rec: Record) -> MeasureResult:
    """The :class:`MeasureResult` stored in a (validated) record."""
    return MeasureResult(costs=tuple(rec["costs"]), error=rec.get("error"),
                         message=rec.get("message", ""), timestamp=rec.get("timestamp", 0.0),
                         all_cost=rec.get("all_cost", 0.0), cut=bool(rec.get("cut", False)))


class RecordWriter:
    """Appends records to ``path``: one write + flush + fsync per batch, never a rewrite."""

    def __init__(self, path: str | os.PathLike[str], *, template: str = "",
                 seed: int | None = None, tuner: str = "", threads: int | None = None
                 ) -> None:
        self.path = Path(path)
        self.template, self.seed, self.tuner, self.threads = template, seed, tuner, threads

    def write(self, inputs: Sequence[MeasureInput], results: Sequence[MeasureResult],
              *, each: Sequence[dict[str, Any]] | None = None, **overrides: Any) -> None:
        """Append one record per (input, result) pair; ``each``: per-record overrides
        (e.g. the ``host`` and ``threads`` of a remote measurement)."""
        if len(inputs) != len(results):
            raise RecordsError(f"{len(inputs)} inputs but {len(results)} results")
        meta = {"template": self.template, "seed": self.seed, "tuner": self.tuner,
                "threads": self.threads} | overrides
        extra = list(each) if each is not None else [{}] * len(inputs)
        self.write_records([make_record(i, r, **(meta | x))
                            for i, r, x in zip(inputs, results, extra)])

    def write_records(self, records: Iterable[Record]) -> None:
        """Append ready-made records (a single write under the file lock, then flush and
        fsync)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        if not text:
            return
        with locked(self.path):
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


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


_OPTIONAL: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("message", lambda v: isinstance(v, str), "a string"),
    ("timestamp", lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    ("all_cost", lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    ("index", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
     "an integer >= 0"),
    ("template", lambda v: isinstance(v, str), "a string"),
    ("tuner", lambda v: isinstance(v, str), "a string"),
    ("seed", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
     "an integer or null"),
    ("versions", lambda v: isinstance(v, dict), "an object"),
    ("format", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
     "an integer >= 1"),
    ("threads", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
     "an integer >= 1"),
    ("host", lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
     "an object of strings"),
)


def record_problem(rec: Any) -> str | None:
    """Why a parsed line is not a usable record (None if it is): the one strict validator.

    Required: ``workload`` (string), ``config`` (object with string keys), ``costs`` (a list
    of finite positive numbers, at least one when ``error`` is null), ``error`` (null or a
    known error class). Optional fields must have their type when present."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    for key, kind in (("workload", str), ("config", dict), ("costs", list)):
        if not isinstance(rec.get(key), kind):
            return f"field {key!r} missing or not a {kind.__name__}"
    if not all(isinstance(k, str) for k in rec["config"]):
        return "field 'config' has a non-string key"
    if not all(_number(c) and c > 0 for c in rec["costs"]):
        return f"field 'costs' must hold finite positive numbers, got {rec['costs']!r}"[:200]
    err = rec.get("error")
    if err is not None and err not in ERROR_CLASSES:
        return f"unknown error class {err!r}"[:200]
    if err is None and not rec["costs"]:
        return "a successful record without costs"
    for key, ok, what in _OPTIONAL:
        if key in rec and not ok(rec[key]):
            return f"field {key!r} must be {what}, got {rec[key]!r}"[:200]
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
        reason = record_problem(rec)
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


def best_records(records: Iterable[Record], *, fits: Callable[[Record], bool] | None = None,
                 machine: Callable[[Record], bool] | None = None,
                 others: list[Record] | None = None) -> dict[str, Record]:
    """The fastest successful, uncut record of each workload. ``fits``: skip records whose
    config is not in the current space; ``machine``: only records it accepts (e.g.
    :func:`same_machine`), the rejected ones are appended to ``others``."""
    best: dict[str, Record] = {}
    ranked = sorted((r for r in records if math.isfinite(usable_cost(r))), key=record_cost)
    for rec in ranked:
        if machine is not None and not machine(rec):
            if others is not None:
                others.append(rec)
            continue
        if rec["workload"] not in best and (fits is None or fits(rec)):
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
