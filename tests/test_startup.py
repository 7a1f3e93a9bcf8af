"""Start-up stays light: ``import tiletune``, ``import tiletune.tuner`` and ``tiletune --help``
import none of the heavy libraries (each checked in a fresh interpreter, through
``sys.modules``: a mechanism test, no timing; ``benchmarks/startup.py`` measures the times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tiletune

HEAVY = ("numpy", "scipy", "sklearn", "xgboost", "llvmlite", "rich", "networkx", "matplotlib",
         "torch", "onnx", "onnxruntime")
ROOT = Path(tiletune.__file__).resolve().parent.parent


def loaded_after(code: str) -> list[str]:
    """The heavy top-level packages in ``sys.modules`` after running ``code`` in a fresh
    interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", ["import tiletune", "import tiletune.tuner",
                                  "import tiletune.cli"])
def test_import_loads_no_heavy_module(code):
    assert loaded_after(code) == []


def test_help_loads_no_heavy_module():
    code = ("import contextlib, io\nfrom tiletune.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "assert 'tune' in out.getvalue() and 'doctor' in out.getvalue()")
    assert loaded_after(code) == []


def test_tuner_names_still_resolve_lazily():
    """The tuner's public names load their submodule on first use."""
    import tiletune.tuner as tuner

    assert tuner.RandomTuner.__name__ == "RandomTuner"
    assert "XGBTuner" in dir(tuner) and set(tuner.__all__) <= set(dir(tuner))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tuner.nope  # noqa: B018


def test_a_measurement_worker_imports_no_cost_model():
    """A worker process needs the compiler, not the cost models or the report."""
    code = ("import tiletune.tuner.measure.worker\n"
            "from tiletune.tuner.templates.task import Task\n"
            "Task('dense', (16, 16, 16, 'float32')).config(0)")
    assert not {"scipy", "sklearn", "xgboost", "rich", "matplotlib"} & set(loaded_after(code))
