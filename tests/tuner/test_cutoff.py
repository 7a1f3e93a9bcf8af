"""The cutoff, cut results and the confirmation rounds, decided on simulated kernels.

No timing is asserted: fake kernels report simulated seconds (a slow, cold first call and
fast warm calls), and the tests check the decisions taken from them.
"""

from __future__ import annotations

import io
import json
import math

import pytest

from tiletune.runtime.timing import measure
from tiletune.tuner import RandomTuner, Task
from tiletune.tuner.measure.local import LocalMeasurer, MeasureOption
from tiletune.tuner.measure.result import MeasureInput, MeasureResult
from tiletune.tuner.measure.worker import time_candidate
from tiletune.tuner.records.apply_best import apply_history_best
from tiletune.tuner.records.store import (
    RecordWriter,
    best_records,
    load_records,
    measured_configs,
)
from tiletune.tuner.session import default_index, tune_workloads
from tiletune.tuner.session.progress import LogReporter
from tiletune.tuner.session.run import CONFIRM_ROUNDS, confirm_rounds
from tiletune.tuner.session.workloads import parse_op_shape
from tiletune.tuner.targets.registry import get_target

US = 1e-6


class FakeKernel:
    """A module whose first call is cold (``cold`` s) and every later call warm (``warm``
    s); it reports those simulated durations, nothing is timed."""

    def __init__(self, warm: float, cold: float) -> None:
        self.warm, self.cold, self.calls = warm, cold, 0
        self.evaluators: list[tuple[int, int, float]] = []  # (number, repeat, min_ms)

    def _call(self) -> float:
        self.calls += 1
        return self.cold if self.calls == 1 else self.warm

    def __call__(self, *arrays: object) -> None:
        self._call()

    def time_evaluator(self, number: int, repeat: int, min_repeat_ms: float = 0,
                       flush_cache: bool = False):
        self.evaluators.append((number, repeat, min_repeat_ms))

        def timer(n: int) -> float:
            return sum(self._call() for _ in range(n)) / n

        def evaluate(*arrays: object):
            self._call()  # the evaluator's warm-up call
            return measure(timer, (), number, repeat, min_repeat_ms, flush_cache)

        return evaluate


def options(**kw: object) -> dict:
    opts = {"number": 4, "repeat": 3, "min_repeat_ms": 1.0, "flush_cache": False,
            "max_repeat_ms": 25.0, "cutoff": 5.0}
    return opts | kw


def first_call(kernel: FakeKernel) -> float:
    """The worker's correctness call: the cold one."""
    kernel()
    return kernel.cold


def test_a_cold_first_call_never_cuts_a_fast_kernel():
    # 100 us cold, 10 us warm, best so far 8 us: the old rule (first call > 5 x best) cut it
    k = FakeKernel(warm=10 * US, cold=100 * US)
    costs, cut = time_candidate(k, [], options(), first_call(k), best=8 * US)
    assert not cut and len(costs) == 3
    assert all(c == pytest.approx(10 * US) for c in costs)


def test_a_slow_warm_repeat_is_cut_after_one_repeat():
    k = FakeKernel(warm=60 * US, cold=200 * US)
    costs, cut = time_candidate(k, [], options(), first_call(k), best=8 * US)
    assert cut and len(costs) == 1 and costs[0] == pytest.approx(60 * US)
    assert len(k.evaluators) == 1  # no further repeats


@pytest.mark.parametrize("best, cutoff", [(0.0, 5.0), (8 * US, None)])
def test_no_cut_without_a_reference_or_a_cutoff(best, cutoff):
    # best = 0: the default config and the confirmation rounds (measure_full)
    k = FakeKernel(warm=60 * US, cold=200 * US)
    costs, cut = time_candidate(k, [], options(cutoff=cutoff), first_call(k), best=best)
    assert not cut and len(costs) == 3


def test_number_grows_until_a_repeat_lasts_min_repeat_ms():
    k = FakeKernel(warm=2 * US, cold=50 * US)
    costs, cut = time_candidate(k, [], options(min_repeat_ms=1.0), first_call(k), best=0.0)
    (n1, r1, m1), (n2, r2, m2) = k.evaluators
    assert (r1, r2) == (1, 2) and m1 == m2 == 1.0
    assert n2 * 2 * US >= 1e-3  # the later repeats use the probe's grown number
    assert not cut and len(costs) == 3


