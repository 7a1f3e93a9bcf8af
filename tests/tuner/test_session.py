"""tune_workloads (the library behind `tiletune tune`), the tuner registry and the presets.

A fake measurer (deterministic costs, chosen failures) replaces the worker processes so these
tests run in milliseconds; tests/test_cli.py runs the real harness end to end.
"""

from __future__ import annotations

import json
import math

import pytest

from tiletune.errors import RecordsError, TuningError
from tiletune.tuner.measure.result import MeasureResult
from tiletune.tuner.records.store import load_records
from tiletune.tuner.session import (
    TUNERS,
    TunerContext,
    default_index,
    make_tuner,
    register_tuner,
    tune_workloads,
    xgb_plan,
)
from tiletune.tuner.session.progress import LogReporter, Reporter
from tiletune.tuner.session.workloads import (
    OPS,
    PRESETS,
    Workload,
    find_by_template,
    parse_layers,
    parse_op_shape,
    parse_workloads,
)
from tiletune.tuner.targets.registry import get_target

DENSE = parse_op_shape("dense", "32,32,32")


class FakeMeasurer:
    """Stands in for LocalMeasurer: cost from the index, ``fail(i)`` picks failures."""

    calls: list[list[int]] = []
    fail = staticmethod(lambda i: False)
    interrupt_after: int | None = None  # raise KeyboardInterrupt on this call number
    slow: dict[int, float] = {}  # index -> cost factor (for the first measurement only)

    def __init__(self, task, option=None, seed=0) -> None:
        self.task = task

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __call__(self, indices):
        FakeMeasurer.calls.append(list(indices))
        if FakeMeasurer.interrupt_after is not None and \
                len(FakeMeasurer.calls) > FakeMeasurer.interrupt_after:
            raise KeyboardInterrupt
        out = [MeasureResult.failure("BuildError", f"config {i} broke", traceback="tb")
               if FakeMeasurer.fail(i) else
               MeasureResult.success([1e-4 * (1 + (i * 7919 % 97) / 97)
                                      * FakeMeasurer.slow.pop(i, 1.0)]) for i in indices]
        return out


@pytest.fixture
def fake(monkeypatch):
    FakeMeasurer.calls = []
    FakeMeasurer.fail = staticmethod(lambda i: False)
    FakeMeasurer.interrupt_after = None
    FakeMeasurer.slow = {}
    monkeypatch.setattr(get_target("llvm"), "measurer", FakeMeasurer)
    return FakeMeasurer


def tune(tmp_path, items=(DENSE,), **kw):
    kw.setdefault("trials", 12)
    kw.setdefault("batch_size", 4)
    kw.setdefault("tuner", "random")
    kw.setdefault("confirm", False)  # which index the fake makes fastest depends on the host
    return tune_workloads(list(items), records=tmp_path / "r.jsonl", **kw)


# --------------------------------------------------------------------------- the session
def test_default_config_is_measured_first_and_is_the_baseline(fake, tmp_path):
    s = tune(tmp_path)
    task = DENSE.task()
    d = default_index(task)
    assert fake.calls[0] == [d]
    (r,) = s.results
    assert r.default_index == d and r.trials == 12 and r.new_trials == 12
    assert math.isclose(r.default_cost, 1e-4 * (1 + (d * 7919 % 97) / 97))
    assert r.speedup is not None and r.speedup >= 1.0
    assert r.best_gflops == pytest.approx(task.flop / r.best_cost / 1e9)
    recs, problems = load_records(tmp_path / "r.jsonl")
    assert not problems and len(recs) == 12
    assert recs[0]["tuner"] == "default" and {x["tuner"] for x in recs[1:]} == {"random"}
    assert s.exit_code == 0


