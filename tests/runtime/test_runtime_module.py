"""runtime.Module: argument checks, timing, threads, lifetime (kernels built by hand)."""
from __future__ import annotations

import os
import signal
import time
import warnings

import numpy as np
import pytest

from tiletune.backends.llvm import build
from tiletune.errors import ArgumentError, BuildError, TileTuneError
from tiletune.ir.expr import Binary, Const, Load, Ramp, Var
from tiletune.ir.stmt import Buffer, For, PrimFunc, Store
from tiletune.runtime import ArgSpec, KernelInfo, Module, PythonCode, TimingResult
from tiletune.runtime.timing import measure


def axpy(shape=(4, 8), dtype="float32", parallel=False, attrs=None):
    """C = A * A + B, flat over ``shape``; 8-lane vectors."""
    n = int(np.prod(shape))
    A, B, C = (Buffer(x, dtype, shape) for x in "ABC")
    i = Var("i")
    idx = Ramp(Binary("mul", i, Const(8, "int64")), Const(1, "int64"), 8)
    vt = f"{dtype}x8"
    sq = Binary("mul", Load(A, (idx,), vt), Load(A, (idx,), vt))
    body = Store(C, (idx,), Binary("add", sq, Load(B, (idx,), vt)))
    loop = For(i, Const(0, "int64"), Const(n // 8, "int64"),
               "parallel" if parallel else "serial", body)
    return PrimFunc("axpy", (A, B, C), loop, attrs or {})


@pytest.fixture(scope="module")
def mod():
    m = build(axpy())
    yield m
    m.close()


def arrays(shape=(4, 8), dtype="float32"):
    rng = np.random.default_rng(1)
    return [rng.random(shape).astype(dtype) for _ in range(3)]


def test_call_and_outputs(mod):
    a, b, c = arrays()
    mod(a, b, c)
    np.testing.assert_allclose(c, a * a + b, rtol=1e-6)
    assert mod.outputs == ("C",)
    assert [s.name for s in mod.args] == ["A", "B", "C"]
    assert "axpy" in repr(mod)


def test_outputs_from_attrs():
    m = build(axpy(attrs={"outputs": ["B", "C"]}))
    assert m.outputs == ("B", "C")
    a, b, c = arrays()
    b.flags.writeable = False
    with pytest.raises(ArgumentError, match=r"argument 1 \(B\).*read-only"):
        m(a, b, c)


@pytest.mark.parametrize("case, pattern", [
    ("count", r"axpy takes 3 arrays .*got 2"),
    ("type", r"argument 0 \(A\): expected a numpy.ndarray .*got list"),
    ("dtype", r"argument 1 \(B\): expected dtype float32, got float64"),
    ("shape", r"argument 2 \(C\): expected shape \(4, 8\), got \(8, 4\)"),
    ("strides", r"argument 0 \(A\): expected a C-contiguous array, got strides"),
    ("fortran", r"argument 0 \(A\): expected a C-contiguous"),
    ("readonly", r"argument 2 \(C\): is an output but the array is read-only"),
    ("alias", r"argument 2 \(C\): the kernel writes it but it shares memory with argument 0"),
    ("overlap", r"argument 2 \(C\).*shares memory with argument 1 \(B\)"),
    ("unaligned", r"argument 1 \(B\): the array data is not aligned"),
])
def test_argument_errors(mod, case, pattern):
    a, b, c = arrays()
    args = [a, b, c]
    if case == "count":
        args = [a, b]
    elif case == "type":
        args[0] = a.tolist()
    elif case == "dtype":
        args[1] = b.astype(np.float64)
    elif case == "shape":
        args[2] = np.empty((8, 4), np.float32)
    elif case == "strides":
        args[0] = np.empty((4, 16), np.float32)[:, ::2]
    elif case == "fortran":
        args[0] = np.asfortranarray(a)
    elif case == "readonly":
        c.flags.writeable = False
    elif case == "alias":
        args[2] = a
    elif case == "overlap":
        big = np.zeros(64, np.float32)
        args[1], args[2] = big[:32].reshape(4, 8), big[16:48].reshape(4, 8)
    elif case == "unaligned":
        raw = np.zeros(4 * 32 + 1, np.uint8)
        args[1] = raw[1:].view(np.float32).reshape(4, 8)
    with pytest.raises(ArgumentError, match=pattern):
        mod(*args)


def test_same_input_twice_is_allowed(mod):
    a, _, c = arrays()
    mod(a, a, c)
    np.testing.assert_allclose(c, a * a + a, rtol=1e-6)


def test_address_cache_follows_new_arrays(mod):
    a, b, c = arrays()
    mod(a, b, c)
    for _ in range(3):
        a2, b2, c2 = arrays()
        a2 += 1
        mod(a2, b2, c2)
        np.testing.assert_allclose(c2, a2 * a2 + b2, rtol=1e-6)
    del a2
    a3 = np.full((4, 8), 3, np.float32)
    mod(a3, b, c)
    np.testing.assert_allclose(c, 9 + b)


def test_time_evaluator(mod):
    a, b, c = arrays()
    r = mod.time_evaluator(number=100, repeat=4)(a, b, c)
    assert isinstance(r, TimingResult) and len(r.results) == 4
    assert 0 < r.min <= r.median <= max(r.results) and 0 < r.mean < 1e-3
    assert r.number == 100 and "us" in repr(r)
    with pytest.raises(ArgumentError):
        mod.time_evaluator()(a, b)
    with pytest.raises(ValueError):
        mod.time_evaluator(number=0)


def test_time_evaluator_min_repeat_ms_and_flush(mod):
    a, b, c = arrays()
    r = mod.time_evaluator(number=1, repeat=2, min_repeat_ms=20, flush_cache=True)(a, b, c)
    assert r.number > 1000 and r.number * r.results[-1] * 1e3 >= 20


def test_measure_grows_number_tvm_style():
    calls = []

    def timer(number):
        calls.append(number)
        return 1e-6  # 1 us per call

    r = measure(timer, [], 1, 2, 5.0, False)
    assert calls[0] == 1 and calls[1] >= 5000 and r.number == calls[-1]
    assert r.results == (1e-6, 1e-6)


def test_set_num_threads_and_env(monkeypatch):
    monkeypatch.setenv("TILETUNE_NUM_THREADS", "3")
    m = build(axpy(shape=(64, 8), parallel=True))
    assert m.num_threads == 3
    a, b, c = arrays((64, 8))
    for n in (1, 2, 3):
        m.set_num_threads(n)
        c[:] = 0
        m(a, b, c)
        np.testing.assert_allclose(c, a * a + b, rtol=1e-6)
    with pytest.raises(ValueError):
        m.set_num_threads(0)


def test_close_and_context_manager():
    a, b, c = arrays()
    with build(axpy()) as m:
        m(a, b, c)
    with pytest.raises(TileTuneError, match="closed"):
        m(a, b, c)
    with pytest.raises(TileTuneError, match="closed"):
        m.get_source("ll")
    m.close()  # idempotent


def test_sources(mod):
    assert mod.get_source("ir").startswith("def axpy(")
    assert "define void @axpy(" in mod.get_source("ll")
    assert "axpy" in mod.get_source("ll-opt")
    assert "zmm" in mod.get_source("asm") or "ymm" in mod.get_source("asm")
    with pytest.raises(TileTuneError, match="unknown source format"):
        mod.get_source("cuda")


def test_module_is_the_runtime_class(mod):
    assert isinstance(mod, Module)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parallel_kernel_in_forked_child_runs_serially():
    m = build(axpy(shape=(64, 8), parallel=True))
    m.set_num_threads(2)
    a, b, c = arrays((64, 8))
    m(a, b, c)  # starts libgomp's pool in this process
    pid = os.fork()
    if pid == 0:  # child: libgomp's pool is gone; a parallel region would hang
        code = 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m(a, b, c)
                m2 = build(axpy(shape=(64, 8), parallel=True))
                m2.set_num_threads(2)
                m2(a, b, c)
                code = 0 if m2.num_threads == 1 and np.allclose(c, a * a + b) else 2
        finally:
            os._exit(code)
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung in a parallel region")


class _AddCode(PythonCode):
    """A Python-run 'device': C = A + B, 2 ms of simulated time per call."""

    def run(self, arrays):
        np.add(arrays[0], arrays[1], out=arrays[2])

    def time_per_call(self, arrays, number):
        return 2e-3


def test_python_code_module_checks_runs_and_times():
    specs = tuple(ArgSpec(x, "int8", (4,), x == "C") for x in "ABC")
    m = Module(_AddCode(), KernelInfo("sim_add", "", specs, target="sim"))
    a, b, c = (np.arange(4, dtype=np.int8) for _ in range(3))
    m(a, b, c)
    np.testing.assert_array_equal(c, 2 * a)
    r = m.time_evaluator(number=3, repeat=2)(a, b, c)
    assert r.results == (2e-3, 2e-3)
    with pytest.raises(ArgumentError, match=r"argument 2 \(C\): expected dtype int8"):
        m(a, b, c.astype(np.int16))
    m.set_num_threads(2)
    with pytest.raises(BuildError):
        m.export_library("x.so")
    m.close()
    with pytest.raises(TileTuneError, match="closed"):
        m(a, b, c)


def test_written_params_are_outputs_even_if_attrs_forget_them():
    m = build(axpy(attrs={"outputs": []}))
    assert m.outputs == ("C",)
    a, b, c = arrays()
    c.flags.writeable = False
    with pytest.raises(ArgumentError, match="read-only"):
        m(a, b, c)
