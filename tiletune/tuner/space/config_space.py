"""ConfigSpace and ConfigEntity: a template's tunable knobs and one point among them.

A template takes ``cfg`` as its first argument and calls ``cfg.define_split(...)``,
``cfg.define_knob(...)``, ... then reads ``cfg["name"]``. Run with a :class:`ConfigSpace`
(collect mode), the calls register knobs and ``cfg["name"]`` is the knob's first choice so the
template runs through; run with a :class:`ConfigEntity` (apply mode), ``cfg["name"]`` is the
chosen entity.

A config's index is a mixed-radix number, the first-defined knob the least significant
digit (AutoTVM's encoding): ``index = d0 + len(k0) * (d1 + len(k1) * (d2 + ...))``.

Example::

    def matmul_template(cfg, s, C):
        i, j = s[C].axis
        cfg.define_split("tile_i", i, num_outputs=2)
        cfg.define_knob("unroll", [True, False])
        cfg.add_constraint(lambda c: c["tile_i"].size[-1] <= 64, "inner tile <= 64")
        io, ii = cfg["tile_i"].apply(s[C], i)
        if cfg["unroll"].val:
            s[C].unroll(ii)

    space = ConfigSpace.collect(matmul_template, s, C)   # collect mode
    cfg = space.get(space.sample(1, seed)[0])             # a ConfigEntity
    matmul_template(cfg, fresh_s, fresh_C)                # apply mode
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import TuningError
from .knobs import (
    AnnotateKnob,
    Entity,
    InstantiationError,
    Knob,
    OtherKnob,
    ReorderKnob,
    SplitEntity,
    SplitKnob,
    axis_extent,
)

Constraint = Callable[["ConfigEntity"], bool]
RngLike = np.random.Generator | int | None

#: Spaces up to this size are enumerated exactly (num_valid, valid_indices).
ENUMERATE_LIMIT = 1_000_000
#: With constraints, sample() enumerates spaces up to this size, else rejection-samples.
_SAMPLE_ENUMERATE_LIMIT = 50_000


def as_rng(rng: RngLike) -> np.random.Generator:
    """A Generator from a Generator, a seed or None (seed 0: deterministic by default)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)


