"""The ONNX frontend's errors, the printer, the pass list and task extraction."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import tiletune as tt
from tests.graph.helpers import raw_model, residual_model
from tiletune import frontend
from tiletune.graph import Graph, passes
from tiletune.graph.tasks import extract_tasks, split_budget


def _sigmoid_model():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
             helper.make_node("Sigmoid", ["r"], ["y"], name="my_sigmoid")]
    return raw_model(nodes, [("x", (1, 4))], [("y", (1, 4))], {})


def test_unsupported_operator_names_op_node_and_set_and_builds_nothing(monkeypatch):
    def no_build(*a, **k):
        raise AssertionError("a graph node was built")
    monkeypatch.setattr(Graph, "add", no_build)
    with pytest.raises(tt.UnsupportedOperatorError) as e:
        frontend.from_onnx(_sigmoid_model())
    msg = str(e.value)
    assert "Sigmoid" in msg and "my_sigmoid" in msg and "supported:" in msg and "Conv" in msg


def test_malformed_and_truncated_files(tmp_path):
    good = residual_model(c=8).SerializeToString()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a model\xff\xff")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for p in (trunc, garbage, empty):
        with pytest.raises(tt.FrontendError):
            frontend.from_onnx(p)
    with pytest.raises(tt.FrontendError, match="no ONNX model"):
        frontend.from_onnx(tmp_path / "missing.onnx")


def test_old_opset_and_symbolic_batch():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(tt.FrontendError, match="opset"):
        frontend.from_onnx(raw_model(nodes, [("x", (1, 4))], [("y", (1, 4))], {}, opset=11))
    sym = raw_model(nodes, [("x", ("N", 4))], [("y", ("N", 4))], {})
    with pytest.raises(tt.FrontendError, match="symbolic"):
        frontend.from_onnx(sym)
    g = frontend.from_onnx(sym, shapes={"x": (2, 4)})
    assert g.type(g.outputs[0]).shape == (2, 4)


def test_printer_and_pass_list(tmp_path):
    g = frontend.from_onnx(residual_model(c=8))
    text = str(g)
    assert text.startswith("graph residual") and "batch_norm(" in text and "return %" in text
    names = [n for n, _ in passes.PASSES]
    assert names == ["fold_constants", "fold_batch_norm", "remove_identity", "fuse_epilogues",
                     "plan_layouts", "plan_memory"]
    ctx = passes.PassContext()
    h = g.copy()
    passes.run_passes(h, ctx, dump=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "00_input.txt" and files[-1] == "06_plan_memory.txt"
    after = (tmp_path / "04_fuse_epilogues.txt").read_text()
    assert "batch_norm" not in after and "epilogue=bias+residual+relu" in after
    assert "NCHW8c" in (tmp_path / "05_plan_layouts.txt").read_text() or \
        "NCHW16c" in (tmp_path / "05_plan_layouts.txt").read_text()
    assert "batch_norm" in str(g)  # the input graph is untouched


def test_task_extraction_counts_and_shares():
    g = frontend.from_onnx(residual_model(c=8))
    tasks = extract_tasks(g)
    kinds = {t.kind for t in tasks}
    assert kinds == {"conv2d", "dense"}
    assert sum(t.count for t in tasks) == 5
    assert abs(sum(t.share for t in tasks) - 1.0) < 1e-9
    assert tasks == sorted(tasks, key=lambda t: -t.share)
    assert any("residual" in t.args[-2] for t in tasks)
    budget = split_budget(tasks, 100, minimum=1)
    assert budget[0] == max(budget)


def test_constant_folding_and_shape_errors():
    shape = np.array([2, -1], np.int64)
    nodes = [helper.make_node("Reshape", ["c", "shape"], ["cr"]),
             helper.make_node("Add", ["x", "cr"], ["y"])]
    model = raw_model(nodes, [("x", (2, 3))], [("y", (2, 3))],
                      {"c": np.arange(6, dtype=np.float32), "shape": shape})
    g = frontend.from_onnx(model)
    h = g.copy()
    passes.run_passes(h, passes.PassContext(), stop_after="fold_constants")
    assert "reshape" not in h.count()
    bad = raw_model([helper.make_node("Add", ["x", "c"], ["y"])], [("x", (2, 3))],
                    [("y", (2, 3))], {"c": np.ones((4,), np.float32)})
    with pytest.raises(tt.FrontendError, match="do not broadcast"):
        frontend.from_onnx(bad)
