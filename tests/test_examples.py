"""The scripts in examples/ run as a user runs them (a fresh process each, in an empty
directory) and check their own results against NumPy."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def run(script: str, cwd: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TILETUNE_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{script} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_every_example_is_tested():
    tested = {"01_dsl_schedule_build.py", "02_cache_write_compute_at.py",
              "03_tune_a_template.py", "04_report.py", "05_cross_compile.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_dsl_schedule_build(tmp_path):
    out = run("01_dsl_schedule_build.py", tmp_path)
    assert "vectorized" in out and "matches NumPy" in out


def test_cache_write_compute_at(tmp_path):
    out = run("02_cache_write_compute_at.py", tmp_path)
    assert "C.local" in out and "matches NumPy" in out


def test_tune_then_report(tmp_path):
    out = run("03_tune_a_template.py", tmp_path)
    assert "best of 16 trials" in out
    assert len((tmp_path / "matmul.jsonl").read_text().splitlines()) == 16
    out = run("04_report.py", tmp_path)
    assert "xgb (seed 0): 16 trials" in out
    assert (tmp_path / "report.html").read_text().count("<svg") == 2
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2


def test_cross_compile(tmp_path):
    out = run("05_cross_compile.py", tmp_path)
    assert "llvm -mcpu=x86-64-v3: features ['avx', 'avx2', 'fma', 'bmi2']" in out
    assert (tmp_path / "axpy-x86-64-v3.so").exists()
    assert (tmp_path / "axpy-skylake-avx512.so").exists()


@pytest.mark.parametrize("script", ["04_report.py"])
def test_report_example_explains_a_missing_file(tmp_path, script):
    res = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and "run examples/03_tune_a_template.py first" in res.stderr
