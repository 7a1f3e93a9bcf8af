"""The VTA templates for the tuner: ``vta_conv2d`` and ``vta_dense``.

Importing this module registers them with ``tiletune.tuner.templates.registry``. Each
defines one knob per entry of the library module's ``space``, its validity check (buffer
capacities, thread splits) as a constraint, so impossible configs are never measured, and
the flop count. The measured cost is simulated time (cycles / clock):
``VTAModule.time_evaluator`` reports it from a cycles-only run; the bit-exact call checks
the output against the NumPy reference.

Inputs are logical arrays (NCHW data, OIHW weights, int8); ``prepare`` packs them into VTA's
blocked layouts and the reference is returned packed like the kernel's output.

``VTAMeasurer`` measures in-process with the simulator's cycles-only mode (no worker
processes: the simulated cycle count is deterministic and does not depend on the machine).
It has ``LocalMeasurer``'s interface (``VTAMeasurer(task, option, seed)``, a context
manager, ``measure(indices) -> [MeasureResult]``), so a session can pass it as its measurer
class for VTA tasks.

    import tiletune.tuner.targets.vta  # registers the templates
    task = Task("vta_conv2d", (1, 64, 56, 56, 64, 3, 3, 1, 1, "int8"), target="vta")
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import tiletune as tt
from tiletune.errors import ScheduleError, TuningError
from tiletune.schedules import vta_conv2d as vc
from tiletune.schedules import vta_dense as vd
from tiletune.tuner.measure.result import MeasureResult
from tiletune.tuner.space.config_space import ConfigSpace
from tiletune.tuner.templates.registry import template

_REASON = "VTA: tiles must fit the INP/WGT/ACC buffers and threads split the tiles evenly"


def unsupported_reason(N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                       stride: int = 1, pad: int = 0, dtype: str = "int8") -> str | None:
    """Why a conv2d layer cannot run on VTA (None if it can), e.g. 3 input channels."""
    if dtype != "int8":
        return f"VTA computes int8 convolutions, not {dtype}"
    try:
        vc.VTAConv2dWorkload(N, C, H, W, K, R, S, stride, pad).check()
    except ScheduleError as e:
        return str(e)
    return None


def _workload(N: int, C: int, H: int, W: int, K: int, R: int, S: int, stride: int, pad: int,
              dtype: str) -> vc.VTAConv2dWorkload:
    reason = unsupported_reason(N, C, H, W, K, R, S, stride, pad, dtype)
    if reason:
        raise ScheduleError(reason)
    return vc.VTAConv2dWorkload(N, C, H, W, K, R, S, stride, pad)


def _define(cfg: Any, space: dict[str, list[Any]], valid: Any, flop: int) -> None:
    for knob, choices in space.items():
        cfg.define_knob(knob, choices)
    cfg.add_constraint(lambda e: bool(valid(e.to_json())), _REASON)
    cfg.add_flop(flop)


# -- conv2d -------------------------------------------------------------------------------------
def _conv_inputs(rng: np.random.Generator, N: int, C: int, H: int, W: int, K: int, R: int,
                 S: int, stride: int, pad: int, dtype: str) -> list[np.ndarray]:
    return [rng.integers(-128, 128, (N, C, H, W)).astype(np.int8),
            rng.integers(-128, 128, (K, C, R, S)).astype(np.int8)]


def _conv_reference(inputs: list[np.ndarray], *args: Any) -> list[np.ndarray]:
    w = _workload(*args)
    return [vc.pack_output(vc.reference(w, inputs[0], inputs[1]))]


def _conv_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                  ) -> list[np.ndarray]:
    return [vc.pack_data(inputs[0]), vc.pack_kernel(inputs[1])]


@template("vta_conv2d", inputs=_conv_inputs, reference=_conv_reference, prepare=_conv_prepare,
          default_config=lambda *a: vc.default_config(_workload(*a)))
def vta_conv2d_template(cfg: Any, N: int, C: int, H: int, W: int, K: int, R: int, S: int,
                        stride: int = 1, pad: int = 0, dtype: str = "int8") -> Any:
    """int8 conv2d on VTA; arguments ``[data, kernel, out]`` in the packed layouts."""
    w = _workload(N, C, H, W, K, R, S, stride, pad, dtype)
    _define(cfg, vc.space(w), lambda c: vc.is_valid(w, c), w.flop)
    if isinstance(cfg, ConfigSpace):
        return None  # collect mode: the space is known without scheduling
    return vc.schedule(w, cfg.to_json())


# -- dense --------------------------------------------------------------------------------------
def _dense_inputs(rng: np.random.Generator, M: int, N: int, K: int, dtype: str = "int8"
                  ) -> list[np.ndarray]:
    return [rng.integers(-128, 128, (M, K)).astype(np.int8),
            rng.integers(-128, 128, (N, K)).astype(np.int8)]


def _dense_reference(inputs: list[np.ndarray], M: int, N: int, K: int, dtype: str = "int8"
                     ) -> list[np.ndarray]:
    y = vd.reference(vd.VTADenseWorkload(M, N, K), inputs[0], inputs[1])
    return [np.ascontiguousarray(y.reshape(M, 1, N // 16, 16).transpose(0, 2, 1, 3))]


def _dense_prepare(config: Mapping[str, Any], inputs: list[np.ndarray], *args: Any
                   ) -> list[np.ndarray]:
    return [vd.pack_data(inputs[0]), vd.pack_weight(inputs[1])]


@template("vta_dense", inputs=_dense_inputs, reference=_dense_reference, prepare=_dense_prepare,
          default_config=lambda M, N, K, dtype="int8": vd.default_config(
              vd.VTADenseWorkload(M, N, K)))
def vta_dense_template(cfg: Any, M: int, N: int, K: int, dtype: str = "int8") -> Any:
    """int8 dense ``[M, K] x [N, K]^T`` on VTA; arguments ``[data, weight, out]`` packed."""
    if dtype != "int8":
        raise ScheduleError(f"VTA computes int8 dense, not {dtype}")
    w = vd.VTADenseWorkload(M, N, K)
    _define(cfg, vd.space(w), lambda c: vd.is_valid(w, c), w.flop)
    if isinstance(cfg, ConfigSpace):
        return None
    return vd.schedule(w, cfg.to_json())


# -- measuring ---------------------------------------------------------------------------------
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
