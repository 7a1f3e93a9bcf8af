"""A quantized graph is tuned like an fp32 one: its int8 conv/dense layers are tasks of
``extract_tasks``, the tuner measures them, and their records change the built kernels
(which stay bit-exact against the NumPy integer reference)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")

from tests.compress.test_quantize_graph import _all_int8_model, _inputs  # noqa: E402
from tiletune import frontend, graph  # noqa: E402
from tiletune.compress import quantize_graph, run_reference  # noqa: E402
from tiletune.graph.build_graph import compile_graph  # noqa: E402
from tiletune.graph.tasks import extract_tasks  # noqa: E402
from tiletune.schedules import int8_conv2d  # noqa: E402


@pytest.fixture(scope="module")
def qgraph():
    g = frontend.from_onnx(_all_int8_model())
    return quantize_graph(g, _inputs((1, 8, 8, 8), 3), method="minmax").graph


def test_int8_layers_are_tasks(qgraph):
    tasks = extract_tasks(qgraph)
    assert [t.template for t in tasks].count("int8_conv2d") == 3
    assert [t.template for t in tasks].count("int8_dense") == 1
    assert sum(t.share for t in tasks) == pytest.approx(1.0)
    conv = tasks[0]
    assert conv.kind == "int8 conv2d" and conv.args[:9] == (1, 8, 8, 8, 16, 3, 3, 1, 1)
    assert "int8 conv2d 1x8x8x8 k16 3x3" in conv.describe()


def _other_config(task) -> dict:
    """A valid config of the task's template that is not its default."""
    w = int8_conv2d.Int8Conv2dWorkload(*task.args)
    default = int8_conv2d.default_config(w)
    sp = int8_conv2d.space(w)
    for oc_bn in sp["oc_bn"]:
        for reg_n in sp["reg_n"]:
            cfg = {**default, "oc_bn": oc_bn, "reg_n": reg_n, "parallel": "none"}
            if oc_bn != default["oc_bn"] and int8_conv2d.is_valid(w, cfg):
                return cfg
    raise AssertionError("no second config")


def test_records_change_the_int8_kernel_and_stay_bit_exact(qgraph, tmp_path):
    task = extract_tasks(qgraph)[0]
    cfg = _other_config(task)
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"workload": task.key, "config": cfg, "costs": [1e-6],
                                "error": None}) + "\n")
    node = task.nodes[0]
    default_plan = compile_graph(qgraph)[0].node(node)["plan"]
    tuned_plan = compile_graph(qgraph, str(path))[0].node(node)["plan"]
    assert not default_plan.tuned and tuned_plan.tuned and tuned_plan.config == cfg
    m_default, m_tuned = graph.build(qgraph), graph.build(qgraph, records=str(path))
    assert m_tuned.meta["tuned_kernels"] == 1 and m_default.meta["tuned_kernels"] == 0
    packed = [c.shape for c in m_tuned.constants if c.ndim == 6]
    assert any(s[-1] == cfg["oc_bn"] for s in packed), packed  # weights packed for cfg
    for seed in (1, 2):
        x = _inputs((1, 8, 8, 8), 1, seed)[0]
        ref = run_reference(qgraph, x)[0]
        np.testing.assert_array_equal(m_tuned(x), ref)
        np.testing.assert_array_equal(m_default(x), ref)


def test_tuner_measures_an_int8_graph_task(qgraph, tmp_path):
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.session import tune_workloads
    from tiletune.tuner.templates.task import Task

    task = next(t for t in extract_tasks(qgraph) if t.template == "int8_dense")
    records = tmp_path / "r.jsonl"
    s = tune_workloads([Task(task.template, task.args)], trials=3, tuner="random",
                       records=str(records), option=MeasureOption(number=1, repeat=1,
                                                                  jobs=1, timeout=30),
                       confirm=False)
    assert s.exit_code == 0
    lines = [json.loads(x) for x in records.read_text().splitlines()]
    assert lines and all(r["workload"] == task.key for r in lines)
    assert any(r["error"] is None for r in lines)
    m = graph.build(qgraph, records=str(records))
    assert m.meta["tuned_kernels"] == 1
    x = _inputs((1, 8, 8, 8), 1, 3)[0]
    np.testing.assert_array_equal(m(x), run_reference(qgraph, x)[0])


def test_cli_tunes_compiles_and_runs_a_quantized_model(tmp_path, capsys):
    """``tune --model m.onnx --quantize`` tunes the int8 tasks; ``compile --model
    --quantize --records`` builds with them; the .tt runs; calibration from a .npy set."""
    import onnx

    from tests.graph.helpers import residual_model
    from tiletune.cli import main
    from tiletune.graph import load

    src, rec, out = tmp_path / "m.onnx", tmp_path / "r.jsonl", tmp_path / "m.tt"
    onnx.save(residual_model(c=8, seed=9), src)
    calib = np.random.default_rng(0).standard_normal((3, 1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    code = main(["tune", "--model", str(src), "--quantize", "percentile", "--calibration",
                 str(tmp_path / "calib.npy"), "--trials", "6", "--tuner", "random",
                 "--records", str(rec), "--jobs", "1", "--number", "1", "--repeat", "1",
                 "--no-evaluate", "--quiet"])
    assert code == 0
    keys = {json.loads(x)["workload"] for x in rec.read_text().splitlines()}
    assert keys and all(k.startswith(("int8_conv2d(", "int8_dense(")) for k in keys), keys
    capsys.readouterr()
    assert main(["compile", "--model", str(src), "--quantize", "percentile", "--calibration",
                 str(tmp_path / "calib.npy"), "--records", str(rec), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "layers int8" in err and " 0 tuned" not in err
    m = load(str(out))
    assert m.meta["tuned_kernels"] >= 1
    x = np.random.default_rng(5).standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert m(x).shape == (1, 10)
    assert main(["compile", "--model", str(src), "--calibration", "c.npy", "-o",
                 str(out)]) == 2
    assert "--calibration goes with --quantize" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", calib[:, 0, :2])
    assert main(["compile", "--model", str(src), "--quantize", "kl", "--calibration",
                 str(tmp_path / "bad.npy"), "-o", str(out)]) == 2
    assert "expected (n, 1, 3, 8, 8)" in capsys.readouterr().err
