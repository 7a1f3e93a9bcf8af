"""``VTAMeasurer``: measures VTA configs in this process; cost = simulated seconds.

No worker processes: the simulated cycle count is deterministic and does not depend on the
machine. It has ``LocalMeasurer``'s interface (``VTAMeasurer(task, option, seed)``, a
context manager, ``measure(indices) -> [MeasureResult]``), so the vta target declares it as
its measurer (``tiletune.tuner.targets.vta``).
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import tiletune as tt
from tiletune.errors import ScheduleError, TuningError

from .result import MeasureResult


class MeasureTimeout(BaseException):
    """Raised by :func:`deadline`'s alarm (a BaseException: templates' ``except
    Exception`` cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`MeasureTimeout` in the block after ``seconds`` (SIGALRM; from the
    main thread only, elsewhere, or with ``seconds <= 0``, no limit)."""
    if (seconds <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise MeasureTimeout

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class VTAMeasurer:
    """Measures configs of a VTA task in this process; cost = simulated seconds.

    Each candidate is instantiated, built and timed with a cycles-only simulation; outputs
    are checked bit-exactly against the task's reference (``option.check_correctness``) for
    the first ``check_first`` successful candidates, every ``check_every``-th after that,
    and every candidate that would become the new best (the compiler is deterministic, so
    this catches compiler bugs without simulating every candidate's data path, and a wrong
    kernel can never be the winner). ``option.repeat`` copies of the cost are reported.
    ``option.build_timeout`` limits instantiating + building, ``option.timeout`` the
    simulation (BuildTimeout / RunTimeout; enforced with SIGALRM, so only when measuring
    from the main thread); ``jobs`` and ``number`` do not apply.
    """

    def __init__(self, task: Any, option: Any = None, seed: int = 0, *, check_first: int = 2,
                 check_every: int = 16) -> None:
        if getattr(task, "target", "vta").split()[0] != "vta":
            raise TuningError(f"VTAMeasurer measures VTA tasks, not target {task.target!r}")
        self.task, self.option, self.seed = task, option, seed
        self.check_first, self.check_every = check_first, check_every
        self.repeat = int(getattr(option, "repeat", 1))
        check = bool(getattr(option, "check_correctness", True))
        self.inputs = task.make_inputs(seed)
        self.expected = task.reference(self.inputs) if check else None
        self.reference_note = "" if self.expected is not None or not check else (
            f"no reference for {task.name}: outputs are not checked")
        self.best_cost = 0.0
        self.n_cut = 0
        self.n_respawns = 0
        self.n_checked = 0
        self.timings: list[tuple[float, float, float, float]] = []
        self.build_timeout = float(getattr(option, "build_timeout", 30.0) or 0)
        self.run_timeout = float(getattr(option, "timeout", 10.0) or 0)
        self._ok = 0
        self._closed = False

    def __call__(self, indices: Sequence[int]) -> list[MeasureResult]:
        if self._closed:
            raise TuningError("this VTAMeasurer is closed")
        order = [int(i) for i in indices]
        if len(set(order)) != len(order):
            raise TuningError("measure got the same config index twice in one batch")
        return [self._one(i) for i in order]

    def _one(self, index: int) -> MeasureResult:
        t0, c0 = time.perf_counter(), time.process_time()

        def fail(error: str, e: BaseException) -> MeasureResult:
            return MeasureResult.failure(error, f"{type(e).__name__}: {e}"[:500],
                                         all_cost=time.perf_counter() - t0,
                                         traceback=traceback.format_exc()[-4000:])

        def timed_out(what: str, limit: float) -> MeasureResult:
            kind = "RunTimeout" if what == "running" else "BuildTimeout"
            return MeasureResult.failure(
                kind, f"{what} config {index} took longer than {limit:g} s",
                all_cost=time.perf_counter() - t0)

        try:
            with deadline(self.build_timeout):
                cfg = self.task.config(index)
                reason = cfg.invalid_reason()
                if reason is not None:
                    raise ScheduleError(f"config violates constraint: {reason}")
                s, tensors = self.task.instantiate(cfg)
                t1 = time.perf_counter()
                try:
                    mod = tt.build(s, tensors, target="vta", name="candidate")
                except Exception as e:  # noqa: BLE001
                    return fail("BuildError", e)
        except MeasureTimeout:
            return timed_out("building", self.build_timeout)
        except Exception as e:  # noqa: BLE001 - a bad config is this config's failure
            return fail("InstantiationError", e)
        t2, c2 = time.perf_counter(), time.process_time()
        try:
            with deadline(self.run_timeout):
                return self._run(index, cfg, mod, tensors, (t0, t1, t2, c0, c2))
        except MeasureTimeout:
            return timed_out("running", self.run_timeout)
        except Exception as e:  # noqa: BLE001
            return fail("RuntimeError", e)

    def _run(self, index: int, cfg: Any, mod: Any, tensors: Any,
             times: tuple[float, float, float, float, float]) -> MeasureResult:
        t0, t1, t2, c0, c2 = times
        cost = mod.seconds
        new_best = self.best_cost == 0 or cost < self.best_cost
        if self.expected is not None and (new_best or self._ok < self.check_first
                                          or self._ok % self.check_every == 0):
            arrays, out_pos = self.task.prepare(cfg, self.inputs, tensors)
            mod(*arrays)
            self.n_checked += 1
            wrong = self.task.check([arrays[k] for k in out_pos], self.expected)
            if wrong is not None:
                return MeasureResult.failure("WrongAnswer", wrong,
                                             all_cost=time.perf_counter() - t0)
        self._ok += 1
        t3 = time.perf_counter()
        self.timings.append((t1 - t0, t2 - t1, t3 - t2, c2 - c0))
        if self.best_cost == 0 or cost < self.best_cost:
            self.best_cost = cost
        return MeasureResult.success([cost] * self.repeat, all_cost=t3 - t0)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> VTAMeasurer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
