"""The worker-process side of :class:`~tiletune.tuner.measure.LocalMeasurer`.

A worker is started with the ``spawn`` method and talks to the parent over one pipe::

    worker -> parent   ("hello", pid)                 ready to take candidates
                       ("fatal", message)             cannot load the task; exits
    parent -> worker   ("measure", index)             instantiate + lower + LLVM
    worker -> parent   ("ready", index)               built; waiting for the timing token
                       ("result", index, payload)     failed before running
    parent -> worker   ("go", index)                  holds the token: run, check, time
    worker -> parent   ("result", index, payload)     costs or an error class + message
    parent -> worker   ("stop",)

Only the holder of the token runs kernels, so timings never overlap; builds of the other
workers go on meanwhile. The parent enforces timeouts and detects crashes (it owns the
token, so a killed worker cannot leave it taken).
"""

from __future__ import annotations

import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

Payload = dict[str, Any]

#: At most this many characters of a traceback are sent back.
TRACEBACK_LIMIT = 4000


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker: kernel threads, and no spinning idle threads when timing
    single-thread kernels (they would steal the core of the worker being timed)."""
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


def main(conn: Connection, task_json: dict[str, Any], options: dict[str, Any],
         inputs: list[Any], expected: list[Any] | None) -> None:
    """Entry point of a worker process (module level, so spawn can pickle it)."""
    os.environ.update(worker_env(int(options["threads"])))
    try:
        from .task import Task
        task = Task.from_json(task_json)
    except BaseException as e:  # noqa: BLE001 - report anything, then exit
        conn.send(("fatal", f"{type(e).__name__}: {e}"))
        return
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
            payload = measure_one(conn, task, index, options, inputs, expected)
            conn.send(("result", index, payload))


def measure_one(conn: Connection | None, task: Any, index: int, options: dict[str, Any],
                inputs: list[Any], expected: list[Any] | None) -> Payload:
    """Build ``index``, wait for the token (``conn``; None: run at once), run, check, time."""
    import tiletune as tt

    from ..errors import ScheduleError, TuningError
    from .knobs import InstantiationError

    t0 = time.perf_counter()
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
    t2 = time.perf_counter()
    try:
        arrays, out_pos = task.prepare(cfg, inputs, tensors)
    except Exception as e:  # noqa: BLE001
        return _failure("RuntimeError", e, f"preparing the inputs failed: {type(e).__name__}: {e}")
    if conn is not None:
        conn.send(("ready", index))
        msg = conn.recv()
        if msg[0] != "go":
            return _failure("Unknown", message=f"protocol error: expected 'go', got {msg[0]!r}")
    t3 = time.perf_counter()
    try:
        mod.set_num_threads(int(options["threads"]))
        mod(*arrays)
    except Exception as e:  # noqa: BLE001
        return _failure("RuntimeError", e)
    if expected is not None and options["check_correctness"]:
        wrong = task.check([arrays[k] for k in out_pos], expected, options["rtol"])
        if wrong is not None:
            return _failure("WrongAnswer", message=wrong)
    try:
        timer = mod.time_evaluator(int(options["number"]), int(options["repeat"]),
                                   float(options["min_repeat_ms"]), bool(options["flush_cache"]))
        res = timer(*arrays)
    except Exception as e:  # noqa: BLE001
        return _failure("RuntimeError", e)
    finally:
        mod.close()
    t4 = time.perf_counter()
    return {"error": None, "costs": list(res.results), "instantiate_time": t1 - t0,
            "build_time": t2 - t1, "run_time": t4 - t3}