class ConfigSpace:
    """The knobs a template defines, their validity constraints and the index maths."""

    def __init__(self) -> None:
        self.knobs: dict[str, Knob] = {}
        self.constraints: list[tuple[Constraint, str]] = []
        self.flop: float = 0.0
        self.errors: list[str] = []
        self._reset_caches()

    @classmethod
    def collect(cls, template: Callable[..., Any], *args: Any, **kwargs: Any) -> ConfigSpace:
        """Run ``template(space, *args, **kwargs)`` in collect mode and return the space."""
        space = cls()
        template(space, *args, **kwargs)
        return space

    # -- the template API (collect mode) --------------------------------------------------
    def define_split(self, name: str, extent_or_axis: Any, num_outputs: int = 2,
                     policy: str = "factors", max_factor: int | None = None,
                     filter: Callable[[SplitEntity], bool] | None = None,  # noqa: A002
                     candidate: Sequence[Sequence[int]] | None = None,
                     no_tail: bool | None = None) -> Knob:
        """Split a loop of ``extent_or_axis`` (an int or an axis) into ``num_outputs`` loops."""
        return self._add(name, lambda: SplitKnob(
            name, axis_extent(extent_or_axis), num_outputs, policy, max_factor, filter,
            candidate, no_tail))

    def define_knob(self, name: str, choices: Sequence[Any]) -> Knob:
        """A free choice among ``choices``; ``cfg[name].val`` is the chosen value."""
        return self._add(name, lambda: OtherKnob(name, choices))

    def define_reorder(self, name: str, axes: Sequence[Any], policy: str = "identity",
                       candidate: Sequence[Sequence[Any]] | None = None) -> Knob:
        """Loop orders of ``axes``: ``identity``, ``all`` permutations or ``candidate``."""
        return self._add(name, lambda: ReorderKnob(name, axes, policy, candidate))

    def define_annotate(self, name: str, axes: Sequence[Any], policy: str = "try_unroll",
                        candidate: Sequence[Sequence[str]] | None = None) -> Knob:
        """Per-axis none/unroll/vec choices, e.g. policy ``try_unroll_vec``."""
        return self._add(name, lambda: AnnotateKnob(name, axes, policy, candidate))

    def add_constraint(self, fn: Constraint, reason: str) -> None:
        """Declare configs with ``fn(cfg) == False`` invalid (never proposed nor measured)."""
        key = (reason, getattr(fn, "__code__", fn))
        if all((r, getattr(f, "__code__", f)) != key for f, r in self.constraints):
            self.constraints.append((fn, reason))
            self._reset_caches()

    def add_flop(self, n: float) -> None:
        """Add ``n`` floating-point operations to the workload's count."""
        self.flop += float(n)

    def raise_error(self, msg: str) -> None:
        """Collect mode only records the error (the default config may be invalid)."""
        self.errors.append(msg)

    def __getitem__(self, name: str) -> Entity:
        """Collect mode: the knob's first choice, so the template can run through."""
        return self._knob(name).entities[0]

    def _add(self, name: str, make: Callable[[], Knob]) -> Knob:
        if name not in self.knobs:  # a template re-run on the same space is a no-op
            self.knobs[name] = make()
            self._reset_caches()
        return self.knobs[name]

    def _knob(self, name: str) -> Knob:
        try:
            return self.knobs[name]
        except KeyError:
            raise TuningError(f"no knob named {name!r}; defined: {', '.join(self.knobs) or '-'}"
                              ) from None

    def _reset_caches(self) -> None:
        self._mask: np.ndarray | None = None
        self._num_valid: int | None = None
        self._valid_cache: dict[int, bool] = {}
        self._strides: np.ndarray | None = None
        self._size: int | None = None

    # -- size and index maths -------------------------------------------------------------
    def __len__(self) -> int:
        if self._size is None:
            self._size = math.prod(len(k) for k in self.knobs.values())
        return self._size

    def point_to_digits(self, index: int) -> list[int]:
        """Per-knob entity positions of ``index`` (AutoTVM's point2knob)."""
        self._check_index(index)
        digits = []
        for k in self.knobs.values():
            index, d = divmod(index, len(k))
            digits.append(d)
        return digits

    def digits_to_point(self, digits: Sequence[int]) -> int:
        """Inverse of :meth:`point_to_digits` (knob2point)."""
        index, stride = 0, 1
        for d, k in zip(digits, self.knobs.values()):
            index += int(d) * stride
            stride *= len(k)
        return index

    def get(self, index: int) -> ConfigEntity:
        """The config at ``index`` (valid or not: see :meth:`is_valid`)."""
        index = int(index)
        ents = {name: k.entities[d] for (name, k), d in
                zip(self.knobs.items(), self.point_to_digits(index))}
        return ConfigEntity(self, index, ents)

    def index_of(self, values: Mapping[str, Any]) -> int:
        """Index of the config with these knob values (JSON form; any key order)."""
        missing = [n for n in self.knobs if n not in values]
        extra = [n for n in values if n not in self.knobs]
        if missing or extra:
            raise TuningError("config does not match the space: "
                              + "; ".join(p for p in (
                                  missing and f"missing knobs {missing}",
                                  extra and f"unknown knobs {extra}") if p))
        return self.digits_to_point([k.index_of(values[n]) for n, k in self.knobs.items()])

    def from_json(self, values: Mapping[str, Any]) -> ConfigEntity:
        """The config whose :meth:`ConfigEntity.to_json` is ``values``."""
        return self.get(self.index_of(values))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise TuningError(f"config index {index} out of range for a space of {len(self)}")

    # -- validity ---------------------------------------------------------------------------
    def invalid_reason(self, index: int) -> str | None:
        """The reason of the first violated constraint, or None if ``index`` is valid."""
        return self.get(index).invalid_reason()

    def is_valid(self, index: int) -> bool:
        """True when ``index`` is in range and satisfies every constraint."""
        index = int(index)
        if not 0 <= index < len(self):
            return False
        if not self.constraints:
            return True
        if self._mask is not None:
            return bool(self._mask[index])
        ok = self._valid_cache.get(index)
        if ok is None:
            if len(self._valid_cache) > 200_000:
                self._valid_cache.clear()
            ok = self._valid_cache[index] = self.get(index).invalid_reason() is None
        return ok

    def _valid_mask(self) -> np.ndarray:
        """Validity of every index (spaces up to :data:`ENUMERATE_LIMIT`), cached."""
        if self._mask is None:
            n = len(self)
            if n > ENUMERATE_LIMIT:
                raise TuningError(f"the space has {n} configs, too many to enumerate "
                                  f"(limit {ENUMERATE_LIMIT}); sample it instead")
            if not self.constraints:
                self._mask = np.ones(n, dtype=bool)
            else:
                names = list(self.knobs)[::-1]
                lists = [self.knobs[nm].entities for nm in names]
                # product() varies its last list fastest: the first knob, digit 0.
                self._mask = np.fromiter(
                    (ConfigEntity(self, i, dict(zip(names, ents))).invalid_reason() is None
                     for i, ents in enumerate(itertools.product(*lists))),
                    dtype=bool, count=n)
        return self._mask

    def num_valid(self) -> int:
        """Number of valid configs: exact up to :data:`ENUMERATE_LIMIT`, else estimated
        from 4096 random draws. Cached."""
        if self._num_valid is None:
            n = len(self)
            if not self.constraints:
                self._num_valid = n
            elif n <= ENUMERATE_LIMIT:
                self._num_valid = int(self._valid_mask().sum())
            else:
                draws = self._random_points(4096, np.random.default_rng(0))
                frac = np.mean([self.is_valid(i) for i in draws])
                self._num_valid = max(1, round(frac * n))
        return self._num_valid

    def valid_indices(self) -> np.ndarray:
        """All valid indices, ascending (spaces up to :data:`ENUMERATE_LIMIT`)."""
        return np.flatnonzero(self._valid_mask())

    def valid_mask_of(self, indices: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`is_valid` for an int array of in-range indices."""
        indices = np.asarray(indices)
        if not self.constraints:
            return np.ones(indices.shape, dtype=bool)
        if self._mask is None and len(self) <= _SAMPLE_ENUMERATE_LIMIT:
            self._valid_mask()
        if self._mask is not None:
            return self._mask[indices]
        return np.fromiter((self.is_valid(int(i)) for i in indices.ravel()), dtype=bool,
                           count=indices.size).reshape(indices.shape)

    # -- sampling and neighbourhoods ----------------------------------------------------------
    def sample(self, n: int, rng: RngLike = None, exclude: Collection[int] = ()) -> list[int]:
        """Up to ``n`` distinct valid indices not in ``exclude``, uniformly without replacement.

        Small spaces are enumerated (so the result is exact even when nearly exhausted);
        large ones are rejection-sampled.
        """
        rng = as_rng(rng)
        if n <= 0:
            return []
        total = len(self)
        enumerate_ = total <= ENUMERATE_LIMIT and (
            not self.constraints or self._mask is not None or total <= _SAMPLE_ENUMERATE_LIMIT)
        if enumerate_:
            cand = self.valid_indices()
            if exclude:
                cand = cand[~np.isin(cand, np.fromiter(exclude, dtype=np.int64,
                                                       count=len(exclude)))]
            pick = rng.choice(len(cand), size=min(n, len(cand)), replace=False)
            return [int(i) for i in cand[pick]]
        out: list[int] = []
        seen: set[int] = set()
        draws, limit = 0, 100 * n + 10_000
        while len(out) < n and draws < limit:
            for i in self._random_points(2 * (n - len(out)) + 16, rng):
                draws += 1
                if i in seen or i in exclude:
                    continue
                seen.add(i)
                if self.is_valid(i):
                    out.append(i)
                    if len(out) == n:
                        break
        if not out:
            raise TuningError(f"no valid, unvisited config found in {draws} random draws from "
                              f"a space of {total}; do the constraints reject almost "
                              f"everything? ({'; '.join(r for _, r in self.constraints)})")
        return out

    def _random_points(self, m: int, rng: np.random.Generator) -> list[int]:
        """``m`` uniform indices (valid or not), drawn digit by digit."""
        digits = [rng.integers(0, len(k), size=m) for k in self.knobs.values()]
        return [self.digits_to_point(col) for col in zip(*digits)] if digits else [0] * m

    def neighbours(self, index: int, rng: RngLike = None) -> list[int]:
        """Valid configs that differ from ``index`` in exactly one knob (shuffled if ``rng``)."""
        digits = self.point_to_digits(int(index))
        out = []
        for pos, k in enumerate(self.knobs.values()):
            for d in range(len(k)):
                if d != digits[pos]:
                    cand = self.digits_to_point(digits[:pos] + [d] + digits[pos + 1:])
                    if self.is_valid(cand):
                        out.append(cand)
        if rng is not None:
            as_rng(rng).shuffle(out)
        return out

    def random_walk(self, index: int, rng: RngLike = None) -> int:
        """Change one random knob to another random value, keeping the result valid.
        Returns ``index`` itself when it has no valid neighbour."""
        rng = as_rng(rng)
        digits = self.point_to_digits(int(index))
        multi = [p for p, k in enumerate(self.knobs.values()) if len(k) > 1]
        lens = [len(k) for k in self.knobs.values()]
        for _ in range(64 if multi else 0):
            pos = multi[int(rng.integers(len(multi)))]
            d = int(rng.integers(lens[pos] - 1))
            d += d >= digits[pos]
            cand = self.digits_to_point(digits[:pos] + [d] + digits[pos + 1:])
            if self.is_valid(cand):
                return cand
        near = self.neighbours(index)
        return near[int(rng.integers(len(near)))] if near else int(index)

    def random_walk_batch(self, indices: np.ndarray, rng: RngLike = None,
                          tries: int = 4) -> np.ndarray:
        """Vectorised one-knob random walk of each index; a row whose proposals were all
        invalid stays where it was."""
        rng = as_rng(rng)
        idx = np.asarray(indices, dtype=np.int64)
        lens = np.array([len(k) for k in self.knobs.values()], dtype=np.int64)
        multi = np.flatnonzero(lens > 1)
        out = idx.copy()
        if len(multi) == 0 or len(idx) == 0:
            return out
        strides = self._stride_array()
        todo = np.arange(len(idx))
        for _ in range(tries):
            pos = multi[rng.integers(len(multi), size=len(todo))]
            cur = (idx[todo] // strides[pos]) % lens[pos]
            new = rng.integers(0, lens[pos] - 1)
            new = new + (new >= cur)
            cand = idx[todo] + (new - cur) * strides[pos]
            ok = self.valid_mask_of(cand)
            out[todo[ok]] = cand[ok]
            todo = todo[~ok]
            if len(todo) == 0:
                break
        return out

    # -- features ---------------------------------------------------------------------------
    def digits_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(n, n_knobs)`` entity positions of many indices (vectorised)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        lens = np.array([len(k) for k in self.knobs.values()], dtype=np.int64)
        return (idx[:, None] // self._stride_array()[None, :]) % lens[None, :]

    def knob_features(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """AutoTVM-style flattened knob features, one row per index: log2 split sizes,
        reorder permutations, annotation one-hots, knob values (or positions)."""
        digits = self.digits_of(indices)
        cols = [k.feature_table()[digits[:, p]] for p, k in enumerate(self.knobs.values())]
        return np.hstack(cols) if cols else np.zeros((len(digits), 0))

    def _stride_array(self) -> np.ndarray:
        if self._strides is None:
            if len(self) >= 2 ** 62:
                raise TuningError(f"a space of {len(self)} configs is too large for "
                                  "vectorised index maths")
            lens = [len(k) for k in self.knobs.values()]
            self._strides = np.array([math.prod(lens[:p]) for p in range(len(lens))],
                                     dtype=np.int64)
        return self._strides

    def __repr__(self) -> str:
        knobs = ", ".join(f"{n}: {k.kind}[{len(k)}]" for n, k in self.knobs.items())
        return f"ConfigSpace(len={len(self)}, {knobs})"

    def __str__(self) -> str:
        lines = [f"ConfigSpace ({len(self)} configs, {len(self.constraints)} constraints)"]
        lines += [f"  {n:<16} {k.kind:<8} {len(k):>6} choices" for n, k in self.knobs.items()]
        lines += [f"  constraint: {r}" for _, r in self.constraints]
        return "\n".join(lines)


class ConfigEntity:
    """One point of a :class:`ConfigSpace`; a template run with it applies the choices."""

    def __init__(self, space: ConfigSpace, index: int, entities: dict[str, Entity]) -> None:
        self.space = space
        self.index = index
        self._entities = entities
        self.flop = 0.0

    # -- the template API (apply mode) -------------------------------------------------------
    def __getitem__(self, name: str) -> Entity:
        try:
            return self._entities[name]
        except KeyError:
            raise TuningError(f"no knob named {name!r} in this config; knobs: "
                              f"{', '.join(self._entities) or '-'}") from None

    def _defined(self, name: str) -> Knob:
        if name not in self.space.knobs:
            raise TuningError(f"the template defines knob {name!r}, which its config space "
                              "lacks: was the space collected with other arguments?")
        return self.space.knobs[name]

    def define_split(self, name: str, extent_or_axis: Any, *args: Any, **kwargs: Any) -> Knob:
        knob = self._defined(name)
        length = axis_extent(extent_or_axis)
        if isinstance(knob, SplitKnob) and knob.length != length:
            raise TuningError(f"split {name!r} was collected for a loop of {knob.length} but "
                              f"is applied to a loop of {length}")
        return knob

    def define_knob(self, name: str, *args: Any, **kwargs: Any) -> Knob:
        return self._defined(name)

    def define_reorder(self, name: str, *args: Any, **kwargs: Any) -> Knob:
        return self._defined(name)

    def define_annotate(self, name: str, *args: Any, **kwargs: Any) -> Knob:
        return self._defined(name)

    def add_constraint(self, fn: Constraint, reason: str) -> None:
        """No-op in apply mode: constraints live in the space."""

    def add_flop(self, n: float) -> None:
        self.flop += float(n)

    def raise_error(self, msg: str) -> None:
        """Declare this config invalid while applying it."""
        raise InstantiationError(msg)

    # -- inspection --------------------------------------------------------------------------
    def invalid_reason(self) -> str | None:
        """The reason of the first constraint this config violates, or None."""
        for fn, reason in self.space.constraints:
            try:
                ok = fn(self)
            except InstantiationError:
                ok = False
            except Exception as e:  # noqa: BLE001 - report a broken constraint clearly
                raise TuningError(f"constraint {reason!r} raised {type(e).__name__}: {e} "
                                  f"on config {self}") from e
            if not ok:
                return reason
        return None

    def valid(self) -> bool:
        return self.invalid_reason() is None

    def items(self) -> Iterable[tuple[str, Entity]]:
        return self._entities.items()

    def to_json(self) -> dict[str, Any]:
        """Knob name -> JSON value, e.g. ``{"tile_x": [-1, 16], "unroll": true}``."""
        return {name: e.to_json() for name, e in self._entities.items()}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ConfigEntity) and other.space is self.space
                and other.index == self.index)

    def __hash__(self) -> int:
        return hash((id(self.space), self.index))

    def __str__(self) -> str:
        return " ".join(f"{name}={e}" for name, e in self._entities.items())

    def __repr__(self) -> str:
        return f"ConfigEntity(index={self.index}, {self})"
