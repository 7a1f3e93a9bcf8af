"""The measurement harness: build and time candidate configs in worker processes.

    option = MeasureOption(number=4, repeat=3, jobs=2)
    with LocalMeasurer(task, option, seed=0) as measure:
        tuner.tune(measure, n_trial=200, flop=task.flop)     # measure(indices) -> results

Each of ``jobs`` persistent workers (``spawn`` start method: nothing but the task's JSON,
the options, the seeded inputs and the expected outputs is sent) builds candidates
(template -> lower -> LLVM) in parallel. Running is serialised by a timing token the parent
hands to one worker at a time, so timings never overlap while other workers keep compiling.
Every candidate's outputs are compared with the task's reference (computed once, from the
seeded inputs, in this process).

Failures never stop the tuning; each gets an error class and a one-line message, and the
traceback is kept in ``MeasureResult.traceback``:

=================== =======================================================================
InstantiationError  the template rejected the config (ScheduleError, cfg.raise_error, ...)
BuildError          lowering or code generation raised
BuildTimeout        building took longer than ``build_timeout`` (the worker is replaced)
RuntimeError        calling or timing the kernel raised (bad arguments, ...)
RunTimeout          running took longer than ``timeout`` (the worker is replaced)
Crash               the worker died (segfault, abort, exit): signal or exit code given
WrongAnswer         outputs differ from the reference (max error in the message)
=================== =======================================================================
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from ...errors import TuningError
from ..templates.task import Task
from .result import MeasureResult
from .worker import main as worker_main

#: Seconds a new worker may take to start (spawn + imports + loading the task).
START_TIMEOUT = 120.0


@dataclass
class MeasureOption:
    """How candidates are built and timed (AutoTVM's LocalBuilder + LocalRunner options).

    ``number`` calls per repeat, ``repeat`` timed repeats (``number`` grows until a repeat
    lasts ``min_repeat_ms``; None: the host's minimum from its clock step and call overhead,
    :func:`~tiletune.tuner.measure.host_timing.host_min_repeat_ms`, 1 ms on the Zen 3 host
    of this session: without it a microsecond kernel's 4-call repeat lasts a few
    microseconds and one interrupt can double it); ``timeout`` limits running (seconds, from
    when the worker gets the timing token), ``build_timeout`` building; ``jobs`` worker
    processes; ``threads`` kernel threads (default: what compiled kernels use,
    ``TILETUNE_NUM_THREADS`` or the core count, so the records describe the kernels that will
    run); ``flush_cache`` evicts the caches before each repeat; ``check_correctness``
    compares outputs with the reference (relative tolerance ``rtol``).
    ``max_repeat_ms``: when one call already lasts long enough, ``number`` is lowered (to
    no less than 1) so a repeat lasts about this long (None: always ``number`` calls); slow
    candidates then cost 1 + 1 + ``repeat`` calls instead of 2 + ``number * repeat``.
    ``cutoff``: a candidate whose first timed repeat (warm, ``min_repeat_ms`` long) is more
    than ``cutoff`` times slower than the best mean of a full measurement so far is not
    timed further: it is reported with that one repeat and ``MeasureResult.cut`` set, never
    becomes a best, and is marked ``"cut": true`` in the records (None: time everything).
    The cold first call (correctness check) never decides a cut: at microsecond scale it is
    dominated by the Python call and cold caches (a 17 us kernel's first call took ~100 us).
    The cutoff never applies to :meth:`LocalMeasurer.measure_full` (the default config and
    the confirmation rounds).
    ``pause_builds``: while one worker times its candidate, the other workers' builds are
    paused (SIGSTOP, then SIGCONT; their build timeouts are extended accordingly). An LLVM
    compile on the second core of a 2-core machine made 1-thread timings 2-4x slower and
    noisy (ResNet-18 layer 12's default config: 4-6 ms in the workers against 1.6 ms in the
    main process, and 1.6 ms again with the builds paused); timing a candidate takes
    tens of milliseconds against about a second of compiling, so the pauses cost a few
    percent of throughput.
    ``opt_level`` / ``codegen_opt``: LLVM IR-pipeline and code-generator levels used for
    candidates (see ``backends/llvm``). Measured on 13 configs of a ResNet-18 conv layer:
    O2/O2 compiles with ~25% less CPU than O3/O3 and its kernels run within 2% (geometric
    mean) of the O3 ones; the light O1 pipeline compiles 2x faster still, but its kernels
    are 4-7% slower on average and up to 37% on some configs (it would distort the
    ranking); pipeline O0 gives 2-2.5x slower code.
    """

    number: int = 4
    repeat: int = 3
    min_repeat_ms: float | None = None
    timeout: float = 10.0
    build_timeout: float = 30.0
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = field(default_factory=lambda: _runtime_threads())
    flush_cache: bool = False
    check_correctness: bool = True
    rtol: float = 1e-3
    max_repeat_ms: float | None = 25.0
    cutoff: float | None = 5.0
    pause_builds: bool = True
    opt_level: int = 2
    codegen_opt: int = 2

    def __post_init__(self) -> None:
        if self.number < 1 or self.repeat < 1 or self.jobs < 1 or self.threads < 1:
            raise TuningError(f"number, repeat, jobs and threads must be >= 1: {self}")
        if self.timeout <= 0 or self.build_timeout <= 0:
            raise TuningError(f"timeouts must be > 0: {self}")
        if self.min_repeat_ms is not None and self.min_repeat_ms < 0:
            raise TuningError(f"min_repeat_ms must be >= 0 (or None: the host's), got "
                              f"{self.min_repeat_ms}")

    def resolved_min_repeat_ms(self) -> float:
        """``min_repeat_ms``, or the host's minimum when it is None."""
        if self.min_repeat_ms is not None:
            return float(self.min_repeat_ms)
        from .host_timing import host_min_repeat_ms

        return host_min_repeat_ms()


def _runtime_threads() -> int:
    from ...runtime.threads import default_num_threads

    return default_num_threads()


class _Worker:
    """Parent-side state of one worker process."""

    def __init__(self, proc: Any, conn: Any, crash_log: str, crash_fd: int) -> None:
        self.proc, self.conn, self.crash_log = proc, conn, crash_log
        self.crash_fd = crash_fd  # read end of the crash log, kept after the file is unlinked
        self.started = time.monotonic()
        self.alive_ok = False  # "hello" received
        self.index: int | None = None  # candidate being measured
        self.phase = ""  # "build" | "wait" | "run"
        self.deadline = float("inf")
        self.t0 = 0.0
        self.paused_at: float | None = None  # SIGSTOPped while another worker times


class LocalMeasurer:
    """Measures config indices of ``task`` in persistent worker processes.

    A context manager; ``close()`` stops the workers. ``seed`` fixes the random inputs.
    ``reference_note`` says why outputs are not checked, when they are not.
    """

    def __init__(self, task: Task, option: MeasureOption | None = None, seed: int = 0, *,
                 timing_lock: Any = None) -> None:
        self.task, self.option, self.seed = task, option or MeasureOption(), seed
        #: Held while a candidate runs (``acquire()``/``release()``): e.g. a lock shared by
        #: every measurer of the machine (``measure.dask.HostTimingLock``), so timings never
        #: overlap across processes either.
        self.timing_lock = timing_lock
        self._lock_held = False
        self._ctx = mp.get_context("spawn")
        self._opts = asdict(self.option)
        self._opts["min_repeat_ms"] = self.min_repeat_ms = self.option.resolved_min_repeat_ms()
        self._task_json = task.to_json()
        self.inputs = task.make_inputs(seed)
        self.expected: list[np.ndarray] | None = None
        self.reference_note = ""
        if self.option.check_correctness:
            self.expected = task.reference(self.inputs)
            if self.expected is None:
                self.reference_note = (f"no reference for {task.name}: outputs are not checked "
                                       "(register reference= with the template)")
        self._workers: list[_Worker] = []
        self._closed = False
        #: Per-run directory of the workers' crash logs, removed by close(). On Linux each
        #: log is unlinked at once and the worker opens it as /proc/<parent>/fd/<fd>
        #: (elsewhere: unlinked once the worker has opened it), so even a SIGKILLed tuner
        #: leaves at most this empty directory behind.
        self.run_dir = tempfile.mkdtemp(prefix="tiletune-run-")
        self.n_respawns = 0
        self.n_pauses = 0  # builds stopped while another worker timed
        self._full = False  # inside measure_full: the cutoff is off
        #: Fastest mean cost of a full measurement so far (the reference of ``cutoff``).
        self.best_cost = 0.0
        #: Candidates reported with their first timed repeat only (``cutoff``).
        self.n_cut = 0
        #: Per successful candidate, seconds inside the worker: (instantiate, build, run,
        #: instantiate + build CPU time).
        self.timings: list[tuple[float, float, float, float]] = []
        for _ in range(self.option.jobs):
            self._workers.append(self._spawn())

    # -- worker life cycle ------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        fd, crash_log = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=self.run_dir)
        proc_fd = f"/proc/{os.getpid()}/fd/{fd}"
        if os.path.exists(proc_fd):  # Linux: the worker reopens it through our descriptor,
            os.unlink(crash_log)  # so the log never has a name a SIGKILL could leave behind
            crash_log = proc_fd
        proc = self._ctx.Process(
            target=worker_main, daemon=True, name=f"tiletune-measure-{self.task.name}",
            args=(child, self._task_json, self._opts, self.inputs, self.expected, crash_log,
                  os.getpid()))
        try:
            with _stop_signals_blocked():
                proc.start()
        except BaseException:
            os.close(fd)
            raise
        child.close()
        return _Worker(proc, parent, crash_log, fd)

    # -- pausing builds while a worker times -----------------------------------------------
    def _isolate(self, holder: _Worker | None) -> None:
        """Pause every other building worker while ``holder`` times (None: resume all)."""
        can_pause = self.option.pause_builds and hasattr(signal, "SIGSTOP")
        now = time.monotonic()
        for w in self._workers:
            stop = (can_pause and holder is not None and w is not holder
                    and w.phase == "build" and w.proc.is_alive())
            if stop and w.paused_at is None:
                if _signal(w, getattr(signal, "SIGSTOP", None)):
                    w.paused_at = now
                    self.n_pauses += 1
            elif not stop and w.paused_at is not None:
                self._resume(w, now)

    def _resume(self, w: _Worker, now: float) -> None:
        _signal(w, getattr(signal, "SIGCONT", None))
        if w.paused_at is not None:
            w.deadline += now - w.paused_at  # time stopped is not build time
        w.paused_at = None

    def _kill(self, w: _Worker) -> None:
        if w.paused_at is not None:
            self._resume(w, time.monotonic())
        _signal(w, getattr(signal, "SIGCONT", None))  # never leave a worker stopped
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)
        w.conn.close()
        if not w.crash_log.startswith("/proc/"):
            with contextlib.suppress(OSError):
                os.unlink(w.crash_log)
        with contextlib.suppress(OSError):
            os.close(w.crash_fd)
        w.crash_fd = -1

    def _replace(self, w: _Worker) -> None:
        self._kill(w)
        self._workers[self._workers.index(w)] = self._spawn()
        self.n_respawns += 1

    # -- measuring --------------------------------------------------------------------------
    def measure_full(self, indices: Sequence[int]) -> list[MeasureResult]:
        """Measure every repeat of each index, whatever the cutoff (the default config and
        the confirmation rounds: they must be full measurements). Goes through
        ``self(indices)``, so a subclass wrapping ``__call__`` wraps this too."""
        self._full = True
        try:
            return self(indices)
        finally:
            self._full = False

    def __call__(self, indices: Sequence[int]) -> list[MeasureResult]:
        """Measure each index; results in the same order. Never raises for a bad config.
        Inside :meth:`measure_full` no candidate is cut (see :class:`MeasureOption`)."""
        cutoff = not self._full
        if self._closed:
            raise TuningError("this LocalMeasurer is closed")
        todo = deque(int(i) for i in indices)
        results: dict[int, MeasureResult] = {}
        order = [int(i) for i in indices]
        if len(set(order)) != len(order):
            raise TuningError("measure got the same config index twice in one batch")
        waiting: deque[_Worker] = deque()  # built, want the token
        holder: _Worker | None = None
        try:
            while len(results) < len(order):
                now = time.monotonic()
                for w in list(self._workers):  # hand out work
                    if w.alive_ok and w.index is None and todo:
                        self._hand_out(w, todo, now)
                if holder is None and waiting:  # hand out the timing token
                    if self.timing_lock is not None and not self._lock_held:
                        self.timing_lock.acquire()
                        self._lock_held = True
                    holder = waiting.popleft()
                    holder.phase = "run"
                    self._isolate(holder)  # other builds stop before the timing starts
                    holder.deadline = time.monotonic() + self.option.timeout
                    with contextlib.suppress(OSError):  # dead: _poll reports the crash
                        holder.conn.send(("go", holder.index,
                                          self.best_cost if cutoff else 0.0))
                self._isolate(holder)  # also builds handed out above; resumes when done
                timeout = min((w.deadline for w in self._workers if w.paused_at is None),
                              default=1.0) - time.monotonic()
                objs = [w.conn for w in self._workers] + [w.proc.sentinel for w in self._workers]
                ready = set(wait(objs, timeout=max(0.0, min(timeout, 1.0))))
                for w in list(self._workers):
                    if self._poll(w, ready, results, waiting) and holder is w:
                        holder = None
                        self._release_timing_lock()
        except BaseException:
            # interrupted (Ctrl-C, a fatal worker error): no candidate may stay in flight
            for w in list(self._workers):
                if w.index is not None and not self._closed:
                    self._replace(w)
            raise
        finally:
            self._release_timing_lock()
            if not self._closed:
                self._isolate(None)
        return [results[i] for i in order]

    def _release_timing_lock(self) -> None:
        if self._lock_held:
            self._lock_held = False
            self.timing_lock.release()

    def _hand_out(self, w: _Worker, todo: deque[int], now: float) -> None:
        """Send ``w`` the next index; a worker that died while idle (between batches, or
        killed from outside) is replaced and the index goes back to the front of the queue,
        so nothing is lost and no Crash is blamed on a config it never saw."""
        index = todo.popleft()
        try:
            if not w.proc.is_alive():
                raise BrokenPipeError("worker is gone")
            w.conn.send(("measure", index))
        except (OSError, ValueError):
            todo.appendleft(index)
            self._replace(w)
            return
        w.index, w.phase, w.t0 = index, "build", now
        w.deadline = now + self.option.build_timeout

    def _poll(self, w: _Worker, ready: set, results: dict[int, MeasureResult],
              waiting: deque[_Worker]) -> bool:
        """Handle messages, death and timeouts of ``w``; True when it gave up the token."""
        if w.conn in ready or w.proc.sentinel in ready:
            try:
                while w.conn.poll():
                    msg = w.conn.recv()
                    if msg[0] == "hello":
                        w.alive_ok = True
                        if not w.crash_log.startswith("/proc/"):  # it holds the log now
                            with contextlib.suppress(OSError):
                                os.unlink(w.crash_log)
                    elif msg[0] == "fatal":
                        self.close()
                        raise TuningError(f"measurement worker cannot load task "
                                          f"{self.task.workload_key}: {msg[1]}")
                    elif msg[0] == "ready":
                        w.phase, w.deadline = "wait", float("inf")
                        waiting.append(w)
                    elif msg[0] == "result":
                        results[w.index] = self._result(msg[2], w)
                        had_token = w.phase == "run"
                        w.index, w.phase, w.deadline = None, "", float("inf")
                        return had_token
            except (EOFError, OSError):
                pass
        if not w.proc.is_alive():
            return self._died(w, results, waiting)
        now = time.monotonic()
        if not w.alive_ok and now - w.started > START_TIMEOUT:
            self.close()
            raise TuningError(f"a measurement worker did not start within {START_TIMEOUT:.0f} s")
        if w.index is not None and w.paused_at is None and now > w.deadline:
            kind = "RunTimeout" if w.phase == "run" else "BuildTimeout"
            limit = self.option.timeout if w.phase == "run" else self.option.build_timeout
            what = "running" if w.phase == "run" else "building"
            results[w.index] = MeasureResult.failure(
                kind, f"{what} config {w.index} took longer than {limit:g} s; worker killed",
                all_cost=now - w.t0)
            had_token = w.phase == "run"
            self._replace(w)
            return had_token
        return False

    def _died(self, w: _Worker, results: dict[int, MeasureResult],
              waiting: deque[_Worker]) -> bool:
        code = w.proc.exitcode
        if w.index is None:
            if not w.alive_ok:
                self.close()
                raise TuningError(
                    f"a measurement worker exited during start-up ({_exit(code)}); workers "
                    "use the spawn start method, so a script that measures must guard its "
                    "entry point with `if __name__ == \"__main__\":`")
            self._replace(w)
            return False
        stage = {"build": "building", "wait": "after building", "run": "running"}[w.phase]
        results[w.index] = MeasureResult.failure(
            "Crash", f"worker {_exit(code)} while {stage} config {w.index}",
            all_cost=time.monotonic() - w.t0, traceback=_read(w.crash_fd))
        had_token = w.phase == "run"
        if w in waiting:
            waiting.remove(w)
        self._replace(w)
        return had_token

    def _result(self, p: dict[str, Any], w: _Worker) -> MeasureResult:
        cost = time.monotonic() - w.t0
        if p.get("error") is None:
            self.timings.append((p["instantiate_time"], p["build_time"], p["run_time"],
                                 p["build_cpu"]))
            res = MeasureResult.success(p["costs"], all_cost=cost, cut=bool(p.get("cut")))
            self.n_cut += res.cut
            if res.usable and (self.best_cost == 0 or res.mean < self.best_cost):
                self.best_cost = res.mean
            return res
        return MeasureResult.failure(p["error"], p.get("message", ""), all_cost=cost,
                                     traceback=p.get("traceback", ""))

    # -- life cycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (politely, then by force)."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if w.paused_at is not None:
                self._resume(w, time.monotonic())
            try:
                w.conn.send(("stop",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        try:
            for w in self._workers:
                w.proc.join(max(0.0, deadline - time.monotonic()))
                self._kill(w)
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> LocalMeasurer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


#: Signals a worker must never act on: the parent handles them (Ctrl-C reaches the whole
#: process group; SIGTERM/SIGHUP may too) and stops the workers itself.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))


@contextlib.contextmanager
def _stop_signals_blocked() -> Any:
    """Start child processes with :data:`STOP_SIGNALS` blocked (the mask survives fork and
    exec); the worker ignores them and only then unblocks them, so a Ctrl-C sent to the
    process group during its start-up is discarded in the child and cannot print a
    traceback there. In this process a signal that arrives meanwhile stays pending and is
    delivered when the block ends.

    The parent's handlers are left alone: an earlier version set SIGINT to SIG_IGN here
    while blocked, and POSIX discards a pending signal whose action becomes SIG_IGN, so a
    Ctrl-C landing between the two calls (a worker is spawned at start and after every
    timeout or crash) was lost and the tuner ran on to its last trial."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _signal(w: _Worker, sig: int | None) -> bool:
    """Send ``sig`` to a worker; False if it is gone (or the platform lacks the signal)."""
    if sig is None or w.proc.pid is None:
        return False
    try:
        os.kill(w.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _read(fd: int, limit: int = 4000) -> str:
    """The end of a worker's crash log (read through the parent's descriptor: the file is
    unlinked), without faulthandler's trailing list of every loaded extension module (with
    NumPy, SciPy and scikit-learn loaded it is longer than ``limit`` and would push the
    stack out)."""
    if fd < 0:
        return ""
    chunks, offset = [], 0
    try:
        while chunk := os.pread(fd, 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError:
        return ""
    text = b"".join(chunks).decode(errors="replace")
    head, sep, _ = text.partition("\nExtension modules:")
    return (head + "\n" if sep else text)[-limit:]


def _exit(code: int | None) -> str:
    if code is None:
        return "died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} ({-code})"
    return f"exited with code {code}"
