"""Tasks: registry, workload keys, JSON round trip, instantiation vs NumPy, user templates."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import TuningError
from tiletune.tuner import Task, get_template, template
from tiletune.tuner.templates.task import count_flop, parse_workload_key, workload_key


@template("test_matmul")
def matmul(cfg, N, L, M, dtype="float32"):
    """The AutoTVM tutorial's matmul template, with cfg passed explicitly."""
    A = tt.placeholder((N, L), dtype, name="A")
    B = tt.placeholder((L, M), dtype, name="B")
    k = tt.reduce_axis(L, name="k")
    C = tt.compute((N, M), lambda i, j: tt.sum(A[i, k] * B[k, j], axis=k), name="C")
    s = tt.create_schedule(C)
    y, x = s[C].axis
    cfg.define_split("tile_y", y, num_outputs=2)
    cfg.define_split("tile_x", x, num_outputs=2)
    yo, yi = cfg["tile_y"].apply(s[C], y)
    xo, xi = cfg["tile_x"].apply(s[C], x)
    s[C].reorder(yo, xo, k, yi, xi)
    return s, [A, B, C]


def test_registry_and_aliases():
    assert get_template("conv2d") is get_template("conv2d_nchwc")
    assert get_template("test_matmul") is matmul
    with pytest.raises(TuningError, match="known templates:.*dense"):
        get_template("no_such_op")


def test_workload_key_is_stable_and_round_trips():
    t = Task("conv2d", (1, 64, 56, 56, 64, 3, 3, 1, 1))
    assert t.workload_key == 'conv2d_nchwc(1,64,56,56,64,3,3,1,1,"float32")@llvm'
    assert t.args == (1, 64, 56, 56, 64, 3, 3, 1, 1, "float32")  # defaults filled in
    assert Task("conv2d_nchwc", [np.int64(1), 64, 56, 56, 64, 3, 3, 1, 1, "float32"]
                ).workload_key == t.workload_key
    t2 = Task.from_json(json.loads(json.dumps(t.to_json())))
    assert t2.workload_key == t.workload_key and len(t2.space) == len(t.space)
    t3 = pickle.loads(pickle.dumps(Task("test_matmul", (8, 6, 4))))
    assert t3.func is matmul and t3.workload_key == 'test_matmul(8,6,4,"float32")@llvm'
    assert parse_workload_key(t.workload_key) == ("conv2d_nchwc", t.args, "llvm")
    assert workload_key("x", ((1, 2), "a")) == 'x([1,2],"a")@llvm'
    assert parse_workload_key('x([1,2],"a")@llvm') == ("x", ((1, 2), "a"), "llvm")


def test_flop_from_template_and_counted():
    assert Task("dense", (8, 16, 4)).flop == 2 * 8 * 16 * 4
    t = Task(matmul, (8, 6, 4))
    assert t.name == "test_matmul" and t.flop == 2 * 8 * 6 * 4
    _, tensors = t.instantiate(0)
    assert count_flop(tensors) == 2 * 8 * 6 * 4


@pytest.mark.parametrize("name,args", [
    ("dense", (24, 40, 20)),
    ("conv2d_nchwc", (1, 8, 9, 9, 16, 3, 3, 1, 1)),
    ("conv2d_nchwc", (1, 8, 10, 10, 8, 1, 1, 2, 0)),
    ("depthwise_conv2d", (1, 8, 10, 10, 3, 1, 1)),
])
def test_instantiated_configs_match_numpy(name, args):
    t = Task(name, args)
    inputs = t.make_inputs(seed=3)
    expected = t.reference(inputs)
    picks = list(t.space.sample(3, rng=1))
    default = t.default_config()
    assert default is not None and default.valid()
    for cfg in picks + [default]:
        s, tensors = t.instantiate(cfg)
        f = tt.build(s, tensors)
        arrays, out_pos = t.prepare(cfg, inputs, tensors)
        f(*arrays)
        assert t.check([arrays[k] for k in out_pos], expected) is None, str(cfg)


def test_user_template_reference_by_naive_build():
    t = Task("test_matmul", (16, 8, 12))
    inputs = t.make_inputs(0)
    assert [a.shape for a in inputs] == [(16, 8), (8, 12)]
    (ref,) = t.reference(inputs)
    np.testing.assert_allclose(ref, inputs[0] @ inputs[1], rtol=1e-5)
    cfg = t.space.get(len(t.space) - 1)
    s, tensors = t.instantiate(cfg.to_json())
    arrays, out_pos = t.prepare(cfg, inputs, tensors)
    tt.build(s, tensors)(*arrays)
    assert t.check([arrays[2]], [ref]) is None
    bad = arrays[2].copy()
    bad[3, 4] += 1.0
    assert "1/192 elements differ" in t.check([bad], [ref])


def test_make_inputs_is_seeded():
    t = Task("dense", (8, 8, 8))
    a, b = t.make_inputs(5), t.make_inputs(5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], t.make_inputs(6)[0])


def test_unknown_arguments_and_bad_templates():
    with pytest.raises(TuningError, match="cannot take arguments"):
        Task("dense", (1, 2, 3, "float32", 5))

    def broken(cfg, n):
        cfg.define_knob("x", [])

    with pytest.raises(TuningError, match="collecting its config space"):
        Task(broken, (3,))
