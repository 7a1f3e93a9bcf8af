"""``VTAMeasurer``: measures VTA configs in this process; cost = simulated seconds.

No worker processes: the simulated cycle count is deterministic and does not depend on the
machine. It has ``LocalMeasurer``'s interface (``VTAMeasurer(task, option, seed)``, a
context manager, ``measure(indices) -> [MeasureResult]``), so the vta target declares it as
its measurer (``tiletune.tuner.targets.vta``).
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from typing import Any

import tiletune as tt
from tiletune.errors import ScheduleError, TuningError

from .result import MeasureResult


class VTAMeasurer:
    """Measures configs of a VTA task in this process; cost = simulated seconds.

    Each candidate is instantiated, built and timed with a cycles-only simulation; outputs
    are checked bit-exactly against the task's reference (``option.check_correctness``) for
    the first ``check_first`` successful candidates and every ``check_every``-th after that
    (the compiler is deterministic, so this catches compiler bugs without simulating every
    candidate's data path). ``option.repeat`` copies of the cost are reported; ``jobs``,
    ``number`` and the timeouts do not apply.
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

        try:
            cfg = self.task.config(index)
            reason = cfg.invalid_reason()
            if reason is not None:
                raise ScheduleError(f"config violates constraint: {reason}")
            s, tensors = self.task.instantiate(cfg)
        except Exception as e:  # noqa: BLE001 - a bad config is this config's failure
            return fail("InstantiationError", e)
        t1 = time.perf_counter()
        try:
            mod = tt.build(s, tensors, target="vta", name="candidate")
        except Exception as e:  # noqa: BLE001
            return fail("BuildError", e)
        t2, c2 = time.perf_counter(), time.process_time()
        try:
            cost = mod.seconds
            if self.expected is not None and (
                    self._ok < self.check_first or self._ok % self.check_every == 0):
                arrays, out_pos = self.task.prepare(cfg, self.inputs, tensors)
                mod(*arrays)
                self.n_checked += 1
                wrong = self.task.check([arrays[k] for k in out_pos], self.expected)
                if wrong is not None:
                    return MeasureResult.failure("WrongAnswer", wrong,
                                                 all_cost=time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            return fail("RuntimeError", e)
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
