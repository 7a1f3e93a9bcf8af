"""One test per lowering pass in ``compiler/passes``: the before/after of its docstring."""
from __future__ import annotations

import textwrap

from tiletune.compiler.passes.flatten import flatten
from tiletune.compiler.passes.fold_indices import FoldIndices, fold_index
from tiletune.compiler.passes.guard_loads import guard_select_loads
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.compiler.passes.simplify_pass import simplify_func
from tiletune.compiler.passes.spatial import lower_spatial
from tiletune.compiler.passes.unroll import unroll
from tiletune.compiler.passes.vectorize import vectorize
from tiletune.ir.expr import Const, Load, Select, Var
from tiletune.ir.stmt import Buffer, For, IfThenElse, PrimFunc, Store

F32 = "float32"


def c(v: int) -> Const:
    return Const(v, "int64")


def loop(v: Var, n: int, body, kind: str = "serial") -> For:
    return For(v, c(0), c(n), kind, body)


def same(func: PrimFunc, text: str) -> bool:
    return str(func).strip() == textwrap.dedent(text).strip()


def test_flatten_makes_row_major_indices():
    i, j, k = Var("i"), Var("j"), Var("k")
    A, B = Buffer("A", F32, (64, 32)), Buffer("B", F32, (32, 16))
    C = Buffer("C", F32, (64, 16))
    body = Store(C, (i, j), Load(A, (i, k), F32) * Load(B, (k, j), F32))
    f = PrimFunc("f", (A, B, C), loop(i, 64, loop(j, 16, loop(k, 32, body))))
    assert same(flatten(f), """
        def f(A: float32[64, 32], B: float32[32, 16], C: float32[64, 16]):
          for i in range(64):
            for j in range(16):
              for k in range(32):
                C[i * 16 + j] = A[i * 32 + k] * B[k * 16 + j]
        """)
    flat = flatten(f)
    assert flatten(flat) is flat  # already flat: unchanged


def test_fold_indices_collects_constants_last():
    icc, kw, icb = Var("icc"), Var("kw"), Var("icb")
    e = icc * 9216 + c(4) * 32 + kw * 32 + icb + c(0) * 16
    assert repr(fold_index(e)) == "icc * 9216 + kw * 32 + icb + 128"
    assert repr(fold_index(icb - icb + c(3))) == "3"
    A = Buffer("A", F32, (1 << 20,))
    B = Buffer("B", F32, (1 << 20,))
    f = PrimFunc("f", (A, B), Store(B, (kw * 2 + c(1) + kw,), Load(A, (c(2) * icc + c(5),), F32)))
    assert same(f.with_body(FoldIndices().visit(f.body)), """
        def f(A: float32[1048576], B: float32[1048576]):
          B[kw * 3 + 1] = A[icc * 2 + 5]
        """)


def test_guard_select_loads_predicates_only_unsafe_loads():
    h = Var("h")
    A, P = Buffer("A", F32, (8,)), Buffer("P", F32, (8,))
    unsafe = Select(h >= 1, Load(A, (h - 1,), F32), Const(0.0, F32))
    f = PrimFunc("g", (A, P), loop(h, 8, Store(P, (h,), unsafe)))
    assert same(guard_select_loads(f), """
        def g(A: float32[8], P: float32[8]):
          for h in range(8):
            P[h] = select(h >= 1, A[h - 1 if h >= 1], 0.0f)
        """)
    safe = Select(h >= 1, Load(A, (h,), F32), Const(0.0, F32))
    g = PrimFunc("g", (A, P), loop(h, 8, Store(P, (h,), safe)))
    assert guard_select_loads(g) is g


def test_simplify_pass_drops_unit_loops_and_proven_guards():
    i, j = Var("i"), Var("j")
    A = Buffer("A", F32, (40,))
    body = IfThenElse(i * 8 + j * 8 < 40, Store(A, (i * 8 + j * 8,), Const(0.0, F32)))
    f = PrimFunc("s", (A,), loop(i, 4, loop(j, 1, body)))
    assert same(simplify_func(f), """
        def s(A: float32[40]):
          for i in range(4):
            A[i * 8] = 0.0f
        """)


def test_unroll_copies_the_body_per_iteration():
    k = Var("k")
    S = Buffer("S", F32, (3,))
    f = PrimFunc("u", (S,), loop(k, 3, Store(S, (k,), Const(1.0, F32)), "unrolled"))
    assert same(unroll(f), """
        def u(S: float32[3]):
          S[0] = 1.0f
          S[1] = 1.0f
          S[2] = 1.0f
        """)
    serial = PrimFunc("u", (S,), loop(k, 3, Store(S, (k,), Const(1.0, F32))))
    assert unroll(serial) is serial


def test_vectorize_turns_the_loop_into_ramps_and_broadcasts():
    i, j = Var("i"), Var("j")
    A, B, C = Buffer("A", F32, (64,)), Buffer("B", F32, (4,)), Buffer("C", F32, (64,))
    body = Store(C, (i * 16 + j,), Load(A, (i * 16 + j,), F32) + Load(B, (i,), F32))
    f = PrimFunc("v", (A, B, C), loop(i, 4, loop(j, 16, body, "vectorized")))
    assert same(vectorize(f), """
        def v(A: float32[64], B: float32[4], C: float32[64]):
          for i in range(4):
            C[ramp(i * 16, 1, 16)] = A[ramp(i * 16, 1, 16)] + x16(B[i])
        """)


def test_lower_spatial_vectorizes_the_innermost_and_unrolls_the_rest():
    cv, k = Var("c"), Var("k")
    x, w, acc = Buffer("x", F32, (4,)), Buffer("w", F32, (4, 16)), Buffer("acc", F32, (16,))
    value = Load(acc, (k,), F32) + Load(x, (cv,), F32) * Load(w, (cv * 16 + k,), F32)
    f = PrimFunc("sp", (x, w, acc),
                 loop(cv, 4, loop(k, 16, Store(acc, (k,), value), "spatial"), "spatial"))
    assert same(lower_spatial(f), """
        def sp(x: float32[4], w: float32[4, 16], acc: float32[16]):
          for c in unrolled(4):
            for k in vectorized(16):
              acc[k] = acc[k] + x[c] * w[c * 16 + k]
        """)


def test_pipeline_order():
    assert [n for n, _ in pipeline("llvm")] == [
        "simplify", "flatten", "simplify_flat", "guard_select_loads", "lower_spatial",
        "unroll", "vectorize"]
    assert [n for n, _ in pipeline("vta")] == ["simplify"]
