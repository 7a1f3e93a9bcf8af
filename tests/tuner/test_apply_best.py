"""apply_history_best: best record per workload, dispatch into library builds, one warning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import tiletune as tt
from tiletune.schedules import conv2d, dense, dispatch
from tiletune.tuner import MeasureInput, MeasureResult, RecordWriter, Task, template
from tiletune.tuner.records.apply_best import UntunedWarning, apply_history_best

CONV = (1, 16, 8, 8, 32, 3, 3, 1, 1)


def _write(path, task, entries):
    """entries: (config dict, cost or error class)."""
    inputs, results = [], []
    for cfg, outcome in entries:
        inputs.append(MeasureInput(task.workload_key, task.space.index_of(cfg), cfg))
        results.append(MeasureResult.failure(outcome, "x") if isinstance(outcome, str)
                       else MeasureResult.success([outcome]))
    RecordWriter(path, template=task.name).write(inputs, results)


@pytest.fixture
def records(tmp_path):
    task = Task("conv2d", CONV)
    w = conv2d.Conv2dWorkload(*CONV)
    base = conv2d.default_config(w)
    fast = dict(base, reg_n=4, oc_bn=16, parallel="none")
    slow = dict(base, reg_n=2)
    failed = dict(base, reg_n=1)
    path = tmp_path / "conv.jsonl"
    _write(path, task, [(slow, 2e-3), (fast, 1e-3), (failed, "BuildError")])
    with open(path, "a") as f:
        f.write('{"workload": "broken\n')  # a corrupt line, skipped and reported
    return path, w, fast


def test_best_config_is_used_inside_the_block(records, monkeypatch):
    path, w, fast = records
    seen = []
    real = conv2d._check
    monkeypatch.setattr(conv2d, "_check", lambda w_, cfg: (seen.append(dict(cfg)), real(w_, cfg)))
    with pytest.warns(UserWarning, match="skipped 1 unusable record line"):
        with apply_history_best(path) as ctx:
            f = conv2d.build(w)
    assert seen[-1] == fast
    assert ctx.best_cost(Task("conv2d", CONV).workload_key) == 1e-3
    conv2d.build(w)
    assert seen[-1] == conv2d.default_config(w)  # outside the block: default again
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1, 16, 8, 8)).astype("float32")
    weight = rng.standard_normal((32, 16, 3, 3)).astype("float32")
    out = np.empty((1, 32, 8, 8), "float32")
    f(data, conv2d.pack_weight(weight, fast), out)
    np.testing.assert_allclose(out, conv2d.reference(data, weight, 1, 1), rtol=1e-4, atol=1e-4)


def test_untuned_workloads_are_named_in_one_warning(records):
    path, w, _ = records
    other = conv2d.Conv2dWorkload(1, 8, 6, 6, 8, 1, 1, 1, 0)
    dw = dense.DenseWorkload(8, 16, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with apply_history_best(path):
            conv2d.schedule(w)
            conv2d.schedule(other)
            conv2d.schedule(other)
            dense.schedule(dw)
    untuned = [c for c in caught if issubclass(c.category, UntunedWarning)]
    assert len(untuned) == 1
    msg = str(untuned[0].message)
    assert "2 workload(s)" in msg and other.key() in msg and dw.key() in msg
    assert f"tiletune tune --op conv2d --shape 1,8,6,6,8,1,1,1,0 --records {path}" in msg
    assert f"tiletune tune --op dense --shape 8,16,4 --records {path}" in msg
    assert w.key() not in msg


def test_records_that_no_longer_fit_are_rejected(tmp_path):
    task = Task("dense", (8, 16, 4))
    w = dense.DenseWorkload(8, 16, 4)
    good = dense.default_config(w)
    path = tmp_path / "d.jsonl"
    _write(path, task, [(good, 5e-6)])
    rec = json.loads(path.read_text())
    rec["config"]["mr"], rec["costs"] = 3, [1e-6]  # faster, but mr=3 is not a choice any more
    path.write_text(path.read_text() + json.dumps(rec) + "\n")
    ctx = apply_history_best([path])
    assert ctx.configs[w.key()] == good and ctx.best[task.workload_key]["costs"] == [5e-6]


@template("test_apply_matmul")
def matmul(cfg, N, L, M):
    A = tt.placeholder((N, L), "float32", name="A")
    B = tt.placeholder((L, M), "float32", name="B")
    k = tt.reduce_axis(L, name="k")
    C = tt.compute((N, M), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    cfg.define_split("tile_x", s[C].axis[1], num_outputs=2)
    cfg["tile_x"].apply(s[C], s[C].axis[1])
    return s, [A, B, C]


def test_user_template_tasks_use_the_best_record(tmp_path):
    task = Task("test_apply_matmul", (16, 8, 12))
    best = task.space.get(3)
    records = [{"workload": task.workload_key, "config": best.to_json(), "costs": [1e-6],
                "error": None}]
    with dispatch.push(apply_history_best(records)):
        assert task.best_or_default().index == 3
        s, args = task.instantiate()
    assert task.best_or_default().index == 0  # no default config: the first valid one
    f = tt.build(s, args)
    a, b = task.make_inputs(0)
    c = np.empty((16, 12), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_nchw_records_do_not_reach_the_nchwc_build(tmp_path):
    """conv2d_nchw and conv2d_nchwc share the workload class: a faster NCHW record must not
    be handed to ``conv2d.build`` (it would get a config of another template)."""
    w = conv2d.Conv2dWorkload(*CONV)
    nchwc, nchw = Task("conv2d", CONV), Task("conv2d_nchw", CONV)
    from tiletune.schedules import conv2d_nchw
    path = tmp_path / "both.jsonl"
    _write(path, nchwc, [(conv2d.default_config(w), 2e-3)])
    _write(path, nchw, [(conv2d_nchw.default_config(w), 1e-3)])
    with apply_history_best(path) as ctx:
        assert dispatch.query(w.key(), w) == conv2d.default_config(w)
        assert ctx.best_cost(nchw.workload_key) == 1e-3