def test_default_and_top_configs_are_confirmed_in_rounds(fake, tmp_path):
    from tiletune.tuner.session import CONFIRM_ROUNDS, CONFIRM_TOP

    d = default_index(DENSE.task())
    fake.slow = {d: 50.0}  # a noisy first measurement of the default
    s = tune(tmp_path, confirm=True)
    r = s.results[0]
    rounds = fake.calls[-CONFIRM_ROUNDS:]
    assert all(c == rounds[0] for c in rounds) and rounds[0][0] == d
    assert len(rounds[0]) == 1 + CONFIRM_TOP and r.confirmed
    base = 1e-4 * (1 + (d * 7919 % 97) / 97)
    assert r.default_cost == pytest.approx(base)  # the confirmation, not the 50x outlier
    assert r.best_index in rounds[0] and r.speedup == pytest.approx(base / r.best_cost)
    assert r.speedup >= 1.0
    recs = load_records(tmp_path / "r.jsonl")[0]
    n_confirm = CONFIRM_ROUNDS * (1 + CONFIRM_TOP)
    assert len(recs) == 12 + n_confirm
    assert {x["tuner"] for x in recs[-n_confirm:]} == {"confirm"}
    fake.calls.clear()
    s = tune(tmp_path, resume=True, confirm=True)  # nothing new: no confirmation either
    assert fake.calls == [] and not s.results[0].confirmed
    assert s.results[0].speedup == pytest.approx(r.speedup)  # from the confirm records
    fake.slow = {d: 50.0}
    s = tune(tmp_path, confirm=False)
    assert not s.results[0].confirmed and s.results[0].speedup > 10


def test_resume_feeds_history_and_never_remeasures(fake, tmp_path):
    tune(tmp_path)
    first = [i for batch in fake.calls for i in batch]
    fake.calls.clear()
    s = tune(tmp_path, resume=True)
    assert fake.calls == []  # all 12 trials (default included) came from the records
    assert s.results[0].resumed == 12 and s.results[0].new_trials == 0
    s = tune(tmp_path, resume=True, trials=20)
    again = [i for batch in fake.calls for i in batch]
    assert len(again) == 8 and not set(again) & set(first)
    assert len(load_records(tmp_path / "r.jsonl")[0]) == 20


def test_without_resume_records_are_appended_and_history_ignored(fake, tmp_path):
    tune(tmp_path)
    fake.calls.clear()
    tune(tmp_path)
    assert sum(map(len, fake.calls)) == 12
    assert len(load_records(tmp_path / "r.jsonl")[0]) == 24


def test_failures_are_counted_by_class_and_are_not_fatal(fake, tmp_path):
    fake.fail = staticmethod(lambda i: i % 3 == 0)
    s = tune(tmp_path, trials=16)
    r = s.results[0]
    assert set(r.failures) == {"BuildError"} and r.n_failed == s.n_failed > 0
    assert r.best_index is not None and s.exit_code == 0
    json.dumps(s.to_json())  # serialisable


def test_no_working_config_is_exit_code_1(fake, tmp_path):
    fake.fail = staticmethod(lambda i: True)
    s = tune(tmp_path, trials=6)
    assert s.results[0].best_index is None and s.unsolved and s.exit_code == 1
    assert s.results[0].speedup is None and s.results[0].default_error


def test_failure_events_reach_the_reporter(fake, tmp_path):
    fake.fail = staticmethod(lambda i: i % 2 == 0)
    seen = []

    class Spy(Reporter):
        def failure(self, p, index, config, result):
            seen.append((index, result.error))

    tune(tmp_path, reporter=Spy())
    assert seen and all(i % 2 == 0 and e == "BuildError" for i, e in seen)


def test_interrupt_keeps_flushed_records_and_reports_130(fake, tmp_path):
    fake.interrupt_after = 2  # the default and one batch of 4, then Ctrl-C
    s = tune(tmp_path, items=[DENSE, parse_op_shape("dense", "16,32,32")])
    assert s.interrupted and s.exit_code == 130
    assert len(s.results) == 1 and s.results[0].status == "interrupted"
    assert s.results[0].trials == 5 and s.results[0].best_index is not None
    assert len(load_records(tmp_path / "r.jsonl")[0]) == 5


def test_time_budget_is_shared_and_exhausted_workloads_are_skipped(fake, tmp_path):
    import time as _time

    slow = FakeMeasurer.__call__

    def call(self, indices):
        _time.sleep(0.05)
        return slow(self, indices)

    fake.__call__ = call
    try:
        s = tune(tmp_path, items=[DENSE] * 3, trials=1000, time_budget=0.3)
    finally:
        fake.__call__ = slow
    assert s.elapsed < 2.0
    assert all(r.status in ("done", "skipped") for r in s.results)
    assert any("time budget" in r.stop_reason for r in s.results)


def test_early_stopping(fake, tmp_path):
    fake.fail = staticmethod(lambda i: i != default_index(DENSE.task()))  # nothing beats it
    s = tune(tmp_path, trials=100, early_stopping=8)
    assert "early stopping" in s.results[0].stop_reason
    assert s.results[0].trials <= 1 + 8 + 4