def test_long_calls_lower_number_but_never_below_one():
    k = FakeKernel(warm=30e-3, cold=40e-3)
    time_candidate(k, [], options(min_repeat_ms=1.0), first_call(k), best=0.0)
    assert k.evaluators[0][0] == 1


def test_measure_full_turns_the_cutoff_off():
    seen = []

    class Stub:
        _full = False

        def __call__(self, indices):
            seen.append(self._full)
            return []

    stub = Stub()
    LocalMeasurer.measure_full(stub, [1, 2])  # type: ignore[arg-type]
    stub([3])
    assert seen == [True, False]


def test_min_repeat_ms_none_is_the_hosts():
    from tiletune.tuner.measure.host_timing import FLOOR_MS, host_min_repeat_ms

    assert MeasureOption().resolved_min_repeat_ms() == host_min_repeat_ms() >= FLOOR_MS
    assert MeasureOption(min_repeat_ms=0).resolved_min_repeat_ms() == 0.0


# ----------------------------------------------------------------- cut results are no best
def cut(cost: float) -> MeasureResult:
    return MeasureResult.success([cost], cut=True)


def test_a_cut_result_is_never_the_tuners_best():
    space = Task("dense", (8, 8, 8)).space
    t = RandomTuner(space, seed=0)
    t.update([0, 1, 2], [MeasureResult.success([5e-5]), cut(1e-6),
                         MeasureResult.success([4e-5])])
    assert t.best_index == 2 and t.best_cost == 4e-5
    assert list(t.censored()) == [False, True, False]
    assert not cut(1e-6).usable and "cut" in cut(1e-6).describe()


def _write(path, task, entries):
    inputs = [MeasureInput(task.workload_key, i, task.space.get(i).to_json())
              for i, _ in entries]
    RecordWriter(path, template=task.name).write(inputs, [r for _, r in entries])


def test_cut_records_are_marked_and_never_applied(tmp_path):
    task = Task("dense", (8, 16, 4))
    path = tmp_path / "r.jsonl"
    a, b = task.space.valid_indices()[:2]
    _write(path, task, [(int(a), MeasureResult.success([3e-6])), (int(b), cut(1e-7))])
    recs, problems = load_records(path)
    assert not problems and "cut" not in recs[0] and recs[1]["cut"] is True
    assert best_records(recs)[task.workload_key]["index"] == a
    resumed = measured_configs(recs, task.workload_key, task.space)
    assert resumed[int(b)].cut and not resumed[int(a)].cut
    with apply_history_best(path) as ctx:
        assert ctx.best[task.workload_key]["index"] == a
        assert ctx.best_cost(task.workload_key) == pytest.approx(3e-6)


# --------------------------------------------------------------------- session: resume, confirm
DENSE = parse_op_shape("dense", "32,32,32")


class CuttingMeasurer:
    """The search sees every config but the default cut at a flattering 1 ns (as a broken
    cutoff would report it); full measurements (``measure_full``) give the true cost."""

    calls: list[tuple[str, list[int]]] = []
    default: int = -1

    def __init__(self, task, option=None, seed=0) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    @staticmethod
    def cost(i: int) -> float:
        return 1e-4 * (1 + (i * 7919 % 97) / 97)

    def __call__(self, indices):
        CuttingMeasurer.calls.append(("search", list(indices)))
        return [MeasureResult.success([self.cost(i)]) if i == self.default or i % 3 else
                cut(1e-9) for i in indices]

    def measure_full(self, indices):
        CuttingMeasurer.calls.append(("full", list(indices)))
        return [MeasureResult.success([self.cost(i)]) for i in indices]


@pytest.fixture
def cutting(monkeypatch):
    CuttingMeasurer.calls = []
    CuttingMeasurer.default = default_index(DENSE.task())
    monkeypatch.setattr(get_target("llvm"), "measurer", CuttingMeasurer)
    return CuttingMeasurer


