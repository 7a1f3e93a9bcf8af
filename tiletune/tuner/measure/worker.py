"""The worker-process side of :class:`~tiletune.tuner.measure.local.LocalMeasurer`.

A worker is started with the ``spawn`` method and talks to the parent over one pipe::

    worker -> parent   ("hello", pid)                 ready to take candidates
                       ("fatal", message)             cannot load the task; exits
    parent -> worker   ("measure", index)             instantiate + lower + LLVM
    worker -> parent   ("ready", index)               built; waiting for the timing token
                       ("result", index, payload)     failed before running
    parent -> worker   ("go", index, best)            holds the token: run, check, time
    worker -> parent   ("result", index, payload)     costs or an error class + message
    parent -> worker   ("stop",)

Only the holder of the token runs kernels, so timings never overlap; the other workers'
builds are paused meanwhile (``MeasureOption.pause_builds``). The parent enforces timeouts
and detects crashes (it owns the token, so a killed worker cannot leave it taken).

Workers ignore SIGINT, SIGTERM and SIGHUP: Ctrl-C at a terminal reaches the whole process
group, and only the parent handles it (it stops the session and the workers; no worker
prints a traceback). The parent starts them with those signals blocked, so this holds from
the first instruction of the child; :func:`main` ignores them, then unblocks them. Workers
die with their parent: on Linux ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL them when
the thread that started them ends (also when they are stopped: SIGKILL needs no SIGCONT),
and every second a worker checks that its parent is still the process that started it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

Payload = dict[str, Any]

#: At most this many characters of a traceback are sent back.
TRACEBACK_LIMIT = 4000


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker: kernel threads, and no spinning idle threads when timing
    single-thread kernels (they would steal the core of the worker being timed). Set first
    thing in :func:`main`: this module imports neither the runtime nor libgomp."""
    env = {"TILETUNE_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": str(threads)}
    if threads == 1:
        env.update(OMP_WAIT_POLICY="passive", GOMP_SPINCOUNT="0")
    return env


def _failure(error: str, exc: BaseException | None = None, message: str = "") -> Payload:
    msg = message or (f"{type(exc).__name__}: {exc}" if exc is not None else error)
    tb = traceback.format_exc() if exc is not None else ""
    return {"error": error, "message": " ".join(msg.split())[:500],
            "traceback": tb[-TRACEBACK_LIMIT:]}


def effective_number(number: int, first_call: float, max_repeat_ms: float | None) -> int:
    """``number``, lowered (not below 1) so that one repeat lasts about ``max_repeat_ms``
    when a single call already takes long enough to time accurately."""
    if not max_repeat_ms or first_call <= 0:
        return number
    return max(1, min(number, int(max_repeat_ms / (first_call * 1e3))))


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                      if hasattr(signal, n))