def test_bad_arguments_raise_before_measuring(fake, tmp_path):
    for kw in ({"trials": 0}, {"time_budget": -1}, {"early_stopping": 0},
               {"tuner": "nope"}, {"transfer_from": [tmp_path / "h.jsonl"]}):
        with pytest.raises(TuningError):
            tune(tmp_path, **kw)
    assert fake.calls == []


def test_unreadable_history_is_a_records_error(fake, tmp_path):
    register_tuner("with_history", "test", uses_history=True)(TUNERS["random"].factory)
    try:
        with pytest.raises(RecordsError):
            tune(tmp_path, tuner="with_history", transfer_from=[tmp_path / "missing.jsonl"])
    finally:
        del TUNERS["with_history"]


def test_corrupt_records_are_skipped_on_resume(fake, tmp_path):
    tune(tmp_path)
    with open(tmp_path / "r.jsonl", "a") as f:
        f.write("{not json\n")
    fake.calls.clear()
    messages = []

    class Spy(Reporter):
        def message(self, text):
            messages.append(text)

    s = tune(tmp_path, resume=True, reporter=Spy())
    assert fake.calls == [] and s.problems and any("corrupt" in m for m in messages)


def test_accepts_harness_tasks(fake, tmp_path):
    from tiletune.tuner.templates.task import Task

    task = Task("conv2d_nchwc", (1, 64, 56, 56, 64, 1, 1, 1, 0, "float32"))
    s = tune(tmp_path, items=[task], trials=4)
    assert s.results[0].name == "resnet18:3"


def test_log_reporter_writes_plain_lines(fake, tmp_path):
    import io

    buf = io.StringIO()
    fake.fail = staticmethod(lambda i: i % 2 == 0)
    tune(tmp_path, reporter=LogReporter(buf, verbose=True))
    text = buf.getvalue()
    assert "\r" not in text and "1/1 dense:32,32,32" in text
    assert "BuildError" in text and "tb" in text  # -v prints the traceback


# --------------------------------------------------------------------------- the registry
def test_registry_builds_every_tuner():
    task = DENSE.task()
    for name in TUNERS:
        if TUNERS[name].uses_history:
            continue
        t = make_tuner(name, TunerContext(task, seed=3, n_trial=64))
        assert t.space is task.space and t.seed == 3
    with pytest.raises(TuningError, match="unknown tuner"):
        make_tuner("nope", TunerContext(task))


def test_xgb_plan_scales_with_the_budget():
    assert xgb_plan(64)["n_initial"] < 64 and xgb_plan(10_000)["n_initial"] == 64
    assert all(xgb_plan(n)["plan_size"] >= xgb_plan(n)["n_initial"] for n in (8, 64, 500))


# --------------------------------------------------------------------------- presets
def test_resnet18_preset_has_12_layers_with_the_right_shapes():
    wls = parse_workloads("resnet18")
    assert [w.name for w in wls] == [f"resnet18:{i}" for i in range(1, 13)]
    assert wls[0].args == (1, 3, 224, 224, 64, 7, 7, 2, 3, "float32")
    assert wls[-1].shape == (1, 512, 7, 7, 512, 3, 3, 1, 1)
    assert {w.template for w in wls} == {"conv2d_nchwc"}
    assert len(PRESETS["resnet18"].layers) == 12


def test_layer_selection():
    assert [w.name for w in parse_workloads("resnet18:3")] == ["resnet18:3"]
    assert [w.name for w in parse_workloads("resnet18:2-5")] == [
        "resnet18:2", "resnet18:3", "resnet18:4", "resnet18:5"]
    assert parse_layers("1,3-4,3", 12, "x") == [1, 3, 4]
    for bad in ("resnet18:0", "resnet18:13", "resnet18:5-2", "resnet18:a", "resnet50"):
        with pytest.raises(TuningError):
            parse_workloads(bad)


def test_op_shapes_and_defaults():
    w = parse_op_shape("conv2d", "1,64,56,56,64,3,3")
    assert w.shape[-2:] == (1, 0) and w.template == "conv2d_nchwc"
    assert parse_op_shape("depthwise", "1,32,28,28,3,1,1").template == "depthwise_conv2d"
    for op, shape in (("dense", "1,2"), ("dense", "1,2,3,4"), ("dense", "a,b,c"),
                      ("dense", "0,4,4"), ("conv2d", "1,2,3"), ("nope", "1")):
        with pytest.raises(TuningError):
            parse_op_shape(op, shape)


