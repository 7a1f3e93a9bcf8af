"""Unrolling folds selects whose condition became constant (select chains over an unrolled
axis keep one branch per copy), and the kernel still computes the same values."""
import numpy as np

import tiletune as tt
from tiletune.compiler.build import loop_nest, run_passes
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.ir.expr import Select
from tiletune.ir.functor import collect


def _chain_kernel(unroll: bool):
    A = tt.placeholder((4, 8), "float32", name="A")
    B = tt.compute((4, 8), lambda i, j: tt.if_then_else(
        i == 0, A[i, j] * 2.0, tt.if_then_else(i == 1, A[i, j] + 1.0, A[i, j] - 3.0)), name="B")
    s = tt.create_schedule(B)
    if unroll:
        s[B].unroll(s[B].axis[0])
    return s, [A, B]


def test_unrolled_select_chain_keeps_one_branch_per_copy():
    s, args = _chain_kernel(unroll=True)
    func = run_passes(loop_nest(s, args, "chain"), pipeline("llvm"), None)
    assert collect(func.body, lambda n: isinstance(n, Select)) == []
    kept = run_passes(loop_nest(*_chain_kernel(unroll=False), "chain"), pipeline("llvm"), None)
    assert collect(kept.body, lambda n: isinstance(n, Select))
    a = np.arange(32, dtype="float32").reshape(4, 8)
    b = np.empty_like(a)
    tt.build(s, args, name="chain")(a, b)
    np.testing.assert_array_equal(b, np.stack([a[0] * 2, a[1] + 1, a[2] - 3, a[3] - 3]))
