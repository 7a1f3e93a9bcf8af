"""The measurement harness: successes, and every failure class while tuning goes on."""

from __future__ import annotations

import ctypes
import multiprocessing
import time

import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import TuningError
from tiletune.tuner import LocalMeasurer, MeasureOption, RandomTuner, Task, template

MODES = ["ok", "wrong", "invalid", "unbuildable", "crash", "hang_build", "hang_run"]
EXPECTED = {"ok": None, "wrong": "WrongAnswer", "invalid": "InstantiationError",
            "unbuildable": "BuildError", "crash": "Crash", "hang_build": "BuildTimeout",
            "hang_run": "RunTimeout"}


def _in_worker() -> bool:
    return multiprocessing.parent_process() is not None


@template("test_faulty", reference=lambda inputs, *args: [inputs[0] @ inputs[1]])
def faulty(cfg, n):
    """A small matmul whose ``mode`` knob breaks it in every way the harness must survive
    (the crash and the hangs only happen inside worker processes)."""
    cfg.define_knob("mode", MODES)
    cfg.define_knob("tile", [2, 4])
    mode = cfg["mode"].val
    A = tt.placeholder((n, n), "float32", name="A")
    B = tt.placeholder((n, n), "float32", name="B")
    k = tt.reduce_axis(n, name="k")
    if mode == "wrong":  # the knob changes the compute: an extra + 1
        C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k] * B[k, j] + 1.0, axis=k), name="C")
    elif mode == "hang_run":  # 2^34 extra reduction steps per output: runs for minutes
        r = tt.reduce_axis(1 << 34, name="r")
        C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=[k, r]), name="C")
    else:
        C = tt.compute((n, n), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    if isinstance(cfg, tt.tuner.ConfigEntity):
        if mode == "invalid":
            cfg.raise_error("mode 'invalid' is never valid")
        if mode == "crash" and _in_worker():
            ctypes.string_at(0)  # SIGSEGV
        if mode == "hang_build" and _in_worker():
            time.sleep(600)
    i, j = s[C].axis
    s[C].split(j, factor=cfg["tile"].val)
    if mode == "unbuildable":
        return s, [A, C]  # B is missing from the arguments: tt.build raises
    return s, [A, B, C]


@template("test_measure_matmul")
def matmul(cfg, N, L, M, dtype="float32"):
    """AutoTVM-tutorial style; no reference registered: the harness builds a naive one."""
    A = tt.placeholder((N, L), dtype, name="A")
    B = tt.placeholder((L, M), dtype, name="B")
    k = tt.reduce_axis(L, name="k")
    C = tt.compute((N, M), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    y, x = s[C].axis
    cfg.define_split("tile_y", y, num_outputs=2)
    cfg.define_split("tile_x", x, num_outputs=2)
    yo, yi = cfg["tile_y"].apply(s[C], y)
    xo, xi = cfg["tile_x"].apply(s[C], x)
    s[C].reorder(yo, xo, k, yi, xi)
    return s, [A, B, C]


def test_user_template_with_naive_reference():
    task = Task("test_measure_matmul", (16, 24, 32))
    with LocalMeasurer(task, MeasureOption(jobs=2, number=1, repeat=1)) as measure:
        assert measure.expected is not None and not measure.reference_note
        results = measure(task.space.sample(6, rng=2))
    assert all(r.ok for r in results), [r.describe() for r in results]


def test_dense_measures_successfully():
    task = Task("dense", (32, 48, 16))
    with LocalMeasurer(task, MeasureOption(jobs=2, number=2, repeat=2, cutoff=None)) as measure:
        idx = task.space.sample(6, rng=0)
        results = measure(idx)
        assert [r.error for r in results] == [None] * 6, [r.describe() for r in results]
        assert all(len(r.costs) == 2 and 0 < r.mean < 1e-2 for r in results)
        again = measure(task.space.sample(2, rng=1, exclude=idx))  # workers are reused
        assert all(r.ok for r in again) and measure.n_respawns == 0
        assert measure.expected is not None
        np.testing.assert_allclose(measure.expected[0],
                                   measure.inputs[0] @ measure.inputs[1], atol=1e-5)


def test_every_failure_class_is_recorded_and_tuning_continues():
    task = Task("test_faulty", (8,))
    assert len(task.space) == 2 * len(MODES)
    opt = MeasureOption(jobs=2, number=1, repeat=1, timeout=2.0, build_timeout=3.0)
    seen: dict[int, tt.tuner.MeasureResult] = {}

    def log(tuner, indices, results):
        seen.update(zip(indices, results))

    with LocalMeasurer(task, opt, seed=0) as measure:
        tuner = RandomTuner(task.space, seed=0)
        summary = tuner.tune(measure, n_trial=len(task.space), batch_size=4, callbacks=[log])
        assert measure.n_respawns == 2 + 2 + 2  # crash, build hang, run hang x 2 tiles
    assert summary.n_measured == len(seen) == len(task.space)
    for index, res in seen.items():
        mode = task.space.get(index)["mode"].val
        assert res.error == EXPECTED[mode], (mode, res.describe())
        assert res.ok or ("\n" not in res.message and res.message)
    msgs = {task.space.get(i)["mode"].val: r for i, r in seen.items()}
    assert "SIGSEGV" in msgs["crash"].message and "string_at" in msgs["crash"].traceback
    assert "max abs error" in msgs["wrong"].message
    assert "never valid" in msgs["invalid"].message and "raise_error" in msgs[
        "invalid"].traceback
    assert task.space.get(summary.best_index)["mode"].val == "ok"


def test_worker_that_cannot_load_the_task_is_an_error():
    task = Task(_local_template(), (4,))
    with pytest.raises(TuningError, match="cannot load task"):
        with LocalMeasurer(task, MeasureOption(jobs=1)) as measure:
            measure([0])


def _local_template():
    def local(cfg, n):
        A = tt.placeholder((n,), "float32", name="A")
        B = tt.compute((n,), lambda i: A[i] * 2.0, name="B")
        return tt.create_schedule(B), [A, B]
    return local


def test_builds_are_paused_while_another_worker_times():
    """While one worker times its candidate the other workers' builds are stopped (a compile
    on the second core made 1-thread timings 2-4x slower than in the main process). The
    mechanism is checked, not a timing: timings are never asserted in tests."""
    from tiletune.tuner.session import default_index
    from tiletune.tuner.session.workloads import parse_op_shape

    task = parse_op_shape("conv2d", "1,64,14,14,64,3,3,1,1").task()
    d = default_index(task)
    others = [i for i in task.space.sample(6, rng=3) if i != d][:4]
    for pause, expect in ((True, True), (False, False)):
        opt = MeasureOption(jobs=2, number=1, repeat=3, cutoff=None, pause_builds=pause)
        with LocalMeasurer(task, opt, seed=0) as measure:
            res = measure([others[0], d, others[1], others[2], others[3]])
            assert all(r.ok for r in res), [r.describe() for r in res]
            assert (measure.n_pauses > 0) == expect, (pause, measure.n_pauses)

