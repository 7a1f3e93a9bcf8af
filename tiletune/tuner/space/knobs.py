"""Knobs: the named sub-spaces a template defines (split, reorder, annotate, choice).

Each knob is a finite, ordered list of *entities*; a config picks one entity per knob. A knob
also knows how to turn an entity into JSON (for records), back again, and into a numeric
feature row (for the cost model).
"""

from __future__ import annotations

import abc
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import TuningError


class InstantiationError(TuningError):
    """A config is invalid for its template (found while applying it to a schedule)."""


# -- entities -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitEntity:
    """Split factors, outermost first; ``size[0] == -1`` means "whatever is left"."""

    size: tuple[int, ...]

    def apply(self, stage: Any, axis: Any) -> list[Any]:
        """Split ``axis`` from the outside in; returns the ``len(size)`` resulting axes."""
        axes = []
        for i in range(1, len(self.size)):
            outer, axis = stage.split(axis, factor=math.prod(self.size[i:]))
            axes.append(outer)
        return [*axes, axis]

    def to_json(self) -> list[int]:
        return list(self.size)

    def __str__(self) -> str:
        return str(list(self.size))


@dataclass(frozen=True)
class ReorderEntity:
    """A permutation: new position k holds original axis ``perm[k]``."""

    perm: tuple[int, ...]

    def apply(self, stage: Any, axes: Sequence[Any]) -> list[Any]:
        """Call ``stage.reorder`` with the permuted axes; returns them."""
        ordered = [axes[i] for i in self.perm]
        stage.reorder(*ordered)
        return ordered

    def to_json(self) -> list[int]:
        return list(self.perm)

    def __str__(self) -> str:
        return str(list(self.perm))


@dataclass(frozen=True)
class AnnotateEntity:
    """One of ``"none"``, ``"unroll"``, ``"vec"`` per axis."""

    anns: tuple[str, ...]

    def apply(self, stage: Any, axes: Sequence[Any], max_unroll: int | None = None,
              vec_size: int | Sequence[int] | None = None) -> None:
        """Unroll / vectorize the axes. Raises :class:`InstantiationError` when an unrolled
        axis is longer than ``max_unroll`` or a vectorized one is not in ``vec_size``."""
        if len(axes) != len(self.anns):
            raise TuningError(f"annotation has {len(self.anns)} entries but {len(axes)} axes "
                              "were given")
        allowed = None if vec_size is None else (
            {vec_size} if isinstance(vec_size, int) else set(vec_size))
        for ax, ann in zip(axes, self.anns):
            extent = _extent_or_none(ax)
            if ann == "unroll":
                if max_unroll is not None and extent is not None and extent > max_unroll:
                    raise InstantiationError(f"unroll of a loop of {extent} > max_unroll "
                                             f"{max_unroll}")
                stage.unroll(ax)
            elif ann == "vec":
                if allowed is not None and extent is not None and extent not in allowed:
                    raise InstantiationError(f"vectorize of a loop of {extent} lanes, not in "
                                             f"{sorted(allowed)}")
                stage.vectorize(ax)

    def to_json(self) -> list[str]:
        return list(self.anns)

    def __str__(self) -> str:
        return str(list(self.anns))


@dataclass(frozen=True)
class OtherOptionEntity:
    """A free choice; the chosen value is ``val``."""

    val: Any

    def to_json(self) -> Any:
        return self.val

    def __str__(self) -> str:
        return repr(self.val) if isinstance(self.val, str) else str(self.val)


Entity = SplitEntity | ReorderEntity | AnnotateEntity | OtherOptionEntity


def _extent_or_none(ax: Any) -> int | None:
    try:
        return axis_extent(ax)
    except TuningError:
        return None


def axis_extent(x: Any) -> int:
    """An int, or the integer ``.extent`` of an axis (an IterVar)."""
    value = getattr(x, "extent", x)
    value = getattr(value, "value", value)  # an IntImm-like constant
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TuningError(f"expected an int or an axis with a constant integer extent, got "
                          f"{x!r}")
    return int(value)


