"""Several ``tune`` processes on one records file measure each config once.

    shared = SharedRecords("r.jsonl", task.workload_key, task.space)
    todo, done, busy = shared.claim(indices)    # under the file lock
    ... measure todo, append its records ...
    done |= shared.wait_for(busy)               # results another process is measuring

Under the records file's ``flock`` (:func:`~.store.locked`), :meth:`SharedRecords.claim`
re-reads what other processes appended since the session started, answers configs already
measured from those records, skips configs another live process has claimed, and claims the
rest in a sidecar ``FILE.claims`` (one JSON line: workload, index, host, pid). A claim of a
process that has ended is void, so a killed tuner never blocks the others: its configs are
measured again by whoever needs them. :meth:`close` drops this process's claims and removes
the sidecar once no live claim is left.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import TuningError
from ..measure.result import MeasureResult
from .store import locked, record_problem, record_result

if TYPE_CHECKING:
    from ..space.config_space import ConfigSpace

#: Seconds between looks at the file while waiting for another process's results.
POLL = 0.2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedRecords:
    """This process's view of a records file shared with other ``tune`` processes."""

    def __init__(self, path: str | os.PathLike[str], workload_key: str, space: ConfigSpace,
                 ) -> None:
        self.path, self.key, self.space = Path(path), workload_key, space
        self.claims = self.path.with_name(self.path.name + ".claims")
        self.pid, self.host = os.getpid(), socket.gethostname()
        #: Records appended before this session are not read (``--resume`` reads them).
        self._offset = self.path.stat().st_size if self.path.exists() else 0
        self.known: dict[int, MeasureResult] = {}

    # -- under the lock -----------------------------------------------------------------------
    def _refresh(self) -> None:
        """Read the complete lines appended since the last look."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines
        self._offset += end
        for raw in data[:end].split(b"\n"):
            try:
                rec = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
            if record_problem(rec) is not None or rec.get("workload") != self.key:
                continue
            try:
                self.known[self.space.index_of(rec["config"])] = record_result(rec)
            except TuningError:
                continue

    def _live_claims(self) -> tuple[set[int], list[dict]]:
        """Indices of this workload claimed by other live processes; every live claim."""
        try:
            lines = self.claims.read_text().splitlines()
        except FileNotFoundError:
            return set(), []
        live, mine = [], set()
        for line in lines:
            try:
                c = json.loads(line)
                pid, host = int(c["pid"]), str(c["host"])
            except (ValueError, KeyError, TypeError):
                continue
            if host == self.host and not _alive(pid):
                continue
            live.append(c)
            if c.get("workload") == self.key and pid != self.pid:
                mine.add(int(c["index"]))
        return mine, live

    def claim(self, indices: Sequence[int]
              ) -> tuple[list[int], dict[int, MeasureResult], list[int]]:
        """(to measure here, already measured elsewhere, being measured elsewhere)."""
        with locked(self.path):
            self._refresh()
            others, _ = self._live_claims()
            done = {i: self.known[i] for i in indices if i in self.known}
            busy = [i for i in indices if i not in done and i in others]
            todo = [i for i in indices if i not in done and i not in others]
            if todo:
                with open(self.claims, "a", encoding="utf-8") as f:
                    f.write("".join(json.dumps({"workload": self.key, "index": int(i),
                                                "host": self.host, "pid": self.pid}) + "\n"
                                    for i in todo))
        return todo, done, busy

    def wait_for(self, busy: Iterable[int], timeout: float = 600.0
                 ) -> dict[int, MeasureResult]:
        """Results of ``busy`` configs once their claimers have recorded them; configs whose
        claimer ended without a record (or after ``timeout``) are left out."""
        wanted, got = set(busy), {}
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            with locked(self.path):
                self._refresh()
                claimed, _ = self._live_claims()
            for i in list(wanted):
                if i in self.known:
                    got[i] = self.known[i]
                    wanted.discard(i)
                elif i not in claimed:
                    wanted.discard(i)  # its claimer is gone: the caller measures it
            if wanted:
                time.sleep(POLL)
        return got

    def close(self) -> None:
        """Drop this process's claims (and the sidecar when no live claim is left)."""
        if not self.claims.exists():
            return
        with locked(self.path):
            _, live = self._live_claims()
            rest = [c for c in live if int(c["pid"]) != self.pid or c["host"] != self.host]
            if rest:
                self.claims.write_text("".join(json.dumps(c) + "\n" for c in rest))
            else:
                self.claims.unlink(missing_ok=True)
