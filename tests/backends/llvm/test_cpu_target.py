"""``target="llvm -mcpu=NAME -mattr=..."``: builds for that CPU, runs only where it can."""
import numpy as np
import pytest

import tiletune as tt
from tiletune.backends.llvm.cpu_target import missing_on_host, parse_target, probed_features
from tiletune.backends.llvm.target import host, required_features

N = 32


def matmul():
    A = tt.placeholder((N, N), "float32", name="A")
    B = tt.placeholder((N, N), "float32", name="B")
    k = tt.reduce_axis(N, name="k")
    C = tt.compute((N, N), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    _, j = s[C].axis
    _, ji = s[C].split(j, 8)
    s[C].vectorize(ji)
    return s, [A, B, C]


@pytest.fixture
def arrays(rng):
    a, b = (rng.random((N, N), dtype=np.float32) for _ in range(2))
    return a, b, np.zeros((N, N), np.float32)


def test_plain_llvm_is_the_host():
    t = parse_target("llvm")
    assert t.is_host and (t.cpu, t.features) == host()[1:]
    assert parse_target("llvm -mcpu=native").is_host


def test_generic_cpu_builds_runs_and_uses_no_avx(arrays):
    s, args = matmul()
    f = tt.build(s, args, target="llvm -mcpu=x86-64")
    a, b, c = arrays
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    assert "ymm" not in f.get_source("asm") and f.info.extra["cpu"] == "x86-64"
    assert f.info.extra["features"] == []


def test_mattr_removes_a_feature(arrays):
    s, args = matmul()
    f = tt.build(s, args, target="llvm -mcpu=x86-64-v3 -mattr=-fma")
    a, b, c = arrays
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    assert "vfmadd" not in f.get_source("asm")
    assert "fma" not in f.info.extra["features"] and "avx2" in f.info.extra["features"]


def test_probed_features_of_named_cpus():
    assert probed_features(parse_target("llvm -mcpu=x86-64")) == ()
    assert set(probed_features(parse_target("llvm -mcpu=haswell"))) == {"avx", "avx2", "fma",
                                                                         "bmi2"}
    assert {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= set(
        probed_features(parse_target("llvm -mcpu=skylake-avx512")))


def test_a_cpu_the_host_cannot_run_exports_but_refuses_to_run(arrays, tmp_path):
    other = next((t for t in ("llvm -mcpu=skylake-avx512", "llvm -mcpu=sapphirerapids")
                  if missing_on_host(parse_target(t))), None)
    if other is None:
        other = "llvm -mcpu=x86-64-v4 -mattr=+avx512vnni,+avx512bf16"
    missing = missing_on_host(parse_target(other))
    assert missing, f"{host()[1]} runs {other}: no CPU left to test the refusal"
    s, args = matmul()
    f = tt.build(s, args, target=other)
    with pytest.raises(tt.BuildError, match=r"cannot run here.*export_library"):
        f(*arrays)
    with pytest.raises(tt.BuildError, match=missing[0]):
        f.time_evaluator(number=1, repeat=1)(*arrays)
    assert f.get_source("asm") and f.info.extra["cpu"] == parse_target(other).cpu
    f.export_library(tmp_path / "k.o")
    assert (tmp_path / "k.o").read_bytes()[:4] == b"\x7fELF"
    f.export_library(tmp_path / "k.so")
    with pytest.raises(tt.TileTuneError, match="which this CPU lacks"):
        tt.runtime.load_module(tmp_path / "k.so")


def test_host_kernel_metadata_unchanged():
    s, args = matmul()
    f = tt.build(s, args)
    assert f.info.extra["cpu"] == host()[1]
    assert f.info.extra["features"] == required_features()


@pytest.mark.parametrize("target, message", [
    ("llvm -mcpu=bogus", "LLVM does not know the CPU 'bogus'"),
    ("llvm -mattr=+nofeature", r"does not know the feature\(s\) \+nofeature"),
    ("llvm -mattr=avx2", "must start with \\+ or -"),
    ("llvm -device=arm_cpu", "unsupported option '-device'"),
    ("llvm -mcpu", "-mcpu without a value"),
    ("llvm -mcpu=haswell -mcpu=znver3", "gives -mcpu twice"),
    ("vta -mcpu=haswell", "vta takes no options"),
    ("cuda", "unknown target 'cuda'"),
])
def test_bad_target_strings_are_rejected(target, message):
    s, args = matmul()
    with pytest.raises(tt.BuildError, match=message):
        tt.build(s, args, target=target)
