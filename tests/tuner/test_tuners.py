"""Tuners and the tune loop on a synthetic conv2d landscape with a known optimum."""

import time

import numpy as np
import pytest

from tiletune.errors import TuningError
from tiletune.tuner import (
    ConfigSpace,
    GridSearchTuner,
    MeasureResult,
    NumpyCostModel,
    RandomTuner,
    Tuner,
    XGBTuner,
)


def proposals(tuner, measure, n_batches, batch=8, flop=0.0):
    out = []
    for _ in range(n_batches):
        idx = tuner.next_batch(batch)
        tuner.update(idx, measure(idx), flop)
        out.append(idx)
    return out


def trials_to_reach(tuner, landscape, target, budget, batch_size=8):
    """Trials until a config within ``target`` cost is measured (``budget`` if never)."""
    def stop_when_hit(t, indices, results):
        if t.best_cost <= target:
            t.stop("target reached")

    tuner.tune(landscape.measure, budget, flop=landscape.flop, batch_size=batch_size,
               callbacks=[stop_when_hit])
    return len(tuner.visited) if tuner.best_cost <= target else budget


def test_random_tuner_is_seeded(landscape):
    a = proposals(RandomTuner(landscape.space, seed=1), landscape.measure, 5)
    b = proposals(RandomTuner(landscape.space, seed=1), landscape.measure, 5)
    c = proposals(RandomTuner(landscape.space, seed=2), landscape.measure, 5)
    assert a == b != c
    flat = [i for batch in a for i in batch]
    assert len(set(flat)) == 40 and all(landscape.space.is_valid(i) for i in flat)


def test_xgb_tuner_is_seeded(landscape):
    def run(seed):
        tuner = XGBTuner(landscape.space, seed=seed, plan_size=16)
        return proposals(tuner, landscape.measure, 6, flop=landscape.flop), tuner

    (a, tuner), (b, _), (c, _) = run(3), run(3), run(4)
    assert tuner.n_fits == 5  # refit after every batch once 16 samples are in
    assert a == b != c


def test_xgb_beats_random(landscape, landscape_best):
    """Within 95% of the best: XGB needs clearly fewer trials than random on average."""
    target = landscape_best / 0.95
    seeds = range(4)
    rand = [trials_to_reach(RandomTuner(landscape.space, seed=s), landscape, target, 800)
            for s in seeds]
    xgb = [trials_to_reach(XGBTuner(landscape.space, seed=s, plan_size=32), landscape,
                           target, 800) for s in seeds]
    assert np.mean(xgb) < 0.5 * np.mean(rand), (xgb, rand)
    assert max(xgb) < 800


def test_xgb_with_numpy_model_beats_random(landscape, landscape_best):
    target = landscape_best / 0.9
    rand = [trials_to_reach(RandomTuner(landscape.space, seed=s), landscape, target, 600)
            for s in range(3)]
    np_model = [trials_to_reach(
        XGBTuner(landscape.space, seed=s, plan_size=32, cost_model=NumpyCostModel(seed=s)),
        landscape, target, 600) for s in range(3)]
    assert np.mean(np_model) < 0.6 * np.mean(rand), (np_model, rand)


def test_xgb_on_a_large_space_uses_annealing():
    space = ConfigSpace()
    for k in range(5):
        space.define_split(f"s{k}", 720)  # 30 divisors each: 24.3 M configs
    space.add_constraint(lambda c: c["s0"].size[-1] <= 360, "s0 inner <= 360")

    def measure(indices):
        d = space.knob_features(indices)[:, 1::2]  # log2 of the inner factors
        return [MeasureResult.success([1.0 + float(np.abs(row - 3.0).sum())]) for row in d]

    tuner = XGBTuner(space, seed=0, plan_size=16, sa_options={"n_iter": 60, "n_chains": 32})
    summary = tuner.tune(measure, 64, batch_size=16)
    assert summary.n_measured == 64 and tuner.n_fits == 4  # after every batch
    assert tuner.sa.points is not None and len(tuner.visited) == 64
    assert tuner.best_cost < min(r.mean for r in tuner.results[:16])


def test_exhausting_a_small_space_measures_each_config_once():
    space = ConfigSpace()
    space.define_knob("a", list(range(6)))
    space.define_knob("b", list(range(5)))
    space.add_constraint(lambda c: c["a"].val != c["b"].val, "a != b")
    measured = []

    def measure(indices):
        measured.extend(indices)
        return [MeasureResult.success([1.0 + i % 4]) for i in indices]

    for tuner in (XGBTuner(space, seed=0, plan_size=4), RandomTuner(space),
                  GridSearchTuner(space)):
        measured.clear()
        summary = tuner.tune(measure, 100, batch_size=4)
        assert sorted(measured) == list(space.valid_indices())
        assert summary.n_measured == 25 and "exhausted" in tuner.stop_reason
        assert tuner.best_cost == 1.0


def test_grid_search_order(landscape):
    tuner = GridSearchTuner(landscape.space)
    valid = landscape.space.valid_indices()
    assert tuner.next_batch(5) == list(valid[:5])
    tuner.update([int(valid[6])], landscape.measure([int(valid[6])]))
    assert tuner.next_batch(3) == [int(valid[5]), int(valid[7]), int(valid[8])]


