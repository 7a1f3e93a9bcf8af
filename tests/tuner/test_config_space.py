"""ConfigSpace: knob enumeration (AutoTVM's numbers), index maths, validity, sampling."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiletune.errors import TileTuneError, TuningError
from tiletune.tuner import (
    ConfigSpace,
    GridSearchTuner,
    InstantiationError,
    SplitEntity,
)


def split_sizes(length, **kw):
    space = ConfigSpace()
    space.define_split("x", length, **kw)
    return [list(e.size) for e in space.knobs["x"].entities]


def test_factors_policy_is_the_divisors():
    assert len(split_sizes(64)) == 7  # 1, 2, 4, ..., 64
    assert [s[1] for s in split_sizes(12)] == [1, 2, 3, 4, 6, 12]


def test_power2_and_verbose_policies():
    assert [s[1] for s in split_sizes(48, policy="power2")] == [1, 2, 4, 8, 16, 32]
    assert [s[1] for s in split_sizes(56, policy="verbose")] == [1, 2, 4, 7, 8, 14, 16, 28,
                                                                  32, 56]


def test_three_way_split_enumerates_inner_factor_pairs():
    sizes = split_sizes(64, num_outputs=3)
    assert len(sizes) == 28  # 2^i * 2^j with i + j <= 6
    assert all(s[0] == -1 and 64 % (s[1] * s[2]) == 0 for s in sizes)
    assert sizes[:3] == [[-1, 1, 1], [-1, 2, 1], [-1, 4, 1]]  # AutoTVM's DFS order


def test_max_factor_filter_and_candidate():
    assert [s[1] for s in split_sizes(64, max_factor=8)] == [1, 2, 4, 8]
    assert [s[1] for s in split_sizes(64, filter=lambda e: e.size[-1] >= 16)] == [16, 32, 64]
    assert split_sizes(64, policy="candidate", candidate=[[-1, 4], [-1, 8]]) == [[-1, 4],
                                                                                 [-1, 8]]
    with pytest.raises(TuningError, match="unknown policy"):
        split_sizes(64, policy="best")


@pytest.mark.parametrize("shape, sizes, total", [
    ((64, 64, 56), [7, 7, 10, 2], 980),
    ((128, 128, 28), [8, 8, 8, 2], 1024),
    ((256, 256, 14), [9, 9, 6, 2], 972),
    ((512, 512, 7), [10, 10, 4, 2], 800),
])
def test_resnet18_conv_space_sizes_match_autotvm(shape, sizes, total):
    def template(cfg, ic, oc, ow):
        cfg.define_split("tile_ic", ic)
        cfg.define_split("tile_oc", oc)
        cfg.define_split("tile_ow", ow, policy="verbose", filter=lambda e: e.size[-1] <= 64)
        cfg.define_knob("unroll_kw", [True, False])

    space = ConfigSpace.collect(template, *shape)
    assert [len(k) for k in space.knobs.values()] == sizes
    assert len(space) == total == space.num_valid()


def test_reorder_and_annotate_sizes():
    space = ConfigSpace()
    space.define_reorder("all", ["a", "b", "c"], policy="all")
    space.define_reorder("cand", ["a", "b", "c"], policy="candidate",
                         candidate=[["a", "b", "c"], ["c", "a", "b"]])
    space.define_annotate("ann", ["a", "b", "c"], policy="try_unroll_vec")
    space.define_annotate("unr", ["a", "b"], policy="try_unroll")
    assert [len(k) for k in space.knobs.values()] == [6, 2, 20, 4]  # 27 - 7 with two vecs
    assert space.knobs["cand"].entities[1].perm == (2, 0, 1)


def test_first_knob_is_least_significant_digit():
    space = ConfigSpace()
    space.define_knob("a", [0, 1, 2])
    space.define_knob("b", ["x", "y"])
    assert [space.get(i).to_json() for i in (0, 1, 3, 5)] == [
        {"a": 0, "b": "x"}, {"a": 1, "b": "x"}, {"a": 0, "b": "y"}, {"a": 2, "b": "y"}]
    with pytest.raises(TuningError, match="out of range"):
        space.get(6)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_index_config_round_trip(landscape_space, data):
    space = landscape_space
    i = data.draw(st.integers(0, len(space) - 1))
    cfg = space.get(i)
    assert cfg.index == i
    assert space.index_of(cfg.to_json()) == i
    assert space.from_json(cfg.to_json()) == cfg
    assert space.digits_to_point(space.point_to_digits(i)) == i
    assert list(space.digits_of([i])[0]) == space.point_to_digits(i)


def test_from_json_survives_reordered_knob_definitions(landscape_space):
    def reversed_template(cfg):
        cfg.define_annotate("ann", ["ax0", "ax1"], policy="try_unroll_vec")
        cfg.define_knob("unroll_kw", [True, False])
        cfg.define_split("tile_ow", 56, policy="verbose", filter=lambda e: e.size[-1] <= 64)
        cfg.define_split("tile_oc", 256)
        cfg.define_split("tile_ic", 256)

    other = ConfigSpace.collect(reversed_template)
    cfg = landscape_space.get(4321)
    moved = other.from_json(cfg.to_json())
    assert moved.index != cfg.index and moved.to_json() == cfg.to_json()
    with pytest.raises(TuningError, match="missing knobs"):
        other.index_of({"ann": ["none", "none"]})
    with pytest.raises(TuningError, match="not a choice"):
        other.index_of(cfg.to_json() | {"tile_ic": [-1, 3]})


def test_entity_str():
    space = ConfigSpace()
    space.define_split("tile_ic", 64)
    space.define_split("tile_ow", 56, policy="verbose")
    space.define_knob("unroll_kw", [True, False])
    cfg = space.from_json({"tile_ic": [-1, 16], "tile_ow": [-1, 14], "unroll_kw": True})
    assert str(cfg) == "tile_ic=[-1, 16] tile_ow=[-1, 14] unroll_kw=True"


def test_collect_mode_runs_the_template_with_defaults(stage, axis):
    seen = {}

    def template(cfg, n):
        x = axis("x", n)
        knob = cfg.define_split("tile_x", x, num_outputs=3)
        seen["knob"] = knob
        seen["axes"] = cfg["tile_x"].apply(stage, x)
        cfg.define_knob("unroll", [False, True])
        seen["unroll"] = cfg["unroll"].val
        cfg.add_flop(2 * n)

    space = ConfigSpace.collect(template, 64)
    assert len(space) == 28 * 2 and space.flop == 128
    assert len(seen["knob"]) == 28 and seen["unroll"] is False
    assert stage.calls == [("split", "x", 1), ("split", "x.i", 1)]
    template(space, 64)  # re-running on the same space is harmless
    assert len(space) == 56


def test_apply_mode_returns_the_chosen_entities(stage, axis):
    def template(cfg):
        i, j, k = axis("i", 64), axis("j", 32), axis("k", 8)
        cfg.define_split("tile_i", i, num_outputs=3)
        cfg.define_reorder("order", [i, j, k], policy="all")
        cfg.define_annotate("ann", [j, k], policy="try_unroll_vec")
        io, im, ii = cfg["tile_i"].apply(stage, i)
        cfg["order"].apply(stage, [i, j, k])
        cfg["ann"].apply(stage, [j, k])
        return io, im, ii

    space = ConfigSpace.collect(template)
    cfg = space.from_json({"tile_i": [-1, 4, 8], "order": [2, 0, 1], "ann": ["unroll", "vec"]})
    stage.calls.clear()
    io, im, ii = template(cfg)
    assert (io.extent, im.extent, ii.extent) == (2, 4, 8)
    assert stage.calls == [("split", "i", 32), ("split", "i.i", 8), ("reorder", "k", "i", "j"),
                           ("unroll", "j"), ("vectorize", "k")]


def test_apply_mode_errors(axis, stage):
    space = ConfigSpace()
    space.define_split("tile", 64)
    cfg = space.get(0)
    with pytest.raises(TuningError, match="lacks"):
        cfg.define_split("other", 64)
    with pytest.raises(TuningError, match="loop of 64 but is applied to a loop of 32"):
        cfg.define_split("tile", axis("x", 32))
    with pytest.raises(TuningError, match="no knob named 'nope'"):
        cfg["nope"]
    with pytest.raises(InstantiationError, match="too wide") as info:
        cfg.raise_error("too wide")
    assert isinstance(info.value, TuningError) and isinstance(info.value, TileTuneError)
    space.raise_error("default config is odd")  # collect mode: recorded, not raised
    assert space.errors == ["default config is odd"]


def test_annotate_apply_checks_unroll_and_vector_limits(stage, axis):
    space = ConfigSpace()
    space.define_annotate("ann", ["a", "b"], policy="candidate",
                          candidate=[["unroll", "vec"]])
    ann = space.get(0)["ann"]
    with pytest.raises(InstantiationError, match="max_unroll"):
        ann.apply(stage, [axis("a", 64), axis("b", 16)], max_unroll=16)
    with pytest.raises(InstantiationError, match="lanes"):
        ann.apply(stage, [axis("a", 4), axis("b", 12)], vec_size=[4, 8, 16])
    ann.apply(stage, [axis("a", 4), axis("b", 16)], max_unroll=16, vec_size=16)
    assert stage.calls[-2:] == [("unroll", "a"), ("vectorize", "b")]


def test_split_apply_with_tail(stage, axis):
    outer, inner = SplitEntity((-1, 16)).apply(stage, axis("x", 56))
    assert (outer.extent, inner.extent) == (4, 16)


# -- validity ---------------------------------------------------------------------------------
def constrained_space() -> ConfigSpace:
    space = ConfigSpace()
    space.define_split("tile_w", 56, policy="verbose")
    space.define_split("tile_c", 64)
    space.define_knob("vec", [4, 8, 16])
    space.add_constraint(lambda c: c["tile_c"].size[-1] % c["vec"].val == 0,
                         "vector width divides the channel tile")
    space.add_constraint(lambda c: c["tile_w"].size[-1] * c["tile_c"].size[-1] / 16 <= 28,
                         "register budget")
    return space


def brute_force_valid(space):
    return [i for i in range(len(space))
            if space.get(i)["tile_c"].size[-1] % space.get(i)["vec"].val == 0
            and space.get(i)["tile_w"].size[-1] * space.get(i)["tile_c"].size[-1] / 16 <= 28]


def test_constraints_define_the_valid_set():
    space = constrained_space()
    valid = brute_force_valid(space)
    assert space.num_valid() == len(valid) < len(space)
    assert list(space.valid_indices()) == valid
    bad = next(i for i in range(len(space)) if i not in set(valid))
    assert not space.is_valid(bad) and space.invalid_reason(bad) is not None
    assert space.invalid_reason(valid[0]) is None and space.get(valid[0]).valid()


def test_invalid_configs_are_never_proposed():
    space = constrained_space()
    valid = set(brute_force_valid(space))
    assert set(space.sample(10_000, 0)) == valid
    picked = space.sample(20, 1, exclude=set(list(valid)[:30]))
    assert len(set(picked)) == 20 and set(picked) <= valid - set(list(valid)[:30])
    rng = np.random.default_rng(0)
    for i in list(valid)[:40]:
        assert set(space.neighbours(i)) <= valid
        assert space.random_walk(i, rng) in valid
    walked = space.random_walk_batch(np.array(sorted(valid)), rng)
    assert set(walked.tolist()) <= valid
    grid = GridSearchTuner(space)
    assert grid.next_batch(10_000) == sorted(valid)


def test_neighbours_differ_in_exactly_one_knob(landscape_space):
    space = landscape_space
    i = int(space.valid_indices()[100])
    for j in space.neighbours(i, rng=3):
        diff = np.array(space.point_to_digits(i)) != np.array(space.point_to_digits(j))
        assert diff.sum() == 1
    assert space.random_walk(i, 5) != i


def test_sample_is_uniform_and_without_replacement():
    space = ConfigSpace()
    space.define_knob("a", list(range(10)))
    space.define_knob("b", list(range(10)))
    space.add_constraint(lambda c: c["a"].val != c["b"].val, "a != b")
    counts = np.zeros(100)
    rng = np.random.default_rng(0)
    for _ in range(400):
        picked = space.sample(9, rng)
        assert len(set(picked)) == 9
        counts[picked] += 1
    assert counts[[i * 11 for i in range(10)]].sum() == 0  # the diagonal is invalid
    nonzero = counts[counts > 0]
    assert len(nonzero) == 90 and nonzero.min() > 15 and nonzero.max() < 65  # mean 40


def test_sample_a_billion_point_space():
    space = ConfigSpace()
    for k in range(6):
        space.define_split(f"s{k}", 2**9 * 3**3, num_outputs=2)  # 40 divisors each
    space.add_constraint(lambda c: c["s0"].size[-1] <= c["s1"].size[-1], "s0 <= s1")
    assert len(space) == 40**6
    picked = space.sample(500, 7, exclude={0, 1, 2})  # rejection sampling, no enumeration
    assert len(set(picked)) == 500 and all(space.is_valid(i) for i in picked)
    assert 0.3 < space.num_valid() / len(space) < 0.7  # estimated; the truth is ~0.51
    with pytest.raises(TuningError, match="too many to enumerate"):
        space.valid_indices()


def test_sample_exhausts_a_small_space():
    space = constrained_space()
    valid = space.valid_indices()
    first = space.sample(len(valid) - 3, 0)
    rest = space.sample(10, 1, exclude=set(first))
    assert sorted(first + rest) == list(valid)
    assert space.sample(5, 2, exclude=set(valid.tolist())) == []


def test_knob_features():
    space = ConfigSpace()
    space.define_split("tile", 56, policy="verbose")
    space.define_reorder("order", ["a", "b"], policy="all")
    space.define_annotate("ann", ["a"], policy="try_vec")
    space.define_knob("unroll", [True, False])
    space.define_knob("mode", ["x", "y", "z"])
    cfg = space.from_json({"tile": [-1, 16], "order": [1, 0], "ann": ["vec"], "unroll": False,
                           "mode": "z"})
    row = space.knob_features([cfg.index])[0]
    assert row.tolist() == [2.0, 4.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0]
    assert space.knob_features(np.arange(len(space))).shape == (len(space), 9)


def test_broken_constraint_is_reported():
    space = ConfigSpace()
    space.define_knob("a", [1, 2])
    space.add_constraint(lambda c: c["missing"].val > 0, "uses a missing knob")
    with pytest.raises(TuningError, match="uses a missing knob"):
        space.is_valid(0)


def test_bad_definitions_raise_tuning_errors():
    space = ConfigSpace()
    with pytest.raises(TuningError, match="constant integer extent"):
        space.define_split("x", 3.5)
    with pytest.raises(TuningError, match="no choices"):
        space.define_split("y", 64, filter=lambda e: False)
    with pytest.raises(TuningError, match="permutations"):
        space.define_reorder("r", list(range(9)), policy="all")
    with pytest.raises(TuningError, match="unknown policy"):
        space.define_annotate("a", ["x"], policy="try_fuse")


def test_a_space_without_knobs_has_one_config():
    space = ConfigSpace()
    assert len(space) == 1 and space.get(0).to_json() == {} and space.sample(3) == [0]
