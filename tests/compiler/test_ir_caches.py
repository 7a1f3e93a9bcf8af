"""Invariants of the IR's caches: canonical (hash-consed) nodes, cached var sets, the
rewriters' memos and the code generator's hoisting plan; and that two configs of one
template never share a wrong artefact."""
from __future__ import annotations

import copy
import gc
import math
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tiletune as tt
from tiletune.backends.llvm.codegen import generate
from tiletune.backends.llvm.hoist import HoistPlan, _free
from tiletune.compiler.lower import loop_nest, run_passes
from tiletune.compiler.passes.fold_indices import FoldIndices
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.ir.expr import (
    Binary,
    Cast,
    Const,
    Expr,
    Load,
    Ramp,
    Var,
    canonical,
    field_names,
    structural_equal,
)
from tiletune.ir.functor import substitute, uses_var, var_uids
from tiletune.ir.stmt import Buffer, For, Stmt, Store
from tiletune.schedules import conv2d

I, J = Var("i"), Var("j")


def _tree(draw_ops: list[tuple[str, int]], leaves: tuple[Expr, ...]) -> Expr:
    """A deterministic expression tree from a list of (op, leaf index) steps."""
    e: Expr = leaves[0]
    for op, k in draw_ops:
        e = Binary(op, e, leaves[k % len(leaves)])
    return e


_STEPS = st.lists(st.tuples(st.sampled_from(["add", "sub", "mul", "min", "max"]),
                            st.integers(0, 5)), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_equal_structures_share_canonical_node_and_hash(steps):
    leaves = (I, J, Const(1, "int64"), Const(3, "int64"))
    a, b = _tree(steps, leaves), _tree(steps, leaves)
    assert structural_equal(a, b)
    assert canonical(a) is canonical(b)
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1  # usable as dict keys


@settings(max_examples=60, deadline=None)
@given(_STEPS, st.integers(0, 11))
def test_changing_one_leaf_breaks_equality(steps, where):
    if not steps:
        steps = [("add", 0)]
    leaves = (I, J, Const(1, "int64"), Const(3, "int64"))
    a = _tree(steps, leaves)
    k = where % len(steps)
    op, leaf = steps[k]
    other = list(steps)
    other[k] = (op, leaf + 1 if (leaf + 1) % 4 != leaf % 4 else leaf + 2)
    b = _tree(other, leaves)
    assert not structural_equal(a, b)
    assert canonical(a) is not canonical(b)


def test_vars_and_buffers_compare_by_identity():
    i2 = Var("i")
    assert not structural_equal(I + 1, i2 + 1)
    b1, b2 = Buffer("A", "float32", (4,)), Buffer("A", "float32", (4,))
    l1 = Load(b1, (I,), "float32")
    assert structural_equal(l1, Load(b1, (I,), "float32"))
    assert not structural_equal(l1, Load(b2, (I,), "float32"))


def test_constants_keep_their_python_type_dtype_and_sign():
    assert not structural_equal(Const(1, "int32"), Const(1, "int64"))
    assert not structural_equal(Const(1, "float32"), Const(1.0, "float32"))
    assert structural_equal(Const(math.nan, "float32"), Const(math.nan, "float32"))
    assert not structural_equal(Const(0.0, "float32"), Const(-0.0, "float32"))
    assert structural_equal(Const(2.5, "float32"), Const(2.5, "float32"))


def test_canonical_table_never_confuses_dead_and_new_nodes():
    # ids of dead canonical nodes are reused by new objects: keys must never go stale
    for k in range(300):
        v = Var("t")
        old = canonical(Binary("add", Binary("mul", v, Const(k, "int64")), Const(1, "int64")))
        del old, v
        if k % 50 == 0:
            gc.collect()
        w = Var("t")
        x = Binary("add", Binary("mul", w, Const(k, "int64")), Const(1, "int64"))
        y = Binary("add", Binary("mul", w, Const(k, "int64")), Const(2, "int64"))
        assert not structural_equal(x, y)
        assert structural_equal(x, Binary("add", Binary("mul", w, Const(k, "int64")),
                                          Const(1, "int64")))


def test_copies_and_pickles_drop_the_canonical_cache():
    e = (I * 4 + J) * 2
    canonical(e)
    c = copy.copy(e)
    assert "_canon" not in c.__dict__ and structural_equal(c, e)
    p = pickle.loads(pickle.dumps(e))
    assert "_canon" not in p.__dict__


def test_var_sets_follow_rebuilt_nodes():
    e = Binary("add", Binary("mul", I, Const(4, "int64")), Const(1, "int64"))
    assert var_uids(e) == {I.uid}
    f = substitute(e, {I: J})
    assert var_uids(f) == {J.uid} and uses_var(f, J) and not uses_var(f, I)
    assert var_uids(e) == {I.uid}  # the original is unchanged


def test_substitute_returns_untouched_subtrees_themselves():
    buf = Buffer("A", "float32", (64,))
    untouched = Load(buf, (J * 8,), "float32")
    s = Store(buf, (I,), Binary("add", untouched, Load(buf, (I,), "float32")))
    out = substitute(s, {I: Const(3, "int64")})
    assert out is not s
    assert out.value.a is untouched
    assert substitute(s, {Var("k"): Const(0, "int64")}) is s


def test_fold_memo_is_per_node_not_per_structure_position():
    buf = Buffer("A", "float32", (64,))
    fold = FoldIndices()
    a = Store(buf, (I * 4 + Const(0, "int64") * 16,), Load(buf, (J + 2 + 3,), "float32"))
    b = Store(buf, (I * 4 + Const(1, "int64") * 16,), Load(buf, (J + 2 + 3,), "float32"))
    fa, fb = fold.visit(a), fold.visit(b)
    assert not structural_equal(fa.indices[0], fb.indices[0])
    assert fold.visit(a) is fa


# ------------------------------------------------------------------ hoisting plan


def _reference_invariants(body: Stmt, bound: set[int]) -> list[Expr]:
    """The per-loop walk the plan replaces (one walk of the body per loop)."""
    found: list[Expr] = []
    cache: dict = {}

    def expr(e: Expr) -> None:
        if isinstance(e, (Const, Var)):
            return
        fv = _free(e, cache)
        if fv is not None and fv <= bound and isinstance(e, (Binary, Cast, Ramp)):
            if not any(structural_equal(e, x) for x in found):
                found.append(e)
            return
        for f in field_names(e):
            v = getattr(e, f)
            for x in (v if isinstance(v, tuple) else (v,)):
                if isinstance(x, Expr):
                    expr(x)

    def stmt(s: Stmt) -> None:
        for f in field_names(s):
            v = getattr(s, f)
            for x in (v if isinstance(v, tuple) else (v,)):
                if isinstance(x, Expr):
                    expr(x)
                elif isinstance(x, Stmt):
                    stmt(x)

    stmt(body)
    return found


def _loops(s: Stmt, bound: set[int], out: list, root: For | None = None) -> None:
    """(loop, variables bound around it, outermost loop of its nest) for every loop."""
    if isinstance(s, For):
        root = root or s
        out.append((s, set(bound), root))
        bound = bound | {s.var.uid}
    for f in field_names(s):
        v = getattr(s, f)
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, Stmt):
                _loops(x, bound, out, root)