def die_with_parent(parent_pid: int | None) -> None:
    """Make this process end when its parent does: ``PR_SET_PDEATHSIG`` (Linux), and a
    daemon thread that exits when the parent pid changes (other platforms, and a parent that
    died before the prctl call)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if parent_pid is None:
        return
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="tiletune-parent-watch", daemon=True).start()


def time_candidate(mod: Any, arrays: Any, options: dict[str, Any], first_call: float,
                   best: float) -> tuple[list[float], bool]:
    """Time a built, checked candidate: (seconds per call of each repeat, cut?).

    ``first_call`` is the cold, Python-timed correctness call: it only decides how many
    calls make a repeat (``max_repeat_ms``), never whether to cut. The first timed repeat
    (warm: after the time evaluator's warm-up call; ``number`` grown until it lasts
    ``min_repeat_ms``; timed in generated code, no Python call overhead) is the probe: when
    ``cutoff`` is set and ``best`` > 0 (the fastest mean of a full measurement so far; 0 for
    the default config and the confirmation rounds) and the probe is more than ``cutoff``
    times slower, timing stops there and the candidate is reported cut. Otherwise the
    remaining ``repeat - 1`` repeats run with the probe's (grown) ``number``, so every
    repeat of a full measurement has the same length. Warm repeat against warm mean: like
    is compared with like."""
    number = effective_number(int(options["number"]), first_call, options["max_repeat_ms"])
    min_ms, flush = float(options["min_repeat_ms"] or 0.0), bool(options["flush_cache"])
    repeat = int(options["repeat"])
    probe = mod.time_evaluator(number, 1, min_ms, flush)(*arrays)
    costs = list(probe.results)
    cutoff = options["cutoff"]
    if cutoff and best > 0 and costs[0] > cutoff * best:
        return costs, True
    if repeat > 1:
        rest = mod.time_evaluator(probe.number, repeat - 1, min_ms, flush)(*arrays)
        costs += list(rest.results)
    return costs, False


def main(conn: Connection, task_json: dict[str, Any], options: dict[str, Any],
         inputs: list[Any], expected: list[Any] | None, crash_log: str | None = None,
         parent_pid: int | None = None) -> None:
    """Entry point of a worker process (module level, so spawn can pickle it).

    ``crash_log``: a file where ``faulthandler`` writes the Python stack if the worker dies
    of a fatal signal (the parent reads it into the Crash result's traceback).
    ``parent_pid``: the tuner's pid; the worker exits when it is gone."""
    for sig in _STOP_SIGNALS:  # the parent handles Ctrl-C, SIGTERM, SIGHUP
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent until ignored here
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_STOP_SIGNALS))
    die_with_parent(parent_pid)
    os.environ.update(worker_env(int(options["threads"])))
    if crash_log:
        import faulthandler
        faulthandler.enable(open(crash_log, "w"))  # kept open for life
    try:
        from ..templates.task import Task
        task = Task.from_json(task_json)
    except BaseException as e:  # noqa: BLE001 - report anything, then exit
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
    from ..templates.task import OutputCheck
    check = (OutputCheck(expected, float(options["rtol"]))
             if expected is not None and options["check_correctness"] else None)
    conn.send(("hello", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        if msg[0] == "measure":
            index = int(msg[1])
            payload = measure_one(conn, task, index, options, inputs, check)
            conn.send(("result", index, payload))


def measure_one(conn: Connection | None, task: Any, index: int, options: dict[str, Any],
                inputs: list[Any], check: Any = None) -> Payload:
    """Build ``index``, wait for the token (``conn``; None: run at once), run, check, time."""
    import tiletune as tt

    from ...errors import ScheduleError, TuningError
    from ..space.knobs import InstantiationError

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        cfg = task.config(index)
        if task.space.constraints and (reason := cfg.invalid_reason()) is not None:
            raise InstantiationError(f"config violates constraint: {reason}")
        s, tensors = task.instantiate(cfg)
    except (InstantiationError, ScheduleError, TuningError) as e:
        return _failure("InstantiationError", e)
    except Exception as e:  # noqa: BLE001 - a broken template is still this config's failure
        return _failure("InstantiationError", e)
    t1 = time.perf_counter()
    try:
        mod = tt.build(s, tensors, target=task.target, name="candidate",
                       opt_level=options["opt_level"], codegen_opt=options["codegen_opt"])
    except Exception as e:  # noqa: BLE001
        return _failure("BuildError", e)
    t2, c2 = time.perf_counter(), time.process_time()
    try:
        return _run(conn, task, index, mod, cfg, tensors, options, inputs, check,
                    (t1 - t0, t2 - t1, c2 - c0))
    finally:
        mod.close()


def _run(conn: Connection | None, task: Any, index: int, mod: Any, cfg: Any, tensors: Any,
         options: dict[str, Any], inputs: list[Any], check: Any,
         times: tuple[float, float, float]) -> Payload:
    try:
        arrays, out_pos = task.prepare(cfg, inputs, tensors)
    except Exception as e:  # noqa: BLE001
        return _failure("RuntimeError", e, f"preparing the inputs failed: {type(e).__name__}: {e}")
    msg = None
    if conn is not None:
        conn.send(("ready", index))
        msg = conn.recv()
        if msg[0] != "go":
            return _failure("Unknown", message=f"protocol error: expected 'go', got {msg[0]!r}")
    t3 = time.perf_counter()
    try:
        mod.set_num_threads(int(options["threads"]))
        mod(*arrays)
        first = time.perf_counter() - t3
        if check is not None:
            wrong = check([arrays[k] for k in out_pos])
            if wrong is not None:
                return _failure("WrongAnswer", message=wrong)
        best = float(msg[2]) if msg is not None else 0.0
        costs, cut = time_candidate(mod, arrays, options, first, best)
    except Exception as e:  # noqa: BLE001
        return _failure("RuntimeError", e)
    t4 = time.perf_counter()
    return {"error": None, "costs": costs, "instantiate_time": times[0],
            "build_time": times[1], "build_cpu": times[2], "run_time": t4 - t3, "cut": cut}