def test_session_never_picks_a_cut_config_also_on_resume(cutting, tmp_path):
    kw = dict(records=tmp_path / "r.jsonl", trials=12, batch_size=4, tuner="random")
    s = tune_workloads([DENSE], confirm=False, **kw)
    r = s.results[0]
    assert cutting.calls[0] == ("full", [cutting.default])  # the default: never cut
    assert r.best_index is not None and r.best_index % 3  # not a cut (1 ns) config
    assert r.best_cost == pytest.approx(CuttingMeasurer.cost(r.best_index))
    cutting.calls.clear()
    s = tune_workloads([DENSE], confirm=False, resume=True, **kw)
    assert cutting.calls == [] and s.results[0].best_index == r.best_index


def test_confirmation_is_full_interleaved_and_reported(cutting, tmp_path):
    out = io.StringIO()
    s = tune_workloads([DENSE], records=tmp_path / "r.jsonl", trials=12, batch_size=4,
                       tuner="random", reporter=LogReporter(out))
    r = s.results[0]
    rounds = [c for c in cutting.calls if c[0] == "full"][1:]  # after the default
    assert len(rounds) == CONFIRM_ROUNDS and all(c == rounds[0] for c in rounds)
    assert rounds[0][1][0] == cutting.default and all(i % 3 for i in rounds[0][1][1:])
    assert r.confirmed and r.best_index in rounds[0][1]
    text = out.getvalue()
    assert all(f"confirming: round {k}/{CONFIRM_ROUNDS}" in text
               for k in range(1, CONFIRM_ROUNDS + 1))
    assert json.loads(json.dumps(s.to_json()))["workloads"][0]["confirmed"]


class Tuned:
    """What confirm_rounds reads of a tuner."""

    def __init__(self, measured: dict[int, float]) -> None:
        self.xs = list(measured)
        self.results = [MeasureResult.success([c]) for c in measured.values()]
        self.best_index = min(measured, key=measured.get)
        self.best_cost = measured[self.best_index]


def test_confirmation_explains_a_different_best():
    truth = {0: 10 * US, 1: 9 * US, 2: 20 * US, 3: 30 * US}  # 2 flattered by the search

    def full(indices):
        return [MeasureResult.success([truth[i]]) for i in indices]

    class M:
        measure_full = staticmethod(full)

        def __call__(self, indices):
            raise AssertionError("the confirmation must measure in full")

    rounds = []
    c = confirm_rounds(M(), Tuned({1: 9 * US, 2: 5 * US, 3: 30 * US}), 0,
                       lambda *a: None, lambda k, cand: rounds.append((k, cand)))
    assert c is not None and c.best_index == 1 and c.default_cost == 10 * US
    assert rounds == [(k, [0, 2, 1, 3]) for k in range(1, CONFIRM_ROUNDS + 1)]
    note = c.explanation(flop=0.0)
    assert "config 1" in note and "config 2" in note and "re-measured" in note
    truth[1] = 9.9 * US  # within CONFIRM_MARGIN of the default's 10 us: a tie, default kept
    tie = confirm_rounds(M(), Tuned({1: 9 * US, 3: 30 * US}), 0, lambda *a: None)
    assert tie is not None and tie.best_index == 0 and "default" in tie.explanation(0.0)
    truth[1] = 9 * US
    same = confirm_rounds(M(), Tuned({1: 9 * US, 3: 30 * US}), 0, lambda *a: None)
    assert same is not None and same.explanation(0.0) == ""
    assert math.isfinite(same.best_cost)


def test_cost_models_learn_cut_results_as_censored():
    space = Task("dense", (8, 8, 8)).space
    t = RandomTuner(space, seed=0)
    full = [MeasureResult.success([c]) for c in (1.0, 2.0, 4.0, 8.0)]
    t.update([0, 1, 2, 3, 4, 5], [*full, cut(3.0), cut(16.0)], flops=8.0)
    y = t.training_targets()
    assert list(y[:4]) == [8.0, 4.0, 2.0, 1.0]  # measured: as measured
    # cut at 3 s (<= 8/3 flop/s): the median of the measured configs at least that slow
    assert y[4] == pytest.approx(1.5)
    assert y[5] == pytest.approx(0.5)  # nothing measured that slow: its bound is kept