def _small_conv_func(cfg: dict | None = None):
    w = conv2d.Conv2dWorkload(1, 16, 10, 10, 16, 3, 3, 1, 1)
    s, a = conv2d.schedule(w, cfg or conv2d.default_config(w))
    return run_passes(loop_nest(s, a, "k"), pipeline("llvm"))


def test_hoist_plan_matches_a_walk_per_loop():
    func = _small_conv_func()
    loops: list = []
    _loops(func.body, set(), loops)
    assert len(loops) >= 4
    plans: dict[int, HoistPlan] = {}
    for loop, bound, root in loops:
        if loop is root:
            plans[id(root)] = HoistPlan(root.var, root.body, bound, {})
        got = plans[id(root)].for_body(loop.body)
        want = _reference_invariants(loop.body, bound)
        assert got is not None
        assert len(got) == len(want)
        assert all(structural_equal(x, y) for x, y in zip(got, want))


# ------------------------------------------------------------------ configs never share


def _configs(w) -> list[dict]:
    import itertools
    sp = conv2d.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if conv2d.is_valid(w, c)]
    return [conv2d.default_config(w), allc[0], allc[len(allc) // 2]]


def test_codegen_is_the_same_whatever_was_compiled_before():
    w = conv2d.Conv2dWorkload(1, 16, 10, 10, 16, 3, 3, 1, 1)
    cfgs = _configs(w)
    first = [generate(_small_conv_func(c)).text for c in cfgs]
    again = [generate(_small_conv_func(c)).text for c in reversed(cfgs)][::-1]
    assert first == again
    assert len(set(first)) == len(first)  # distinct configs, distinct modules


def test_two_configs_of_one_template_compute_correctly_in_turn():
    w = conv2d.Conv2dWorkload(1, 16, 10, 10, 16, 3, 3, 1, 1)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1, 16, 10, 10)).astype("float32")
    weight = rng.standard_normal((16, 16, 3, 3)).astype("float32")
    ref = conv2d.reference(data, weight, 1, 1)
    for cfg in _configs(w) * 2:
        s, a = conv2d.schedule(w, cfg)
        f = tt.build(s, a, opt_level=1, codegen_opt=1)
        out = np.empty(ref.shape, "float32")
        f(data, conv2d.pack_weight(weight, cfg), out)
        f.close()
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
