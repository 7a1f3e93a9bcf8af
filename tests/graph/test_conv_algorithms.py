"""The graph build picks each conv node's algorithm (direct NCHWc, Winograd, im2col) from the
``conv2d_auto_fused`` records: the kernels read the graph's layouts, fuse the epilogue and
match onnxruntime; old direct records still apply; records round-trip."""
from __future__ import annotations

import numpy as np
import pytest

from tests.graph.helpers import check_model
from tiletune import frontend
from tiletune.frontend.builder import OnnxBuilder
from tiletune.graph.tasks import extract_tasks
from tiletune.schedules import conv2d, conv2d_auto
from tiletune.tuner import MeasureInput, MeasureResult, RecordWriter, Task
from tiletune.tuner.records.apply_best import apply_history_best


def _model():
    """conv3x3+relu (16->32), conv3x3 + skip + relu (32->32), conv1x1 s2 + relu (32->16)."""
    b = OnnxBuilder("algos", (1, 16, 10, 10), seed=3)
    x = b.relu(b.conv(b.input, 32, 3, 1, 1))
    y = b.relu(b.add(b.conv(x, 32, 3, 1, 1), x))
    return b.finish(b.relu(b.conv(y, 16, 1, 2, 0)))


def _write(path, entries):
    for (template, args), cfg in entries:
        task = Task(template, args)
        RecordWriter(path, template=template).write(
            [MeasureInput(task.workload_key, task.space.index_of(cfg), cfg)],
            [MeasureResult.success([1e-3])])


def _algorithm_config(task, name):
    w = conv2d.Conv2dWorkload(*task.args[:9], task.args[-1])
    ic_bn, oc_bn = task.args[10:12]
    cfg = conv2d_auto.fused_algorithm_default(w, name, ic_bn, oc_bn)
    return {"algorithm": name, "schedule": cfg}


def test_tasks_cover_the_combined_space():
    tasks = extract_tasks(frontend.from_onnx(_model()))
    assert [t.template for t in tasks] == ["conv2d_auto_fused"] * 3
    first = next(t for t in tasks if t.args[7] == 1 and t.args[5] == 3)
    space = Task(first.template, first.args).space
    assert [e.val for e in space.knobs["algorithm"].entities] == ["nchwc", "winograd", "im2col"]
    pointwise = next(t for t in tasks if t.args[5] == 1)
    assert "winograd" not in [e.val for e in Task(pointwise.template, pointwise.args)
                              .space.knobs["algorithm"].entities]


@pytest.mark.parametrize("order", [("winograd", "im2col", "nchwc"),
                                   ("im2col", "nchwc", "winograd")])
def test_records_pick_each_algorithm_and_match_onnxruntime(tmp_path, order):
    model = _model()
    tasks = sorted(extract_tasks(frontend.from_onnx(model)), key=lambda t: t.nodes[0])
    picks = {}
    for task, name in zip(tasks, order):
        if name == "winograd" and task.args[5] != 3:
            name = "nchwc"
        picks[task.nodes[0]] = name
    entries = [((t.template, t.args), _algorithm_config(Task(t.template, t.args), picks[
        t.nodes[0]])) for t in tasks]
    path = tmp_path / "algos.jsonl"
    _write(path, entries)
    x = np.random.default_rng(0).standard_normal((1, 16, 10, 10)).astype("float32")
    _, m = check_model(model, x, records=str(path))
    assert m.meta["tuned_kernels"] == 3 and m.meta["untuned_kernels"] == 0
    from tiletune.graph.build_graph import compile_graph
    g, _ = compile_graph(frontend.from_onnx(model), str(path))
    chosen = {n: g.node(n)["plan"].config["algorithm"] for n in picks}
    assert chosen == picks
    # no layout transform between the convs: each reads its producer's blocked layout
    assert not [n for n in g.operators() if g.op(n) == "layout_transform"][1:]


def test_old_direct_records_still_apply(tmp_path):
    model = _model()
    tasks = extract_tasks(frontend.from_onnx(model))
    task = next(t for t in tasks if t.args[5] == 3 and t.args[9] == "NCHWc")
    old = Task("conv2d_nchwc_fused", task.args)
    cfg = old.space.get(int(old.space.valid_indices()[-1])).to_json()
    path = tmp_path / "old.jsonl"
    _write(path, [(("conv2d_nchwc_fused", task.args), cfg)])
    from tiletune.graph.build_graph import compile_graph
    g, _ = compile_graph(frontend.from_onnx(model), str(path))
    plan = g.node(task.nodes[0])["plan"]
    assert plan.tuned and plan.config == {"algorithm": "nchwc", "schedule": cfg}
    x = np.random.default_rng(1).standard_normal((1, 16, 10, 10)).astype("float32")
    check_model(model, x, records=str(path))


@pytest.mark.parametrize("name", ["nchwc", "winograd", "im2col"])
def test_auto_fused_records_round_trip_apply_history_best(tmp_path, name):
    args = (1, 16, 8, 8, 16, 3, 3, 1, 1, "NCHWc", 8, 8, "bias_residual_relu", "float32")
    task = Task("conv2d_auto_fused", args)
    winner = _algorithm_config(task, name)
    others = [_algorithm_config(task, a) for a in ("nchwc", "winograd", "im2col") if a != name]
    path = tmp_path / "auto.jsonl"
    inputs = [MeasureInput(task.workload_key, task.space.index_of(c), c)
              for c in others + [winner]]
    results = [MeasureResult.success([2e-3])] * len(others) + [MeasureResult.success([1e-3])]
    RecordWriter(path, template=task.name).write(inputs, results)
    with apply_history_best(path) as ctx:
        assert ctx.configs[task.workload_key] == winner
        s, tensors = task.instantiate()
    import tiletune as tt
    data = task.make_inputs(0)
    f = tt.build(s, tensors, opt_level=1)
    arrays, out_pos = task.prepare(winner, data, tensors)
    f(*arrays)
    assert task.check([arrays[i] for i in out_pos], task.reference(data)) is None
