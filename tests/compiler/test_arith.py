"""The shared index arithmetic: constants, linear forms, flat indices, point evaluation."""
from __future__ import annotations

from tiletune.compiler.arith import (
    const_int,
    evaluate,
    flat_index,
    flat_linear,
    linear,
    var_linear,
)
from tiletune.ir.expr import Binary, Cast, Const, Var


def c(v: int, dtype: str = "int64") -> Const:
    return Const(v, dtype)


def test_const_int_looks_through_integer_casts():
    assert const_int(Cast("int64", c(7, "int32"))) == 7
    assert const_int(Const(1.5, "float32")) is None
    assert const_int(Var("x")) is None


def test_linear_keeps_first_appearance_order_and_drops_cancelled_terms():
    x, y, z = Var("x"), Var("y"), Var("z")
    d = Binary("floordiv", z, c(2))
    terms, k = linear(x * 3 + d + c(4) * y - x * 3 + c(5) + y)
    assert list(terms.items()) == [(d, 1), (y, 5)] and k == 5
    terms, k = linear(x * y)  # not linear: one term
    assert len(terms) == 1 and k == 0


def test_linear_wraps_in_a_dtype():
    x = Var("x", "int8")
    terms, k = linear(x * c(100, "int8") * c(2, "int8") + c(127, "int8") + c(1, "int8"), "int8")
    assert terms == {x: -56} and k == -128


def test_var_linear_is_none_unless_affine():
    x, y = Var("x"), Var("y")
    assert var_linear(Cast("int64", Cast("int32", x * 2)) + y - c(1)) == ({x.uid: 2, y.uid: 1}, -1)
    assert var_linear(Binary("floormod", x, c(4))) is None


def test_flat_index_and_flat_linear_agree():
    i, j, k = Var("i"), Var("j"), Var("k")
    shape = (5, 6, 7)
    e = flat_index((i, j + 1, k), shape)
    assert repr(e) == "i * 42 + ((j + 1) * 7 + k)"
    assert flat_linear((i, j + 1, k), shape) == ({i.uid: 42, j.uid: 7, k.uid: 1}, 7)
    env = {i.uid: 2, j.uid: 3, k.uid: 4}
    assert evaluate(e, env) == 2 * 42 + 4 * 7 + 4
    assert flat_linear((Binary("floordiv", i, c(2)),), (5,)) is None


def test_evaluate_is_total():
    x = Var("x")
    assert evaluate(Binary("floordiv", x, c(0)), {x.uid: 3}) == 0
    assert evaluate(x + 1, {}) == 1