def _json_key(value: Any) -> str:
    """A hashable canonical form of a JSON value (tuples and lists compare equal)."""
    def norm(v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    return json.dumps(norm(value), sort_keys=True, default=repr)


# -- knobs --------------------------------------------------------------------------------
class Knob(abc.ABC):
    """A named, ordered list of entities."""

    kind = "knob"

    def __init__(self, name: str, entities: Sequence[Entity]) -> None:
        if not entities:
            raise TuningError(f"knob {name!r} has no choices (check its policy/filter)")
        self.name = name
        self.entities: list[Entity] = list(entities)
        self._by_json: dict[str, int] = {}
        for i, e in enumerate(self.entities):
            self._by_json.setdefault(_json_key(e.to_json()), i)
        self._table: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.entities)

    def index_of(self, value: Any) -> int:
        """Position of the entity whose JSON form is ``value``."""
        try:
            return self._by_json[_json_key(value)]
        except KeyError:
            raise TuningError(f"{value!r} is not a choice of knob {self.name!r} "
                              f"({len(self)} choices, e.g. {self.entities[0].to_json()!r})"
                              ) from None

    def feature_table(self) -> np.ndarray:
        """``(len(self), width)`` float features, one row per entity (cached)."""
        if self._table is None:
            self._table = np.array([self._feature(e) for e in self.entities], dtype=np.float64)
        return self._table

    @abc.abstractmethod
    def _feature(self, entity: Any) -> list[float]:
        """The feature row of one entity of this knob."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, len={len(self)})"


def get_factors(n: int) -> list[int]:
    """All divisors of ``n``, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def get_pow2s(n: int) -> list[int]:
    """Powers of two <= ``n``, ascending."""
    return [1 << k for k in range(n.bit_length())]