def test_targets_are_table_driven():
    assert OPS["conv2d"].templates["vta"] == "vta_conv2d"
    assert parse_workloads("resnet18:1", target="vta")[0].template == "vta_conv2d"
    assert parse_op_shape("dense", "16,16,16", target="vta").args[-1] == "int8"
    with pytest.raises(TuningError, match="no template for target 'vta'"):
        parse_op_shape("depthwise", "1,8,8,8,3", target="vta")
    with pytest.raises(TuningError, match="unknown target"):
        parse_op_shape("dense", "8,8,8", target="cuda")


# --------------------------------------------------------------------------- VTA
def test_vta_skips_unsupported_layers_and_measures_simulated_cycles(fake, tmp_path,
                                                                   monkeypatch):
    """resnet18:1 (3 input channels) is skipped with one warning; VTA tasks are measured by
    VTAMeasurer (in process, cost = simulated seconds, identical repeats), not LocalMeasurer."""
    from tiletune.tuner.measure.vta import VTAMeasurer
    from tiletune.tuner.session import measurer_class

    assert measurer_class("vta") is VTAMeasurer and measurer_class("llvm") is fake
    made = []

    class Spy(VTAMeasurer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(get_target("vta"), "measurer", Spy)
    (layer1,) = parse_workloads("resnet18:1", target="vta")
    assert "C=3" in layer1.unsupported_reason()
    small = parse_op_shape("conv2d", "1,16,8,8,16,3,3,1,1", target="vta")
    assert small.unsupported_reason() is None
    messages = []

    class Rep(Reporter):
        def message(self, text):
            messages.append(text)

    s = tune(tmp_path, [layer1, small], trials=4, reporter=Rep())
    warn = [m for m in messages if "skipping" in m]
    assert len(warn) == 1 and "resnet18:1" in warn[0] and "C=3" in warn[0]
    skipped, done = s.results
    assert skipped.status == "skipped" and "unsupported on vta" in skipped.stop_reason
    assert done.status == "done" and done.trials == 4 and done.speedup >= 1.0
    assert fake.calls == [] and len(made) == 1  # no worker-process measurer for VTA
    recs = load_records(tmp_path / "r.jsonl")[0]
    assert recs and all(len(set(r["costs"])) == 1 for r in recs)  # deterministic cycles
    assert s.exit_code == 0 and s.unsolved == []
    with pytest.raises(TuningError, match="nothing to tune.*resnet18:1"):
        tune(tmp_path, [layer1])


def test_find_by_template_names_preset_layers():
    assert find_by_template("conv2d_nchwc", (1, 512, 7, 7, 512, 3, 3, 1, 1, "float32")
                            ).name == "resnet18:12"
    assert find_by_template("dense", (8, 8, 8, "float32")).name == "dense:8,8,8"
    assert find_by_template("unknown", ()) is None
    assert isinstance(DENSE, Workload)


# --------------------------------------------------------------------------- transfer
def _history(tmp_path, fake, shape="16,32,32"):
    """Records of another dense shape, made by a (fake) tuning session."""
    path = tmp_path / "history.jsonl"
    tune_workloads([parse_op_shape("dense", shape)], trials=24, batch_size=8,
                   tuner="random", records=path)
    fake.calls.clear()
    return path


def test_transfer_history_uses_other_workloads_of_the_template(fake, tmp_path):
    from tiletune.tuner.session import transfer_history

    path = _history(tmp_path, fake)
    recs = load_records(path)[0]
    conv = {**recs[0], "workload": 'conv2d_nchwc(1,8,8,8,8,1,1,1,0,"float32")@llvm'}
    own = {**recs[1], "workload": DENSE.task().workload_key}
    featurize, history = transfer_history(TunerContext(DENSE.task(), history=recs + [conv, own]))
    (x, y), = history  # one other dense workload; the conv2d and own records are ignored
    assert x.shape == (len(recs), featurize([0]).shape[1]) and (y > 0).all()
    with pytest.raises(TuningError, match="no records of other dense"):
        transfer_history(TunerContext(DENSE.task(), history=[own]))


def test_transfer_tuner_tunes_with_history(fake, tmp_path):
    path = _history(tmp_path, fake)
    s = tune(tmp_path, tuner="transfer", transfer_from=[path], trials=16)
    assert s.results[0].trials == 16 and s.exit_code == 0
    assert {r["tuner"] for r in load_records(tmp_path / "r.jsonl")[0]} >= {"transfer"}
