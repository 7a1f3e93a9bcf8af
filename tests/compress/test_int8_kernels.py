"""int8 conv2d / dense templates on every dot-product path, bit-exact vs NumPy integers."""
from __future__ import annotations

import numpy as np
import pytest

import tiletune as tt
from tiletune.backends.llvm import int8dot
from tiletune.compiler.lower import loop_nest, run_passes
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.errors import ArgumentError, BuildError, ScheduleError
from tiletune.schedules import int8_conv2d as ic
from tiletune.schedules import int8_dense as idn
from tiletune.schedules.int8_requant import Requant, fixed_point, requantize_numpy

RUNNABLE = [p for p in int8dot.PATHS if int8dot.supported(p)]
CROSS = {"vnni": "+avx2,+avx512f,+avx512bw,+avx512vl,+avx512vnni",
         "avx512bw": "+avx2,+avx512f,+avx512bw,+avx512vl"}


def _layer_data(rng, C, H, K, R, amax):
    x = rng.integers(0, amax + 1, (1, C, H, H)).astype(np.uint8)
    wt = rng.integers(-128, 128, (K, C, R, R)).astype(np.int8)
    b = rng.integers(-5000, 5000, K).astype(np.int32)
    mult, shift = fixed_point(rng.uniform(2e-5, 4e-4, K))
    return x, wt, b, mult, shift


@pytest.mark.parametrize("path", RUNNABLE)
@pytest.mark.parametrize("C,H,K,R,stride,pad", [(16, 7, 16, 3, 1, 1), (8, 9, 12, 3, 2, 1),
                                                (12, 6, 16, 1, 2, 0)])
def test_conv2d_bit_exact(path, C, H, K, R, stride, pad):
    rng = np.random.default_rng(C + H + K)
    amax = int8dot.activation_max(path)
    x, wt, b, mult, shift = _layer_data(rng, C, H, K, R, amax)
    rq = Requant(shift, zp_out=9, lo=9, hi=250)
    w = ic.Int8Conv2dWorkload(1, C, H, H, K, R, R, stride, pad, path=path)
    y = ic.Int8Conv2d(w, wt, b, mult, zp_in=11, rq=rq)(x)
    ref = ic.reference(x, wt, b, stride, pad, 11, mult, rq)
    assert np.array_equal(y, ref)
    assert len(np.unique(y)) > 10  # the scales put outputs inside the clip range
    w32 = ic.Int8Conv2dWorkload(1, C, H, H, K, R, R, stride, pad, path=path, out_dtype="int32")
    assert np.array_equal(ic.Int8Conv2d(w32, wt, b, zp_in=11)(x),
                          ic.reference(x, wt, b, stride, pad, 11))


@pytest.mark.parametrize("path", RUNNABLE)
@pytest.mark.parametrize("M,N,K", [(1, 40, 64), (5, 24, 36)])
def test_dense_bit_exact(path, M, N, K):
    rng = np.random.default_rng(M * N)
    a = rng.integers(0, int8dot.activation_max(path) + 1, (M, K)).astype(np.uint8)
    B = rng.integers(-128, 128, (K, N)).astype(np.int8)
    b = rng.integers(-999, 999, N).astype(np.int32)
    mult, shift = fixed_point(rng.uniform(1e-4, 1e-3, N))
    rq = Requant(shift, 3, 0, 255)
    y = idn.Int8Dense(idn.Int8DenseWorkload(M, N, K, path=path), B, b, mult, zp_in=4, rq=rq)(a)
    assert np.array_equal(y, idn.reference(a, B, b, 4, mult, rq))
    w32 = idn.Int8DenseWorkload(M, N, K, path=path, out_dtype="int32")
    assert np.array_equal(idn.Int8Dense(w32, B, b, zp_in=4)(a), idn.reference(a, B, b, 4))