class SplitKnob(Knob):
    """``define_split``: ways to split a loop of ``length`` into ``num_outputs`` loops.

    Policies (AutoTVM's): ``factors`` (divisors only, no tail), ``power2`` (powers of two,
    tails allowed), ``verbose`` (divisors and powers of two), ``candidate`` (explicit sizes).
    Inner factor tuples are enumerated by DFS, keeping products <= length (and dividing it
    when no tail is allowed).
    """

    kind = "split"

    def __init__(self, name: str, length: int, num_outputs: int = 2, policy: str = "factors",
                 max_factor: int | None = None, filter: Callable[[SplitEntity], bool] | None = None,
                 candidate: Sequence[Sequence[int]] | None = None, no_tail: bool | None = None
                 ) -> None:
        if length < 1 or num_outputs < 1:
            raise TuningError(f"split {name!r}: need length >= 1 and num_outputs >= 1, got "
                              f"{length}, {num_outputs}")
        self.length, self.num_outputs, self.policy = length, num_outputs, policy
        if policy == "candidate":
            if not candidate:
                raise TuningError(f"split {name!r}: policy 'candidate' needs candidate=[...]")
            entities = [SplitEntity(tuple(int(f) for f in c)) for c in candidate]
            bad = [e for e in entities if len(e.size) != num_outputs]
            if bad:
                raise TuningError(f"split {name!r}: candidate {list(bad[0].size)} does not have "
                                  f"{num_outputs} sizes")
        else:
            factors = self._factors(name, length, policy)
            if max_factor is not None:
                factors = [f for f in factors if f <= max_factor]
            no_tail = policy == "factors" if no_tail is None else no_tail
            entities = []
            for inner in itertools.product(factors, repeat=num_outputs - 1):
                prod = math.prod(inner)  # inner[0] is the innermost factor (AutoTVM's order)
                if prod <= length and (length % prod == 0 or (not no_tail and prod < length)):
                    entities.append(SplitEntity((-1, *inner[::-1])))
        if filter is not None:
            entities = [e for e in entities if filter(e)]
        super().__init__(name, entities)

    @staticmethod
    def _factors(name: str, length: int, policy: str) -> list[int]:
        if policy == "factors":
            return get_factors(length)
        if policy == "power2":
            return get_pow2s(length)
        if policy == "verbose":
            return sorted(set(get_factors(length)) | set(get_pow2s(length)))
        raise TuningError(f"split {name!r}: unknown policy {policy!r}; choose factors, power2, "
                          "verbose or candidate")

    def _feature(self, entity: SplitEntity) -> list[float]:
        inner = entity.size[1:]
        outer = -(-self.length // max(1, math.prod(inner))) if entity.size[0] == -1 \
            else entity.size[0]
        return [math.log2(outer)] + [math.log2(max(f, 1)) for f in inner]


class ReorderKnob(Knob):
    """``define_reorder``: permutations of ``num_axes`` axes (identity, all, candidate)."""

    kind = "reorder"

    def __init__(self, name: str, axes: Sequence[Any], policy: str = "identity",
                 candidate: Sequence[Sequence[Any]] | None = None) -> None:
        n = len(axes)
        if policy == "identity":
            perms = [tuple(range(n))]
        elif policy == "all":
            if n > 8:
                raise TuningError(f"reorder {name!r}: 'all' over {n} axes is {math.factorial(n)} "
                                  "permutations; use policy='candidate'")
            perms = list(itertools.permutations(range(n)))
        elif policy == "candidate":
            if not candidate:
                raise TuningError(f"reorder {name!r}: policy 'candidate' needs candidate=[...]")
            perms = [tuple(self._position(name, axes, a) for a in c) for c in candidate]
            for p in perms:
                if sorted(p) != list(range(n)):
                    raise TuningError(f"reorder {name!r}: candidate {list(p)} is not a "
                                      f"permutation of {n} axes")
        else:
            raise TuningError(f"reorder {name!r}: unknown policy {policy!r}; choose identity, "
                              "all or candidate")
        self.num_axes = n
        super().__init__(name, [ReorderEntity(p) for p in perms])

    @staticmethod
    def _position(name: str, axes: Sequence[Any], a: Any) -> int:
        if isinstance(a, int | np.integer) and not any(isinstance(x, int) for x in axes):
            return int(a)
        for k, x in enumerate(axes):
            if x is a:
                return k
        for k, x in enumerate(axes):
            if x == a:
                return k
        raise TuningError(f"reorder {name!r}: candidate axis {a!r} is not one of the axes")

    def _feature(self, entity: ReorderEntity) -> list[float]:
        return [float(p) for p in entity.perm]


ANNOTATIONS = ("none", "unroll", "vec")


class AnnotateKnob(Knob):
    """``define_annotate``: a choice of none/unroll/vec per axis, at most one ``vec``.

    Policy strings as AutoTVM: ``try`` means "or none", parts joined by ``_``:
    ``try_unroll`` -> {none, unroll}, ``try_vec`` -> {none, vec}, ``try_unroll_vec`` ->
    {none, unroll, vec}, ``unroll`` -> always unroll. ``candidate`` takes explicit lists.
    """

    kind = "annotate"

    def __init__(self, name: str, axes: Sequence[Any], policy: str = "try_unroll",
                 candidate: Sequence[Sequence[str]] | None = None) -> None:
        n = len(axes)
        if policy == "candidate":
            if not candidate:
                raise TuningError(f"annotate {name!r}: policy 'candidate' needs candidate=[...]")
            entities = [AnnotateEntity(tuple(c)) for c in candidate]
        else:
            choices = policy.replace("try", "none").split("_")
            if not choices or any(c not in ANNOTATIONS for c in choices):
                raise TuningError(f"annotate {name!r}: unknown policy {policy!r}; use parts of "
                                  "try/unroll/vec joined by '_', e.g. 'try_unroll_vec'")
            choices = list(dict.fromkeys(choices))
            entities = [AnnotateEntity(a) for a in itertools.product(choices, repeat=n)
                        if a.count("vec") <= 1]
        for e in entities:
            if len(e.anns) != n or any(a not in ANNOTATIONS for a in e.anns):
                raise TuningError(f"annotate {name!r}: bad annotation {list(e.anns)} for {n} "
                                  f"axes (each one of {', '.join(ANNOTATIONS)})")
        self.num_axes = n
        super().__init__(name, entities)

    def _feature(self, entity: AnnotateEntity) -> list[float]:
        row = []
        for a in entity.anns:
            row.extend(float(a == c) for c in ANNOTATIONS)
        return row


class OtherKnob(Knob):
    """``define_knob``: a free categorical choice among ``choices``."""

    kind = "other"

    def __init__(self, name: str, choices: Sequence[Any]) -> None:
        super().__init__(name, [OtherOptionEntity(c) for c in choices])

    def _feature(self, entity: OtherOptionEntity) -> list[float]:
        v = entity.val
        if isinstance(v, bool | int | float | np.number) and math.isfinite(float(v)):
            return [float(v)]
        return [float(self.index_of(v))]