def test_early_stopping(landscape):
    tuner = RandomTuner(landscape.space, seed=0)
    summary = tuner.tune(landscape.measure, 5000, batch_size=8, early_stopping=24)
    assert "no improvement in the last" in summary.stop_reason
    best_at = next(k for k, r in enumerate(tuner.results) if r.mean == tuner.best_cost) + 1
    assert 24 <= summary.n_measured - best_at < 24 + 8


def test_time_budget(landscape):
    def slow(indices):
        time.sleep(0.05)
        return landscape.measure(indices)

    tuner = RandomTuner(landscape.space, seed=0)
    summary = tuner.tune(slow, 5000, batch_size=4, time_budget=0.3)
    assert summary.stop_reason == "time budget of 0.3 s reached"
    assert 4 <= summary.n_measured <= 40 and summary.elapsed < 1.5


def test_consecutive_failures_stop_with_an_explanation(landscape):
    def broken(indices):
        return [MeasureResult.failure("BuildError", "LLVM ERROR: bad target") for _ in indices]

    tuner = RandomTuner(landscape.space, seed=0)
    summary = tuner.tune(broken, 1000, batch_size=8, max_consecutive_failures=50)
    assert summary.n_measured == 56 and summary.n_failed == 56
    assert summary.stop_reason == ("56 consecutive failures: last error BuildError: "
                                   "LLVM ERROR: bad target")
    assert tuner.best_index is None and summary.best_cost == float("inf")


def test_xgb_survives_all_failures_then_success(landscape):
    """No successes yet: the model stays unfitted and the tuner keeps sampling randomly."""
    calls = []

    def flaky(indices):
        calls.append(indices)
        if len(calls) <= 3:
            return [MeasureResult.failure("RunTimeout", "slow") for _ in indices]
        return landscape.measure(indices)

    tuner = XGBTuner(landscape.space, seed=0, plan_size=8)
    tuner.tune(flaky, 64, batch_size=8)
    assert tuner.n_fits > 0 and tuner.best_index is not None


def test_resume_feeds_update_first_and_never_remeasures(landscape):
    first = XGBTuner(landscape.space, seed=0, plan_size=16)
    first.tune(landscape.measure, 48, flop=landscape.flop, batch_size=8)
    done = dict(zip(first.xs, first.results))

    landscape.calls.clear()
    second = XGBTuner(landscape.space, seed=0, plan_size=16)
    summary = second.tune(landscape.measure, 80, flop=landscape.flop, batch_size=8,
                          resume_from=done)
    measured = [i for b in landscape.calls for i in b]
    assert len(measured) == 32 and not set(measured) & set(done)
    assert summary.n_measured == 80 and second.n_fits >= 4
    assert second.best_cost <= first.best_cost


def test_callbacks_see_every_batch_and_can_stop(landscape):
    seen = []

    def cb(tuner, indices, results):
        seen.append((list(indices), len(results)))
        if len(tuner.visited) >= 20:
            tuner.stop("enough for now")

    summary = RandomTuner(landscape.space, seed=0).tune(landscape.measure, 100, batch_size=5,
                                                        callbacks=[cb])
    assert [n for _, n in seen] == [5, 5, 5, 5] and summary.stop_reason == "enough for now"


def test_best_tracking_and_flops(landscape):
    tuner = RandomTuner(landscape.space, seed=0)
    summary = tuner.tune(landscape.measure, 40, flop=landscape.flop, batch_size=8)
    ok = [(r.mean, i) for i, r in zip(tuner.xs, tuner.results) if r.ok]
    assert (summary.best_cost, summary.best_index) == min(ok)
    assert summary.best_flops == pytest.approx(landscape.flop / summary.best_cost)
    assert summary.stop_reason == "trial budget of 40 reached"
    assert tuner.ys[tuner.xs.index(summary.best_index)] == pytest.approx(summary.best_flops)


def test_measure_must_return_one_result_per_config(landscape):
    with pytest.raises(TuningError, match="returned 1 results for a batch of 4"):
        RandomTuner(landscape.space).tune(lambda idx: landscape.measure(idx[:1]), 8,
                                          batch_size=4)


def test_base_tuner_contract(landscape):
    class Fixed(Tuner):
        def next_batch(self, n):
            return [0, 0, 1][:n]  # duplicates are dropped by tune()

    calls = []
    tuner = Fixed(landscape.space, seed=0)
    assert tuner.featurize == landscape.space.knob_features
    tuner.tune(lambda idx: calls.append(idx) or landscape.measure(idx), 10, batch_size=3)
    assert calls == [[0, 1]] and "exhausted" in tuner.stop_reason
    with pytest.raises(TuningError, match="2 indices but 1 results"):
        tuner.update([1, 2], landscape.measure([1]))


def test_xgb_rejects_unknown_feature_names(landscape):
    with pytest.raises(TuningError, match="featurize function"):
        XGBTuner(landscape.space, feature="itervar")
    tuner = XGBTuner(landscape.space, feature=lambda idx: landscape.space.knob_features(idx)[:, :4])
    assert tuner.features([1, 2, 1]).shape == (3, 4)
