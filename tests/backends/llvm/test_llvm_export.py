"""export_library (.so .o .ll .s) and runtime.load_module without the compiler."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.ops import widest_vector_register
from tiletune.backends.llvm import build
from tiletune.errors import ArgumentError, BuildError, TileTuneError
from tiletune.ir.expr import Binary, Const, Load, Ramp, Var
from tiletune.ir.stmt import Buffer, For, PrimFunc, Store
from tiletune.runtime import load_module


def scale_func(parallel: bool):
    n = 256
    A, B = Buffer("A", "float32", (16, 16)), Buffer("B", "float32", (16, 16))
    i = Var("i")
    idx = Ramp(Binary("mul", i, Const(16, "int64")), Const(1, "int64"), 16)
    body = Store(B, (idx,), Binary("mul", Load(A, (idx,), "float32x16"),
                                   Load(A, (idx,), "float32x16")))
    kind = "parallel" if parallel else "serial"
    return PrimFunc("square", (A, B), For(i, Const(0, "int64"), Const(n // 16, "int64"), kind,
                                          body))


@pytest.mark.parametrize("parallel", [False, True])
def test_export_so_and_load(tmp_path, parallel):
    m = build(scale_func(parallel))
    path = tmp_path / "square.so"
    m.export_library(path)
    g = load_module(path)
    a = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    b = np.zeros_like(a)
    g(a, b)
    np.testing.assert_allclose(b, a * a)
    assert g.outputs == ("B",) and g.name == "square"
    assert g.get_source("ir") == m.get_source("ir")
    assert g.get_source("ll") == m.get_source("ll")
    assert widest_vector_register() in g.get_source("asm")
    r = g.time_evaluator(number=20, repeat=2)(a, b)
    assert 0 < r.min < 0.05  # plausible even on a loaded 2-core VM
    with pytest.raises(ArgumentError, match=r"argument 1 \(B\)"):
        g(a, b.astype(np.float64))
    if parallel:
        for n in (1, 2):
            g.set_num_threads(n)
            b[:] = 0
            g(a, b)
            np.testing.assert_allclose(b, a * a)
    g.export_library(tmp_path / "copy.so")
    h = load_module(tmp_path / "copy.so")
    h(a, b)
    with pytest.raises(BuildError, match=".o"):
        g.export_library(tmp_path / "x.o")


def test_export_other_formats(tmp_path):
    m = build(scale_func(False))
    m.export_library(tmp_path / "k.ll")
    m.export_library(tmp_path / "k.s")
    m.export_library(tmp_path / "k.o")
    assert "define void @square(" in (tmp_path / "k.ll").read_text()
    assert "square:" in (tmp_path / "k.s").read_text()
    assert (tmp_path / "k.o").read_bytes()[:4] == b"\x7fELF"
    with pytest.raises(BuildError, match="extension|.so, .o"):
        m.export_library(tmp_path / "k.dll")


def test_load_errors(tmp_path):
    with pytest.raises(TileTuneError, match="no kernel library"):
        load_module(tmp_path / "missing.so")
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an elf")
    with pytest.raises(TileTuneError, match="cannot load"):
        load_module(junk)


def test_loading_does_not_import_the_compiler(tmp_path):
    path = tmp_path / "k.so"
    build(scale_func(True)).export_library(path)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from tiletune.runtime import load_module
        g = load_module({str(path)!r})
        a = np.ones((16, 16), np.float32) * 3
        b = np.zeros_like(a)
        g(a, b)
        assert (b == 9).all()
        bad = [m for m in sys.modules if m.startswith(("tiletune.compiler", "tiletune.backends",
                                                        "llvmlite"))]
        assert not bad, bad
        print("ok")
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_library_for_missing_cpu_features_is_refused():
    from tiletune.runtime.load import _check_cpu
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo")
    _check_cpu("k.so", {"cpu": "here", "features": ["avx"] if "avx" in open(
        "/proc/cpuinfo").read() else []})
    with pytest.raises(TileTuneError, match="uses futurefeature, which this CPU lacks"):
        _check_cpu("k.so", {"cpu": "future9", "features": ["futurefeature"]})
