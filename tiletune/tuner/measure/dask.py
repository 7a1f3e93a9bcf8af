"""``DaskMeasurer``: build and measure candidates on a Dask cluster.

    dask scheduler                              # on one machine
    dask worker tcp://sched:8786 --nthreads 2   # on each machine with tiletune installed
    tiletune tune --workload resnet18 --cluster tcp://sched:8786   # or TILETUNE_CLUSTER

It has :class:`~.local.LocalMeasurer`'s interface (``DaskMeasurer(task, option, seed,
address=...)``, a context manager, ``measure(indices) -> [MeasureResult]``). Every index of
a batch is one Dask task whose argument and result are JSON text (the task's JSON, the
options, the seed, the index; the payload and the measuring host), submitted at once so
every worker thread of every host is kept busy. On the worker, a
:class:`~.local.LocalMeasurer` with one worker process (kept per Dask thread and task)
builds the candidate, so builds run in parallel, crashes and hangs stay isolated and time
out; the run itself waits for :class:`HostTimingLock`, a ``flock`` on a file of the host,
so one timing at a time per machine, whichever Dask worker process times.

Faults: a Dask worker lost mid-batch has its tasks re-run elsewhere by the scheduler (each
index still yields exactly one result, recorded once by the tuner); a lost scheduler raises
:class:`~tiletune.errors.TuningError` ("lost the Dask cluster"), after which the records
already written are intact and ``--resume`` continues. Dask is imported only here.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ...errors import TuningError
from ..templates.task import Task
from .result import MeasureResult

#: Environment variable naming the scheduler when ``--cluster`` is not given.
CLUSTER_ENV = "TILETUNE_CLUSTER"
#: Seconds to wait for the scheduler when connecting.
CONNECT_TIMEOUT = 30.0


class HostTimingLock:
    """One timing at a time on this machine: an exclusive ``flock`` on a file in the temp
    directory, shared by every process of the user (Dask workers, local tuners)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.path.join(tempfile.gettempdir(),
                                         f"tiletune-timing-{os.getuid()}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the lock


# -- the worker side --------------------------------------------------------------------------
_LOCAL = threading.local()


def _measurer_for(job: dict[str, Any]) -> Any:
    """This Dask thread's LocalMeasurer of the job's task (one kept; a new task replaces it)."""
    from .local import LocalMeasurer, MeasureOption

    key = json.dumps([job["task"], job["options"], job["seed"]], sort_keys=True)
    cached = getattr(_LOCAL, "measurer", None)
    if cached is not None and cached[0] == key and not cached[1]._closed:
        return cached[1]
    if cached is not None:
        cached[1].close()
    import multiprocessing as mp

    # A Dask nanny marks its worker process daemonic, and multiprocessing refuses children
    # of a daemon; ours die with their parent anyway (measure/worker.py: PDEATHSIG).
    mp.current_process()._config["daemon"] = False
    option = MeasureOption(**(job["options"] | {"jobs": 1}))
    m = LocalMeasurer(Task.from_json(job["task"]), option, seed=int(job["seed"]),
                      timing_lock=HostTimingLock())
    _LOCAL.measurer = (key, m)
    return m


def run_job(job_text: str) -> str:
    """A Dask task: measure one index; JSON in (see :meth:`DaskMeasurer.job`), JSON out."""
    from ..records.store import host_info

    job = json.loads(job_text)
    m = _measurer_for(job)
    best = float(job.get("best") or 0.0)
    if best > 0 and (m.best_cost == 0 or best < m.best_cost):
        m.best_cost = best  # the cut-off compares with the best of the whole cluster
    (r,) = m([int(job["index"])])
    return json.dumps({"costs": list(r.costs), "error": r.error, "message": r.message,
                       "timestamp": r.timestamp, "all_cost": r.all_cost,
                       "traceback": r.traceback, "host": host_info(),
                       "threads": m.option.threads})


# -- the tuner side ---------------------------------------------------------------------------
class DaskMeasurer:
    """Measures config indices of ``task`` on the Dask cluster at ``address``."""

    def __init__(self, task: Task, option: Any = None, seed: int = 0, *,
                 address: str | None = None, client: Any = None) -> None:
        from .local import MeasureOption

        address = address or os.environ.get(CLUSTER_ENV)
        if client is None and not address:
            raise TuningError(f"no Dask cluster: give --cluster tcp://HOST:8786 or set "
                              f"{CLUSTER_ENV}")
        self.task, self.option, self.seed = task, option or MeasureOption(), seed
        self.address = address or str(getattr(client, "scheduler", ""))
        try:
            from distributed import Client
        except ImportError as e:  # pragma: no cover - declared dependency
            raise TuningError("--cluster needs Dask: pip install distributed") from e
        self._own_client = client is None
        try:
            self.client = client or Client(address, timeout=CONNECT_TIMEOUT,
                                           set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise TuningError(f"cannot reach the Dask scheduler at {address}: {e}") from e
        self._task_json = task.to_json()
        self._options = asdict(self.option)
        self.best_cost = 0.0
        self.n_cut = self.n_respawns = 0
        self.reference_note = ""
        self.timings: list[tuple[float, float, float, float]] = []
        #: index -> the ``host`` record field of its last measurement (records are stamped
        #: with the measuring machine, not the tuner's).
        self.hosts: dict[int, dict[str, str]] = {}
        self.threads: dict[int, int] = {}
        self._closed = False
        self._run = uuid.uuid4().hex[:12]

    def job(self, index: int) -> str:
        """The task JSON of one index."""
        return json.dumps({"task": self._task_json, "options": self._options,
                           "seed": self.seed, "index": int(index), "best": self.best_cost})

    def workers(self) -> int:
        """Worker threads of the cluster (the batch size should keep them all busy)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - asked before the cluster answered
            return 1

    def __call__(self, indices: Sequence[int]) -> list[MeasureResult]:
        if self._closed:
            raise TuningError("this DaskMeasurer is closed")
        order = [int(i) for i in indices]
        if len(set(order)) != len(order):
            raise TuningError("measure got the same config index twice in one batch")
        futures = [self.client.submit(run_job, self.job(i), pure=False,
                                      key=f"tiletune-{self._run}-{i}") for i in order]
        out: list[MeasureResult] = []
        try:
            texts = self.client.gather(futures)
        except KeyboardInterrupt:
            self.client.cancel(futures)
            raise
        except Exception as e:  # noqa: BLE001 - classified below
            self.client.cancel(futures)
            if type(e).__name__ == "KilledWorker":  # the candidate kept killing workers
                raise TuningError(f"a measurement job kept killing Dask workers: {e}") from e
            raise TuningError(f"lost the Dask cluster at {self.address} ({type(e).__name__}: "
                              f"{e}); the records written so far are intact: re-run with "
                              "--resume to continue") from e
        for i, text in zip(order, texts):
            p = json.loads(text)
            self.hosts[i], self.threads[i] = p.pop("host"), int(p.pop("threads"))
            r = MeasureResult(costs=tuple(p["costs"]), error=p["error"], message=p["message"],
                              timestamp=p["timestamp"], all_cost=p["all_cost"],
                              traceback=p.get("traceback", ""))
            if r.ok and (self.best_cost == 0 or r.mean < self.best_cost):
                self.best_cost = r.mean
            out.append(r)
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._own_client:
            try:
                self.client.close(timeout=5)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass

    def __enter__(self) -> DaskMeasurer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