def test_exact_paths_take_full_u8_and_saturating_paths_reject_it():
    rng = np.random.default_rng(1)
    x, wt, b, _, _ = _layer_data(rng, 8, 5, 8, 3, 255)
    x[0, 0, 0, 0] = 255
    w = ic.Int8Conv2dWorkload(1, 8, 5, 5, 8, 3, 3, 1, 1, path="generic", out_dtype="int32")
    assert np.array_equal(ic.Int8Conv2d(w, wt, b)(x), ic.reference(x, wt, b, 1, 1))
    w7 = ic.Int8Conv2dWorkload(1, 8, 5, 5, 8, 3, 3, 1, 1, path="avx2", out_dtype="int32")
    with pytest.raises(ArgumentError, match="7-bit"):
        ic.Int8Conv2d(w7, wt, b)(x)


@pytest.mark.parametrize("path,want", [("vnni", "vpdpbusd"), ("avx512bw", "vpmaddubsw"),
                                       ("avx2", "vpmaddubsw"), ("avx2_s16", "vpmaddwd")])
def test_each_path_emits_its_instructions(path, want):
    """Paths this host cannot execute are compiled for a CPU that has them (never run)."""
    w = ic.Int8Conv2dWorkload(1, 16, 6, 6, 16, 3, 3, 1, 1, path=path)
    s, args = ic.schedule(w)
    func = run_passes(loop_nest(s, args, "k"), pipeline("llvm"), None)
    asm = int8dot.assembly(func, CROSS.get(path, "+avx2"))
    assert want in asm
    if path != "vnni":
        assert "vpmaddwd" in asm and "vpdpbusd" not in asm
    if path == "avx2_s16":
        assert "vpmaddubsw" not in asm


def test_512_bit_vnni_form():
    n = 16
    A = tt.placeholder((8,), "int32", name="A")
    B = tt.placeholder((8, n), "int32", name="B")
    q = tt.reduce_axis(8, "q")
    from tiletune.ir.expr import Call
    C = tt.compute((n,), lambda j: tt.sum(Call(int8dot.call_name("vnni"), (A[q], B[q, j]),
                                                "int32"), axis=q), name="C")
    s = tt.create_schedule(C)
    s[C].vectorize(s[C].axis[0])
    func = run_passes(loop_nest(s, [A, B, C], "k"), pipeline("llvm"), None)
    assert "zmm" in int8dot.assembly(func, CROSS["vnni"]).split("vpdpbusd", 1)[1].split("\n")[0]


def test_unsupported_path_is_a_clear_error():
    missing = [p for p in int8dot.PATHS if not int8dot.supported(p)]
    if not missing:
        pytest.skip("this host executes every int8 path")
    w = ic.Int8Conv2dWorkload(1, 8, 5, 5, 8, 3, 3, 1, 1, path=missing[0], out_dtype="int32")
    with pytest.raises(ScheduleError, match="cannot run on this CPU"):
        ic.Int8Conv2d(w, np.zeros((8, 8, 3, 3), np.int8), np.zeros(8, np.int32))
    s, args = ic.schedule(w)
    with pytest.raises(BuildError, match="lacks"):
        tt.build(s, args, name="k")


def test_best_path_from_features():
    f = int8dot.feature_set
    assert int8dot.exact_path(f("+avx2,-avx512f")) == "avx2_s16"
    assert int8dot.exact_path(f("+avx2,+avx512bw,+avx512vnni")) == "vnni"
    assert int8dot.exact_path(f("+sse4.2")) == "generic"
    assert int8dot.best_path(f("+avx2,+avx512bw,+avx512vnni")) == "vnni"
    assert int8dot.best_path(f("+avx2,+avxvnni")) == "vnni"
    assert int8dot.best_path(f("+avx2,+avx512f,+avx512bw")) == "avx512bw"
    assert int8dot.best_path(f("+avx2,-avx512f")) == "avx2"
    assert int8dot.best_path(f("+sse4.2")) == "generic"


def test_fixed_point_and_requantize_rounding():
    mult, shift = fixed_point(np.array([0.5, 0.25, 1e-3]))
    assert np.allclose(mult / 2.0 ** shift, [0.5, 0.25, 1e-3], rtol=1e-7)
    rq = Requant(shift=1, zp_out=0, lo=0, hi=255)
    acc = np.array([[1, 3, -1, 600]], np.int32)  # (x + 1) >> 1: round half up, then clip
    out = requantize_numpy(acc, np.zeros(4, np.int32), np.ones(4, np.int32), rq)
    assert out.tolist() == [[1, 2, 0, 255]]
    with pytest.raises(ScheduleError):
        fixed_point(np.array([0.0]))


