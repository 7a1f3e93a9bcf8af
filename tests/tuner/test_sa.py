"""Simulated annealing finds the maxima of a score over a large space."""

import numpy as np

from tiletune.tuner import ConfigSpace, sa_optimize
from tiletune.tuner.search.sa import SimulatedAnnealing


def big_space():
    space = ConfigSpace()
    for k in range(6):
        space.define_knob(f"k{k}", list(range(16)))  # 16.7 M points
    return space


def score_fn(space, peak=(3, 12, 7, 0, 15, 9)):
    def score(indices):
        d = space.digits_of(indices)
        return -np.abs(d - np.array(peak)).sum(axis=1) + 0.3 * (d[:, 0] == d[:, 1])
    return score


def test_sa_finds_the_maximum():
    space = big_space()
    score = score_fn(space)
    best = sa_optimize(space, score, 10, rng=0)
    peak = space.digits_to_point([3, 12, 7, 0, 15, 9])
    assert best[0] == peak and len(set(best)) == 10
    scores = score(best)
    assert np.all(np.diff(scores) <= 0)  # best first


def test_sa_respects_exclude_and_is_seeded():
    space = big_space()
    score = score_fn(space)
    peak = space.digits_to_point([3, 12, 7, 0, 15, 9])
    a = sa_optimize(space, score, 8, exclude={peak}, rng=5, n_iter=200)
    b = sa_optimize(space, score, 8, exclude={peak}, rng=5, n_iter=200)
    assert a == b and peak not in a
    assert score(a)[0] == -1  # a neighbour of the excluded peak


def test_sa_returns_only_valid_points_and_persists_chains():
    space = ConfigSpace()
    space.define_knob("a", list(range(50)))
    space.define_knob("b", list(range(50)))
    space.add_constraint(lambda c: (c["a"].val + c["b"].val) % 3 != 0, "a + b not 0 mod 3")

    def score(indices):
        d = space.digits_of(indices)
        return -((d[:, 0] - 30) ** 2 + (d[:, 1] - 30) ** 2).astype(float)

    sa = SimulatedAnnealing(space, n_chains=32, n_iter=300, rng=1)
    first = sa.optimize(score, 5)
    assert all(space.is_valid(i) for i in first)
    assert space.digits_to_point([30, 31]) in first  # (30, 30) itself is invalid
    chains = sa.points.copy()
    second = sa.optimize(score, 5, exclude=set(first))
    assert not set(second) & set(first) and sa.points is not None
    assert all(space.is_valid(int(i)) for i in chains)
