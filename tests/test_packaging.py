"""Packaging: one metadata source (pyproject.toml), one version, ``python -m tiletune``."""
import ast
import subprocess
import sys
from pathlib import Path

import tomllib

import tiletune

ROOT = Path(__file__).parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_version_has_one_source():
    assert PROJECT["dynamic"] == ["version"]
    assert "version" not in PROJECT
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["dynamic"]["version"] == {"attr": "tiletune.__version__"}
    assert tiletune.__version__.count(".") == 2


def test_setup_py_is_a_thin_shim():
    tree = ast.parse((ROOT / "setup.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert len(calls) == 1 and not calls[0].args and not calls[0].keywords


def test_dependencies_are_declared_with_bounds_and_markers():
    deps = PROJECT["dependencies"]
    llvmlite = next(d for d in deps if d.startswith("llvmlite"))
    assert "<0.51" in llvmlite
    assert any(d.startswith("xgboost-cpu") and "!= 'Darwin'" in d for d in deps)
    assert any(d.startswith("xgboost>") and "== 'Darwin'" in d for d in deps)
    names = {d.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip() for d in deps}
    # every third-party module the package imports directly is declared
    for needed in ("numpy", "llvmlite", "scikit-learn", "scipy", "threadpoolctl", "networkx",
                   "rich", "matplotlib"):
        assert needed in names, needed
    extras = PROJECT["optional-dependencies"]
    for pkg in ("pytest", "hypothesis", "pytest-timeout", "ruff", "onnx", "onnxruntime"):
        assert any(d.startswith(pkg + ">") or d.startswith(pkg + "=") for d in extras["test"])
    assert "torch==2.13.0" in extras["bench"]


def test_license_and_typed_marker():
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert PROJECT["license"] == "Apache-2.0"
    assert (ROOT / "tiletune" / "py.typed").exists()


def test_python_dash_m_tiletune():
    out = subprocess.run([sys.executable, "-m", "tiletune", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == f"tiletune {tiletune.__version__}"