@pytest.mark.parametrize("path", RUNNABLE)
def test_saturating_paths_take_full_u8_with_7bit_weights(path):
    """The reduce_range rule: |w| <= 64 keeps vpmaddubsw's int16 pair sums exact for any
    u8 activation (255 * 64 * 2 = 32640), on every path (forced)."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (1, 16, 7, 7)).astype(np.uint8)
    x[0, :2] = 255  # the worst case: both bytes of a pair at 255 ...
    wt = rng.integers(-64, 64, (16, 16, 3, 3)).astype(np.int8)
    wt[:, :2] = -64  # ... times -64 twice
    b = rng.integers(-5000, 5000, 16).astype(np.int32)
    mult, shift = fixed_point(rng.uniform(2e-5, 4e-4, 16))
    rq = Requant(shift, zp_out=3, lo=3, hi=255)
    w = ic.Int8Conv2dWorkload(1, 16, 7, 7, 16, 3, 3, 1, 1, path=path)
    layer = ic.Int8Conv2d(w, wt, b, mult, zp_in=200, rq=rq)
    assert layer.activation_max == 255
    assert np.array_equal(layer(x), ic.reference(x, wt, b, 1, 1, 200, mult, rq))
    a = x.reshape(16, -1)[:, :48].copy()  # [M=16, K=48], full u8
    B = wt.reshape(16, -1)[:, :48].T.copy()  # [K=48, N=16], |w| <= 64
    d = idn.Int8Dense(idn.Int8DenseWorkload(a.shape[0], 16, 48, path=path, out_dtype="int32"),
                      B, b, zp_in=255)
    assert d.activation_max == 255
    assert np.array_equal(d(a), idn.reference(a, B, b, 255))


def test_three_channel_conv_pads_its_channels():
    """An RGB image's first conv (3 channels) runs in int8: the 4th byte has zero weights."""
    rng = np.random.default_rng(3)
    x, wt, b, mult, shift = _layer_data(rng, 3, 10, 16, 3, 127)
    rq = Requant(shift, zp_out=0, lo=0, hi=255)
    w = ic.Int8Conv2dWorkload(1, 3, 10, 10, 16, 3, 3, 2, 1)
    assert w.Cp == 4 and ic.space(w)["ic_bn"] == [4]
    y = ic.Int8Conv2d(w, wt, b, mult, zp_in=37, rq=rq)(x)
    assert np.array_equal(y, ic.reference(x, wt, b, 2, 1, 37, mult, rq))
    assert ic.pack_weight(wt, ic.default_config(w)).shape[1:5] == (1, 3, 3, 1)


def test_bad_workloads():
    with pytest.raises(ScheduleError, match="non-positive"):
        ic.Int8Conv2dWorkload(1, 0, 8, 8, 8, 3, 3)
    with pytest.raises(ScheduleError, match="groups of 4"):
        idn.Int8DenseWorkload(1, 8, 10)
    with pytest.raises(ScheduleError, match="unknown int8 path"):
        ic.Int8Conv2dWorkload(1, 4, 8, 8, 8, 3, 3, path="sse")


@pytest.mark.parametrize("name,args", [("int8_conv2d", (1, 16, 6, 6, 16, 3, 3, 1, 1)),
                                       ("int8_dense", (4, 32, 64))])
def test_tuner_templates_measure_correct_configs(name, args):
    from tiletune.tuner import LocalMeasurer, MeasureOption, Task
    task = Task(name, args)
    assert len(task.space) > 1
    with LocalMeasurer(task, MeasureOption(jobs=1, number=1, repeat=1, cutoff=None)) as m:
        results = m(task.space.sample(3, rng=0))  # each output checked vs the reference
        assert [r.error for r in results] == [None] * 3, [r.describe() for r in results]
        assert np.asarray(m.expected[0]).dtype == np.uint8 or m.expected[0].max() > 0


def test_doctor_names_the_int8_path():
    from tiletune.cli.doctor import int8_check
    assert int8_check().value.startswith(int8dot.best_path())
