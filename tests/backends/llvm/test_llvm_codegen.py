"""LLVM backend: hand-built PrimFuncs compiled and compared with NumPy."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.ops import widest_vector_register
from tiletune.backends.llvm import build, generate
from tiletune.errors import BuildError
from tiletune.ir.expr import (
    Binary,
    Broadcast,
    Call,
    Cast,
    Compare,
    Const,
    Load,
    Not,
    Ramp,
    Select,
    Var,
)
from tiletune.ir.stmt import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Store

RNG = np.random.default_rng(0)
DTYPES = ("bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64")


def c(v, dtype="int64"):
    return Const(v, dtype)


def add(a, b):
    return Binary("add", a, b)


def mul(a, b):
    return Binary("mul", a, b)


def ramp(base, lanes, stride=1):
    return Ramp(base, c(stride), lanes)


def loop(var, extent, body, kind="serial", lo=0):
    return For(var, c(lo), c(extent) if isinstance(extent, int) else extent, kind, body)


def vadd_func(n=1024, lanes=16, kind="serial", dtype="float32"):
    A, B, C = (Buffer(x, dtype, (n,)) for x in "ABC")
    io = Var("io")
    idx = ramp(mul(io, c(lanes)), lanes)
    vt = f"{dtype}x{lanes}"
    body = Store(C, (idx,), add(Load(A, (idx,), vt), Load(B, (idx,), vt)))
    return PrimFunc("vadd", (A, B, C), loop(io, n // lanes, body, kind))


def elementwise(name, srcs, out_dtype, fn, n=64, lanes=1):
    """out[i] = fn(loads of srcs[i]) over n elements, in vectors of ``lanes``."""
    ins = [Buffer(f"x{k}", d, (n,)) for k, d in enumerate(srcs)]
    out = Buffer("out", out_dtype, (n,))
    i = Var("i")
    if lanes == 1:
        idx, suf = i, ""
    else:
        idx, suf = ramp(mul(i, c(lanes)), lanes), f"x{lanes}"
    loads = [Load(b, (idx,), b.dtype + suf) for b in ins]
    body = Store(out, (idx,), fn(*loads))
    return PrimFunc(name, (*ins, out), loop(i, n // lanes, body))


def data(dtype, n, lo=-100, hi=100):
    if dtype == "bool":
        return RNG.integers(0, 2, n).astype(bool)
    if dtype.startswith("float"):
        return RNG.uniform(lo, hi, n).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(max(lo, info.min), min(hi, info.max) + 1, n).astype(dtype)


# ---------------------------------------------------------------------- basics


@pytest.mark.parametrize("kind", ["serial", "parallel", "unrolled", "vectorized", "spatial"])
def test_vector_add(kind):
    m = build(vadd_func(kind=kind))
    a, b = RNG.random(1024, dtype=np.float32), RNG.random(1024, dtype=np.float32)
    out = np.empty(1024, np.float32)
    m(a, b, out)
    np.testing.assert_allclose(out, a + b)


def test_contiguous_vector_access_is_one_load():
    ll = generate(vadd_func()).text
    assert ll.count("load <16 x float>") == 2 and ll.count("store <16 x float>") == 1
    assert "gather" not in ll and "scatter" not in ll
    assert "noalias" in ll and "nocapture" in ll


def test_fma_in_the_widest_vector_registers():
    n = 256
    A, B, C = (Buffer(x, "float32", (n,)) for x in "ABC")
    i = Var("i")
    idx = ramp(mul(i, c(16)), 16)
    ld = lambda buf: Load(buf, (idx,), "float32x16")  # noqa: E731
    body = Store(C, (idx,), Call("fmuladd", (ld(A), ld(B), ld(C)), "float32x16"))
    m = build(PrimFunc("fma", (A, B, C), loop(i, n // 16, body)))
    asm = m.get_source("asm")
    assert widest_vector_register() in asm and "vfmadd" in asm
    a, b, cc = (RNG.random(n, dtype=np.float32) for _ in range(3))
    ref = a * b + cc
    m(a, b, cc)
    np.testing.assert_allclose(cc, ref, rtol=1e-6)


def test_mul_add_pattern_becomes_fmuladd():
    f = elementwise("muladd", ["float32"] * 3, "float32",
                    lambda a, b, x: add(mul(a, b), x), lanes=16)
    assert "llvm.fmuladd.v16f32" in generate(f).text
    m = build(f)
    assert "vfmadd" in m.get_source("asm")
    a, b, x = (data("float32", 64) for _ in range(3))
    out = np.empty(64, np.float32)
    m(a, b, x, out)
    np.testing.assert_allclose(out, a * b + x, rtol=1e-5)


def test_broadcast_and_scalar_operands():
    n = 64
    A, out = Buffer("A", "float32", (n,)), Buffer("out", "float32", (n,))
    s = Buffer("s", "float32", (1,))
    i = Var("i")
    idx = ramp(mul(i, c(16)), 16)
    val = mul(Load(A, (idx,), "float32x16"), Broadcast(Load(s, (c(0),), "float32"), 16))
    f = PrimFunc("scale", (A, s, out), loop(i, n // 16, Store(out, (idx,), val)))
    assert "shufflevector" in generate(f).text
    a, sv, o = data("float32", n), np.array([2.5], np.float32), np.empty(n, np.float32)
    build(f)(a, sv, o)
    np.testing.assert_allclose(o, a * 2.5)


# ---------------------------------------------------------------------- casts


@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("src", DTYPES)
def test_every_cast(src, lanes):
    n = 64
    x = data(src, n, -128, 127)
    targets = [d for d in DTYPES if d != src]
    X = Buffer("x", src, (n,))
    outs = [Buffer(f"o_{d}", d, (n,)) for d in targets]
    i = Var("i")
    idx = i if lanes == 1 else ramp(mul(i, c(lanes)), lanes)
    vt = src if lanes == 1 else f"{src}x{lanes}"
    ld = Load(X, (idx,), vt)
    body = Seq(tuple(Store(o, (idx,), Cast(o.dtype if lanes == 1 else f"{o.dtype}x{lanes}", ld))
                     for o in outs))
    m = build(PrimFunc(f"cast_{src}", (X, *outs), loop(i, n // lanes, body)))
    arrays = [np.zeros(n, d) for d in targets]
    m(x, *arrays)
    for d, got in zip(targets, arrays):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = x.astype(d)
        keep = ~((x < 0) & (d == "uint8")) if src.startswith("float") else np.ones(n, bool)
        np.testing.assert_array_equal(got[keep], ref[keep], err_msg=f"{src} -> {d}")


# ---------------------------------------------------------------------- integer division


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
@pytest.mark.parametrize("lanes", [1, 4])
def test_floordiv_floormod_runtime_divisor(dtype, lanes):
    n = 256
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, n, endpoint=True).astype(dtype)
    b = RNG.integers(max(info.min, -9), min(info.max, 9), n, endpoint=True).astype(dtype)
    a[:4] = [info.min, info.min, 7, info.max]
    b[:4] = [-1 if info.min else 1, 0, 0, 3]
    for op, ref in (("floordiv", np.floor_divide), ("floormod", np.remainder)):
        f = elementwise(op, [dtype, dtype], dtype, lambda x, y, op=op: Binary(op, x, y), n, lanes)
        out = np.zeros(n, dtype)
        build(f)(a, b, out)
        with np.errstate(all="ignore"):
            expect = ref(a, b)
        np.testing.assert_array_equal(out, expect, err_msg=op)


@pytest.mark.parametrize("divisor", [1, 2, 3, 4, 7, 8, -1, -3, -4, 0])
def test_floordiv_floormod_constant_divisor(divisor):
    n = 64
    a = np.arange(-32, 32, dtype=np.int32)
    a[0] = np.iinfo(np.int32).min
    for op, ref in (("floordiv", np.floor_divide), ("floormod", np.remainder)):
        for lanes in (1, 8):
            cst = c(divisor, "int32") if lanes == 1 else Broadcast(c(divisor, "int32"), lanes)
            f = elementwise(op, ["int32"], "int32",
                            lambda x, op=op, cst=cst: Binary(op, x, cst), n, lanes)
            out = np.zeros(n, np.int32)
            build(f)(a, out)
            with np.errstate(all="ignore"):
                expect = ref(a, np.int32(divisor))
            np.testing.assert_array_equal(out, expect, err_msg=f"{op} {divisor} x{lanes}")


def test_python_floor_semantics_on_loop_vars():
    out = Buffer("out", "int64", (20, 2))
    i = Var("i")
    j = Binary("sub", i, c(10))
    body = Seq((Store(out, (mul(i, c(2)),), Binary("floordiv", j, c(3))),
                Store(out, (add(mul(i, c(2)), c(1)),), Binary("floormod", j, c(3)))))
    o = np.zeros((20, 2), np.int64)
    build(PrimFunc("pyfloor", (out,), loop(i, 20, body)))(o)
    assert [tuple(r) for r in o] == [divmod(k - 10, 3) for k in range(20)]


# ---------------------------------------------------------------------- math and logic


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lanes", [1, 8])
def test_math_calls(dtype, lanes):
    x = RNG.uniform(0.1, 4.0, 64).astype(dtype)
    x[::2] *= -1
    for name, ref in (("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("tanh", np.tanh),
                      ("abs", np.abs)):
        arg = np.abs(x) if name in ("log", "sqrt") else x
        vt = dtype if lanes == 1 else f"{dtype}x{lanes}"
        f = elementwise(name, [dtype], dtype,
                        lambda v, name=name, vt=vt: Call(name, (v,), vt), 64, lanes)
        out = np.zeros(64, dtype)
        build(f)(arg, out)
        np.testing.assert_allclose(out, ref(arg), rtol=2e-6, err_msg=name)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8"])
def test_integer_abs_min_max(dtype):
    a, b = data(dtype, 64, -128, 127), data(dtype, 64, -128, 127)
    if dtype != "uint8":
        a[0] = np.iinfo(dtype).min
    for name, ref in (("min", np.minimum), ("max", np.maximum)):
        out = np.zeros(64, dtype)
        build(elementwise(name, [dtype] * 2, dtype, lambda x, y, name=name: Binary(name, x, y),
                          lanes=8))(a, b, out)
        np.testing.assert_array_equal(out, ref(a, b))
    out = np.zeros(64, dtype)
    build(elementwise("iabs", [dtype], dtype, lambda x: Call("abs", (x,), x.dtype), lanes=4))(
        a, out)
    np.testing.assert_array_equal(out, np.abs(a))


def test_wrapping_int_arithmetic():
    a, b = data("int8", 64, -128, 127), data("int8", 64, -128, 127)
    for op, ref in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply)):
        out = np.zeros(64, np.int8)
        f = elementwise(op, ["int8"] * 2, "int8", lambda x, y, op=op: Binary(op, x, y))
        build(f)(a, b, out)
        np.testing.assert_array_equal(out, ref(a, b))


@pytest.mark.parametrize("lanes", [1, 16])
def test_compare_select_not_and_bool_buffers(lanes):
    n = 64
    a, b = data("float32", n), data("float32", n)
    a[:8] = b[:8]
    flags = data("bool", n)
    A, B, F = Buffer("a", "float32", (n,)), Buffer("b", "float32", (n,)), Buffer("f", "bool", (n,))
    O, G = Buffer("o", "float32", (n,)), Buffer("g", "bool", (n,))
    i = Var("i")
    idx = i if lanes == 1 else ramp(mul(i, c(lanes)), lanes)
    s = "" if lanes == 1 else f"x{lanes}"
    la, lb, lf = Load(A, (idx,), "float32" + s), Load(B, (idx,), "float32" + s), \
        Load(F, (idx,), "bool" + s)
    cond = Binary("and", Compare("le", la, lb), Not(lf))
    body = Seq((Store(O, (idx,), Select(cond, la, Binary("max", la, lb))),
                Store(G, (idx,), Binary("or", Compare("ne", la, lb), lf))))
    o, g = np.zeros(n, np.float32), np.zeros(n, bool)
    build(PrimFunc("logic", (A, B, F, O, G), loop(i, n // lanes, body)))(a, b, flags, o, g)
    cond_ref = (a <= b) & ~flags
    np.testing.assert_array_equal(o, np.where(cond_ref, a, np.maximum(a, b)))
    np.testing.assert_array_equal(g, (a != b) | flags)


# ---------------------------------------------------------------------- memory


def test_masked_load_and_store_tail():
    n, lanes = 20, 16
    A, B = Buffer("A", "float32", (n,)), Buffer("B", "float32", (n,))
    i = Var("i")
    idx = ramp(mul(i, c(lanes)), lanes)
    mask = Compare("lt", idx, Broadcast(c(n), lanes))
    val = mul(Load(A, (idx,), "float32x16", mask), Broadcast(c(3.0, "float32"), lanes))
    f = PrimFunc("tail", (A, B), loop(i, 2, Store(B, (idx,), val, mask)))
    ll = generate(f).text
    assert "llvm.masked.load" in ll and "llvm.masked.store" in ll
    a, b = data("float32", n), np.full(n, -1.0, np.float32)
    build(f)(a, b)
    np.testing.assert_allclose(b, a * 3)


def test_gather_scatter_and_strided_ramp():
    n = 64
    A, Idx, O, S = (Buffer("A", "float32", (2 * n,)), Buffer("idx", "int64", (n,)),
                    Buffer("O", "float32", (n,)), Buffer("S", "float32", (n,)))
    i = Var("i")
    idx = ramp(mul(i, c(8)), 8)
    gathered = Load(A, (Load(Idx, (idx,), "int64x8"),), "float32x8")
    strided = Load(A, (ramp(mul(i, c(16)), 8, 2),), "float32x8")
    body = Seq((Store(O, (idx,), add(gathered, strided)),
                Store(S, (Load(Idx, (idx,), "int64x8"),), gathered)))
    f = PrimFunc("gather", (A, Idx, O, S), loop(i, n // 8, body))
    ll = generate(f).text
    assert "llvm.masked.gather" in ll and "llvm.masked.scatter" in ll
    a = data("float32", 2 * n)
    perm = RNG.permutation(n).astype(np.int64)
    o, s = np.zeros(n, np.float32), np.zeros(n, np.float32)
    build(f)(a, perm, o, s)
    np.testing.assert_allclose(o, a[perm] + a[0::2])
    np.testing.assert_allclose(s[perm], a[perm])


@pytest.mark.parametrize("lanes", [1, 16])
def test_reduction_with_local_accumulator(lanes):
    M, K = 8, 64
    A, out = Buffer("A", "float32", (M * K,)), Buffer("out", "float32", (M * lanes,))
    acc = Buffer("acc", "float32", (lanes,), "local")
    i, k = Var("i"), Var("k")
    s = f"x{lanes}" if lanes > 1 else ""
    z = c(0) if lanes == 1 else ramp(c(0), lanes)
    oi = mul(i, c(lanes)) if lanes == 1 else ramp(mul(i, c(lanes)), lanes)
    src = add(mul(i, c(K)), mul(k, c(lanes))) if lanes > 1 else add(mul(i, c(K)), k)
    src = ramp(src, lanes) if lanes > 1 else src
    zero = c(0.0, "float32") if lanes == 1 else Broadcast(c(0.0, "float32"), lanes)
    body = Allocate(acc, Seq((
        Store(acc, (z,), zero),
        loop(k, K // lanes, Store(acc, (z,), add(Load(acc, (z,), "float32" + s),
                                                 Load(A, (src,), "float32" + s)))),
        Store(out, (oi,), Load(acc, (z,), "float32" + s)))))
    f = PrimFunc("rowsum", (A, out), loop(i, M, body))
    assert "alloca [" in generate(f).text
    a, o = data("float32", M * K), np.zeros(M * lanes, np.float32)
    build(f)(a, o)
    np.testing.assert_allclose(o.reshape(M, lanes).sum(1), a.reshape(M, K).sum(1), rtol=1e-5)


def test_global_allocate_and_if_guard():
    n = 100
    A, out = Buffer("A", "float32", (n,)), Buffer("out", "float32", (n,))
    T = Buffer("T", "float32", (n,), "global")
    i, j = Var("i"), Var("j")
    fill = loop(i, n, Store(T, (i,), mul(Load(A, (i,), "float32"), c(2.0, "float32"))))
    use = loop(j, n, IfThenElse(Compare("lt", j, c(60)),
                                Store(out, (j,), add(Load(T, (j,), "float32"),
                                                     c(1.0, "float32"))),
                                Store(out, (j,), c(-5.0, "float32"))))
    f = PrimFunc("tmp", (A, out), Allocate(T, Seq((fill, use))))
    ll = generate(f).text
    assert "aligned_alloc" in ll and "@free" in ll
    a, o = data("float32", n), np.zeros(n, np.float32)
    build(f)(a, o)
    np.testing.assert_allclose(o, np.where(np.arange(n) < 60, a * 2 + 1, -5))


def test_triangular_loop_with_variable_extent():
    n = 33
    A, out = Buffer("A", "int64", (n,)), Buffer("out", "int64", (n,))
    i, k = Var("i"), Var("k")
    body = Seq((Store(out, (i,), c(0)),
                For(k, c(0), i, "serial",
                    Store(out, (i,), add(Load(out, (i,), "int64"), Load(A, (k,), "int64"))))))
    a, o = data("int64", n), np.full(n, 7, np.int64)
    build(PrimFunc("tri", (A, out), loop(i, n, body)))(a, o)
    np.testing.assert_array_equal(o, np.concatenate([[0], np.cumsum(a)[:-1]]))


# ---------------------------------------------------------------------- parallel


def parallel_func(kind="parallel", inner="parallel"):
    """out[j, i] = sum_k A[i*K + k] * (j + 1) with a parallel i loop inside a serial j loop,
    a global scratch buffer from outside and a local accumulator inside."""
    J, N, K = 3, 37, 16
    A, out = Buffer("A", "float32", (N * K,)), Buffer("out", "float32", (J * N,))
    T = Buffer("T", "float32", (N * K,), "global")
    acc = Buffer("acc", "float32", (1,), "local")
    i, j, k, t = Var("i"), Var("j"), Var("k"), Var("t")
    scale = Cast("float32", add(j, c(1)))
    row = Allocate(acc, Seq((
        Store(acc, (c(0),), c(0.0, "float32")),
        For(k, c(0), c(K), inner,
            Store(acc, (c(0),), add(Load(acc, (c(0),), "float32"),
                                    Load(T, (add(mul(i, c(K)), k),), "float32")))),
        Store(out, (add(mul(j, c(N)), i),), mul(Load(acc, (c(0),), "float32"), scale)))))
    body = Allocate(T, Seq((
        For(t, c(0), c(N * K), kind, Store(T, (t,), Load(A, (t,), "float32"))),
        loop(j, J, For(i, c(0), c(N), kind, row)))))
    return PrimFunc("par", (A, out), body), (J, N, K)


def test_parallel_matches_serial_and_numpy():
    f, (J, N, K) = parallel_func()
    m, ref_m = build(f), build(parallel_func("serial", "serial")[0])
    assert "GOMP_parallel" in m.get_source("ll")
    a = data("float32", N * K)
    expect = np.outer(np.arange(1, J + 1), a.reshape(N, K).sum(1)).ravel()
    o_ref = np.zeros(J * N, np.float32)
    ref_m(a, o_ref)
    for threads in (2, 1, 3):
        m.set_num_threads(threads)
        o = np.zeros(J * N, np.float32)
        m(a, o)
        np.testing.assert_allclose(o, expect, rtol=1e-5)
        np.testing.assert_array_equal(o, o_ref)


def test_parallel_with_variable_extent_and_timer():
    n = Var("n")
    A, out = Buffer("A", "float32", (64,)), Buffer("out", "float32", (64,))
    i = Var("i")
    body = loop(n, 2, For(i, mul(n, c(32)), c(32), "parallel",
                          Store(out, (i,), mul(Load(A, (i,), "float32"), c(2.0, "float32")))))
    m = build(PrimFunc("pv", (A, out), body))
    m.set_num_threads(2)
    a, o = data("float32", 64), np.zeros(64, np.float32)
    m(a, o)
    np.testing.assert_allclose(o, a * 2)
    r = m.time_evaluator(number=100, repeat=3)(a, o)
    assert 0 < r.min < 0.05  # plausible even on a loaded 2-core VM


# ---------------------------------------------------------------------- errors, speed


def test_unflattened_access_is_a_build_error():
    A = Buffer("A", "float32", (4, 4))
    i = Var("i")
    f = PrimFunc("bad", (A,), loop(i, 4, Store(A, (i, i), c(1.0, "float32"))))
    with pytest.raises(BuildError, match="flattened"):
        build(f)


def test_unbound_variable_is_a_build_error():
    A = Buffer("A", "int64", (4,))
    with pytest.raises(BuildError, match="variable q"):
        build(PrimFunc("free", (A,), Store(A, (c(0),), Var("q"))))


def test_bad_opt_level():
    with pytest.raises(BuildError, match="opt_level"):
        build(vadd_func(), opt_level=5)


def test_generation_of_a_big_unrolled_body():
    n = 3000
    A, B = Buffer("A", "float32", (n * 16,)), Buffer("B", "float32", (n * 16,))
    stmts = []
    for k in range(n // 3):  # ~3 instructions per element: load, fmul/fadd, store, gep
        idx = ramp(c(16 * k), 16)
        stmts.append(Store(B, (idx,), add(mul(Load(A, (idx,), "float32x16"),
                                              Broadcast(c(1.5, "float32"), 16)),
                                          Broadcast(c(0.5, "float32"), 16))))
    f = PrimFunc("big", (A, B), Seq(tuple(stmts)))
    text = generate(f).text  # its speed is measured by benchmarks/compile_time.py, not here
    assert text.count("\n") > 3000 and text.count("fmul") >= n // 3


@pytest.mark.parametrize("levels", [(0, 0), (0, 1), (1, 2), (2, 3)])
def test_opt_levels(levels):
    m = build(vadd_func(), opt_level=levels[0], codegen_opt=levels[1])
    a, b, o = data("float32", 1024), data("float32", 1024), np.zeros(1024, np.float32)
    m(a, b, o)
    np.testing.assert_allclose(o, a + b)


def test_vector_exp_uses_simd_math_library(tmp_path):
    f = elementwise("vexp", ["float32"], "float32",
                    lambda v: Call("exp", (v,), "float32x16"), 64, 16)
    kernel = generate(f)
    if "mvec" not in kernel.libs:
        pytest.skip("glibc libmvec is not available")
    assert "_ZGVeN16v_expf" in kernel.text
    x, out = data("float32", 64, -5, 5), np.zeros(64, np.float32)
    m = build(f)
    m(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=2e-6)
    m.export_library(tmp_path / "vexp.so")
    from tiletune.runtime import load_module
    out[:] = 0
    load_module(tmp_path / "vexp.so")(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=2e-6)


def test_without_libgomp_parallel_loops_run_serially(monkeypatch):
    from tiletune.backends.llvm import parallel
    from tiletune.runtime import threads
    parallel.gomp_available.cache_clear()
    monkeypatch.setattr(threads, "find_libgomp", lambda: None)
    try:
        with pytest.warns(RuntimeWarning, match="libgomp"):
            m = build(vadd_func(kind="parallel"))
        assert "GOMP_parallel" not in m.get_source("ll") and not m.info.parallel
        a, b = RNG.random(1024, dtype=np.float32), RNG.random(1024, dtype=np.float32)
        out = np.empty(1024, np.float32)
        m(a, b, out)
        np.testing.assert_allclose(out, a + b)
    finally:
        parallel.gomp_available.cache_clear()


def test_scalar_predicate_on_vector_access():
    n = 32
    A, B = Buffer("A", "float32", (n,)), Buffer("B", "float32", (n,))
    i = Var("i")
    idx = ramp(mul(i, c(16)), 16)
    on = Compare("lt", i, c(1))  # only the first vector
    f = PrimFunc("pv", (A, B), loop(i, 2, Store(B, (idx,), Load(A, (idx,), "float32x16", on),
                                                  on)))
    a, b = data("float32", n), np.zeros(n, np.float32)
    build(f)(a, b)
    np.testing.assert_array_equal(b, np.where(np.arange(n) < 16, a, 0))


def test_failed_heap_allocation_raises_memory_error():
    """Fault: aligned_alloc returns NULL (a buffer larger than memory). Before, the kernel
    wrote through NULL (a segfault); now it skips the work and the call raises MemoryError."""
    n = 8
    A, out = Buffer("A", "float32", (n,)), Buffer("out", "float32", (n,))
    perm = Buffer("P", "int64", (n,))  # data-dependent stores: LLVM cannot elide the buffer

    def kernel(name: str, elems: int) -> PrimFunc:
        T = Buffer("T", "float32", (elems,), "global")
        i, j = Var("i"), Var("j")
        fill = loop(i, n, Store(T, (Load(perm, (i,), "int64"),), Load(A, (i,), "float32")))
        use = loop(j, n, Store(out, (j,), Load(T, (j,), "float32")))
        return PrimFunc(name, (A, perm, out), Allocate(T, Seq((fill, use))))

    a, p, o = data("float32", n), np.arange(n, dtype=np.int64)[::-1].copy(), np.zeros(n, "f4")
    mod = build(kernel("oom", 1 << 58))  # 2^60 bytes
    with pytest.raises(MemoryError, match="could not allocate"):
        mod(a, p, o)
    with pytest.raises(MemoryError):  # the flag is per call: raised again, then reset
        mod.time_evaluator(1, 1)(a, p, o)
    good = build(kernel("fine", n))
    good(a, p, o)  # a kernel whose allocation succeeds runs normally
    np.testing.assert_array_equal(o, a[::-1])


def test_bounds_check_raises_index_error_for_a_data_dependent_bad_index():
    """Accesses the compiler cannot prove safe (an index read from memory) are checked at
    run time with bounds_check=True: the bad access is skipped and the call raises."""
    n = 8
    A, out = Buffer("A", "float32", (n,)), Buffer("out", "float32", (n,))
    perm = Buffer("P", "int64", (n,))
    i = Var("i")
    f = PrimFunc("gather", (A, perm, out),
                 loop(i, n, Store(out, (i,), Load(A, (Load(perm, (i,), "int64"),), "float32"))))
    mod = build(f, bounds_check=True)
    a, o = data("float32", n), np.zeros(n, "float32")
    good = np.arange(n, dtype=np.int64)[::-1].copy()
    mod(a, good, o)
    np.testing.assert_array_equal(o, a[::-1])
    bad = good.copy()
    bad[3] = 1 << 40
    with pytest.raises(IndexError, match="out of bounds"):
        mod(a, bad, o)
    bad[3] = -1
    with pytest.raises(IndexError):
        mod(a, bad, o)
    mod(a, good, o)  # the flag was reset
    assert "__error" not in generate(f).text  # off by default: no checks


def test_bounds_check_keeps_vectorized_kernels_correct():
    import tiletune as tt

    A = tt.placeholder((64, 64), "float32", name="A")
    B = tt.placeholder((64, 64), "float32", name="B")
    k = tt.reduce_axis(64, name="k")
    C = tt.compute((64, 64), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    i, j = s[C].axis
    jo, ji = s[C].split(j, factor=8)
    s[C].reorder(i, jo, k, ji)
    s[C].vectorize(ji)
    f = tt.build(s, [A, B, C], bounds_check=True)
    a, b = data("float32", (64, 64)), data("float32", (64, 64))
    c = np.zeros((64, 64), "float32")
    f(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
