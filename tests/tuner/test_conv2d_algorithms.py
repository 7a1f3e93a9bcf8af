"""The conv2d algorithm templates in the tuner: the combined space covers every applicable
algorithm, each algorithm's records round-trip through apply_history_best, and the
measurement harness checks each algorithm's kernel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tiletune.schedules import conv2d, conv2d_auto, grouped, im2col, winograd
from tiletune.tuner import MeasureInput, MeasureResult, RecordWriter, Task
from tiletune.tuner.records.apply_best import apply_history_best
from tiletune.tuner.session.workloads import parse_op_shape

CONV = (1, 8, 6, 6, 16, 3, 3, 1, 1)          # every algorithm applies
STRIDED = (1, 8, 8, 8, 16, 3, 3, 2, 1)       # no Winograd


def _write(path, task, entries):
    inputs, results = [], []
    for cfg, cost in entries:
        inputs.append(MeasureInput(task.workload_key, task.space.index_of(cfg), cfg))
        results.append(MeasureResult.success([cost]))
    RecordWriter(path, template=task.name).write(inputs, results)


def test_combined_space_is_the_union_of_the_algorithms():
    task = Task("conv2d_auto", CONV)
    w = conv2d.Conv2dWorkload(*CONV)
    sp = task.space
    assert sp.knobs["algorithm"].entities[0].val == "nchwc"
    names = [e.val for e in sp.knobs["algorithm"].entities]
    assert names == ["nchwc", "nchw", "winograd", "im2col"]
    expected = sum(len(conv2d_auto.algorithm_configs(w, n)) for n in names)
    assert sp.num_valid() == expected == len(sp.knobs["schedule"])
    seen = {sp.get(int(i)).to_json()["algorithm"] for i in sp.valid_indices()}
    assert seen == set(names)
    feats = sp.knob_features(sp.valid_indices())
    assert np.isfinite(feats).all() and feats.shape[1] > len(names)
    strided = Task("conv2d_auto", STRIDED).space
    assert [e.val for e in strided.knobs["algorithm"].entities] == ["nchwc", "nchw", "im2col"]


@pytest.mark.parametrize("algorithm", ["nchwc", "nchw", "winograd", "im2col"])
def test_records_of_each_algorithm_round_trip(tmp_path, algorithm):
    task = Task("conv2d_auto", CONV)
    w = conv2d.Conv2dWorkload(*CONV)
    module = conv2d_auto.ALGORITHMS[algorithm]
    winner = {"algorithm": algorithm, "schedule": module.default_config(w)}
    others = [{"algorithm": a, "schedule": conv2d_auto.ALGORITHMS[a].default_config(w)}
              for a in conv2d_auto.applicable(w) if a != algorithm]
    path = tmp_path / "auto.jsonl"
    _write(path, task, [(c, 2e-3) for c in others] + [(winner, 1e-3)])
    with apply_history_best(path):
        chosen, cfg = conv2d_auto.choose(w)
        assert chosen is module and cfg == winner["schedule"]
        f = conv2d_auto.build(w)
        s, _ = task.instantiate()  # Task.instantiate() without a config uses the record too
    rng = np.random.default_rng(0)
    data = rng.standard_normal((w.N, w.C, w.H, w.W)).astype("float32")
    weight = rng.standard_normal((w.K, w.C, 3, 3)).astype("float32")
    out = np.empty((w.N, w.K, w.OH, w.OW), "float32")
    f(data, conv2d_auto.pack_weight(weight, winner), out)
    np.testing.assert_allclose(out, conv2d.reference(data, weight, 1, 1), rtol=1e-4, atol=1e-4)


def test_single_algorithm_templates_round_trip(tmp_path):
    w = conv2d.Conv2dWorkload(*CONV)
    cases = [("conv2d_winograd", winograd, CONV, w, {**winograd.default_config(w), "tile": 2}),
             ("conv2d_im2col", im2col, CONV, w, {**im2col.default_config(w), "mr": 2})]
    gw = grouped.GroupedConv2dWorkload(1, 8, 6, 6, 16, 3, 3, 1, 1, 4, 1)
    cases.append(("grouped_conv2d", grouped, (1, 8, 6, 6, 16, 3, 3, 1, 1, 4, 1), gw,
                  {**grouped.default_config(gw), "reg_n": 3}))
    for name, module, args, wl, cfg in cases:
        task = Task(name, args)
        path = tmp_path / f"{name}.jsonl"
        _write(path, task, [(module.default_config(wl), 2e-3), (cfg, 1e-3)])
        seen = []
        real = module._check
        module._check = lambda w_, c, real=real: (seen.append(dict(c)), real(w_, c))
        try:
            with apply_history_best(path):
                module.schedule(wl)
        finally:
            module._check = real
        assert seen == [cfg], name


def test_the_harness_checks_every_algorithm():
    task = parse_op_shape("conv2d_auto", ",".join(map(str, CONV))).task()
    inputs = task.make_inputs(0)
    expected = task.reference(inputs)
    w = conv2d.Conv2dWorkload(*CONV)
    import tiletune as tt
    for name in conv2d_auto.applicable(w):
        cfg = {"algorithm": name, "schedule": conv2d_auto.ALGORITHMS[name].default_config(w)}
        s, tensors = task.instantiate(cfg)
        f = tt.build(s, tensors, opt_level=1)
        arrays, out_pos = task.prepare(cfg, inputs, tensors)
        f(*arrays)
        assert task.check([arrays[i] for i in out_pos], expected) is None, name


def test_untuned_workload_uses_the_heuristic(tmp_path):
    w = conv2d.Conv2dWorkload(1, 64, 14, 14, 64, 3, 3, 1, 1)
    module, cfg = conv2d_auto.choose(w)
    assert module is winograd and winograd.is_valid(w, cfg)
    module, _ = conv2d_auto.choose(conv2d.Conv2dWorkload(*STRIDED))
    assert module is not winograd
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with apply_history_best(empty) as ctx:
            conv2d_auto.choose(w)
        assert conv2d_auto.key(w) in ctx.misses
