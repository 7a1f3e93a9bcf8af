"""``tiletune compile --model`` and ``tiletune run FILE.tt`` end to end."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from tests.graph.helpers import residual_model
from tiletune.cli import main

pytest.importorskip("onnxruntime")


def test_compile_model_then_run_compare(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save(residual_model(c=8, seed=9), src)
    out = tmp_path / "m.tt"
    assert main(["compile", "--model", str(src), "-o", str(out)]) == 0
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    code = main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--compare-onnxruntime",
                 "--json", "--number", "1", "--repeat", "1"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["match"] and res["rel_error"] <= 1e-4
    assert main(["run", str(out), "--profile", "--number", "1", "--repeat", "1"]) == 0
    assert "outside kernels" in capsys.readouterr().out


def test_model_errors(tmp_path, capsys):
    assert main(["compile", "--model", "no_such_model", "-o", str(tmp_path / "a.tt")]) == 2
    assert "not a built-in model" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert main(["compile", "--model", str(bad), "-o", str(tmp_path / "a.tt")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert main(["run", str(bad)]) == 2
    assert "not a tiletune compiled network" in capsys.readouterr().err
