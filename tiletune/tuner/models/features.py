"""Cost-model features of a config, from its lowered loop nest (AutoTVM's ``itervar`` idea).

The schedule is lowered to the first loop nest and flattened (no simplification, unrolling
or vectorisation), so every loop is still there with its annotation; loops of extent 1 are
skipped. For each store (the innermost statements, program order, up to
:data:`MAX_STORES`):

* a header: present, log2 trip count, loop depth, log2 arithmetic ops, writes a local
  buffer, reads the buffer it writes (a reduction update);
* per enclosing loop, outermost first and right-aligned to :data:`MAX_DEPTH` slots (the
  innermost loop is always the last slot, so nests of different depth line up): present,
  log2 extent, annotation one-hot (serial / parallel / unrolled / vectorized / spatial),
  log2 of the product of the extents above (top-down) and below (bottom-up) and the
  bottom-up product as a fraction of the trip count;
* per buffer access (the store first, then the loads in order, up to
  :data:`MAX_ACCESSES`): present, is-write, the element stride w.r.t. each loop slot,
  log2 count (iterations of loops the index depends on), log2 reuse (the others), log2
  bytes touched, the fraction of the buffer touched, local scope.

Then a few whole-kernel numbers. All counts go through ``sign(x) * log2(|x| + 1)`` as in
AutoTVM. Vectors have a fixed length (:func:`feature_length`), are deterministic, and line
up across configs and shapes of one template (they feed transfer learning).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tiletune.compiler.arith import evaluate, flat_index

from ...errors import TuningError
from ...ir import dtype as dt
from ...ir.expr import Binary, Call, Load, Var
from ...ir.functor import collect
from ...ir.stmt import Allocate, For, IfThenElse, PrimFunc, Seq, Store

MAX_DEPTH = 10
MAX_ACCESSES = 4
MAX_STORES = 6
KINDS = ("serial", "parallel", "unrolled", "vectorized", "spatial")
LOOP_WIDTH = 5 + len(KINDS)
ACCESS_WIDTH = 2 + MAX_DEPTH + 5
STORE_HEADER = 6
STORE_WIDTH = STORE_HEADER + MAX_DEPTH * LOOP_WIDTH + MAX_ACCESSES * ACCESS_WIDTH
GLOBAL_WIDTH = 4


def feature_length() -> int:
    """Length of every :func:`loop_features` vector."""
    return GLOBAL_WIDTH + MAX_STORES * STORE_WIDTH


def slog(x: float) -> float:
    """AutoTVM's transform: ``log2(x + 1)`` for x >= 0, ``-log2(-x + 1)`` below."""
    return math.log2(x + 1) if x >= 0 else -math.log2(-x + 1)


# -- walking the nest -------------------------------------------------------------------------
Loop = tuple[Var, int, int, str]  # var, lo, extent, kind


def _stores(func: PrimFunc) -> list[tuple[Store, list[Loop], dict[int, int]]]:
    """Every store with its enclosing loops (extent-1 loops dropped, their variables
    bound to their single value)."""
    out: list[tuple[Store, list[Loop], dict[int, int]]] = []

    def walk(s: Any, loops: list[Loop], fixed: dict[int, int]) -> None:
        if isinstance(s, For):
            lo, n = _value(s.lo, fixed), _extent(s.extent, fixed)
            if n == 1:
                walk(s.body, loops, {**fixed, s.var.uid: lo})
            else:
                walk(s.body, loops + [(s.var, lo, n, s.kind)], fixed)
        elif isinstance(s, Seq):
            for x in s.stmts:
                walk(x, loops, fixed)
        elif isinstance(s, Allocate):
            walk(s.body, loops, fixed)
        elif isinstance(s, IfThenElse):
            walk(s.then, loops, fixed)
            walk(s.else_, loops, fixed)
        elif isinstance(s, Store):
            out.append((s, loops, fixed))

    walk(func.body, [], {})
    return out


def _value(e: Any, env: dict[int, int]) -> int:
    try:
        return int(evaluate(e, env))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0


def _extent(e: Any, env: dict[int, int]) -> int:
    return max(1, _value(e, env))


def _strides(index: Any, loops: list[Loop], fixed: dict[int, int]) -> list[int]:
    """Element stride of ``index`` w.r.t. each loop, around the middle of the iteration space."""
    base = {**fixed, **{v.uid: lo + (n - 1) // 2 for v, lo, n, _ in loops}}
    at = evaluate(index, base)
    out = []
    for v, _, n, _ in loops:
        if n <= 1:
            out.append(0)
            continue
        env = dict(base)
        env[v.uid] += 1
        try:
            out.append(int(evaluate(index, env) - at))
        except (TypeError, ValueError):
            out.append(0)
    return out


def _access_row(buffer: Any, index: Any, loops: list[Loop], fixed: dict[int, int],
                write: bool) -> list[float]:
    all_strides = _strides(index, loops, fixed)
    strides, kept = all_strides[-MAX_DEPTH:], loops[-MAX_DEPTH:]
    count = math.prod(n for (_, _, n, _), st in zip(loops, all_strides) if st != 0)
    reuse = math.prod(n for (_, _, n, _), st in zip(loops, all_strides) if st == 0)
    size = max(1, buffer.size)
    touched = min(count, size)
    row = [1.0, float(write)]
    row += [0.0] * (MAX_DEPTH - len(kept)) + [slog(s) for s in strides]
    row += [slog(count), slog(reuse), slog(touched * dt.nbytes(buffer.dtype)), touched / size,
            float(buffer.scope == "local")]
    return row


def _store_row(store: Store, loops: list[Loop], fixed: dict[int, int]) -> list[float]:
    trip = math.prod(n for _, _, n, _ in loops)
    loads = collect(store.value, lambda e: isinstance(e, Load))
    arith = collect(store.value, lambda e: isinstance(e, Binary | Call) and e.dtype != dt.INDEX
                    and not dt.is_bool(e.dtype))
    reads_self = any(ld.buffer is store.buffer for ld in loads)
    row = [1.0, slog(trip), float(len(loops)), slog(len(arith)),
           float(store.buffer.scope == "local"), float(reads_self)]
    kept = loops[-MAX_DEPTH:]
    row += [0.0] * ((MAX_DEPTH - len(kept)) * LOOP_WIDTH)
    extents = [n for _, _, n, _ in loops]
    first = len(loops) - len(kept)
    for k, (_, _, n, kind) in enumerate(kept, start=first):
        top, bottom = math.prod(extents[:k]), math.prod(extents[k:])
        row += [1.0, slog(n)] + [float(kind == c) for c in KINDS]
        row += [slog(top), slog(bottom), bottom / trip]
    accesses = [(store.buffer, flat_index(store.indices, store.buffer.shape), True)]
    accesses += [(ld.buffer, flat_index(ld.indices, ld.buffer.shape), False) for ld in loads]
    for buf, index, write in accesses[:MAX_ACCESSES]:
        row += _access_row(buf, index, loops, fixed, write)
    row += [0.0] * ((MAX_ACCESSES - min(len(accesses), MAX_ACCESSES)) * ACCESS_WIDTH)
    return row


def loop_features(func: PrimFunc) -> np.ndarray:
    """The fixed-length feature vector of a loop nest (see the module docstring)."""
    stores = _stores(func)
    local_bytes = sum(a.buffer.size * dt.nbytes(a.buffer.dtype)
                      for a in collect(func.body, lambda n: isinstance(n, Allocate))
                      if a.buffer.scope == "local")
    n_par = len(collect(func.body, lambda n: isinstance(n, For) and n.kind == "parallel"))
    total = sum(math.prod(n for _, _, n, _ in loops) for _, loops, _ in stores)
    row = [float(len(stores)), slog(total), float(n_par), slog(local_bytes)]
    for store, loops, fixed in stores[:MAX_STORES]:
        row += _store_row(store, loops, fixed)
    row += [0.0] * ((MAX_STORES - min(len(stores), MAX_STORES)) * STORE_WIDTH)
    return np.asarray(row, dtype=np.float64)


def lower_for_features(sch: Any, args: Sequence[Any]) -> PrimFunc:
    """The loop nest features are read from: the first loop nest, flattened, before any
    simplification, unrolling or vectorisation (extent-1 loops are skipped when reading)."""
    from ...compiler.lower import loop_nest
    from ...compiler.passes.flatten import flatten
    return flatten(loop_nest(sch, args, "features"))


# -- featurizers for the tuners -----------------------------------------------------------------
FEATURE_KINDS = ("knob", "loop", "hybrid")


def make_featurizer(task: Any, kind: str = "knob") -> Callable[[Sequence[int]], np.ndarray]:
    """``featurize(indices) -> (n, d)`` for :class:`~tiletune.tuner.Tuner`.

    ``knob``: the config's knob values (fast; only comparable within one space);
    ``loop``: :func:`loop_features` of the lowered config (about 10-20 ms per config, cached
    per index; comparable across shapes of a template); ``hybrid``: both, concatenated.
    A config that fails to instantiate or lower gets a zero loop vector.
    """
    if kind not in FEATURE_KINDS:
        raise TuningError(f"unknown feature kind {kind!r}; choose {', '.join(FEATURE_KINDS)}")
    space = task.space
    if kind == "knob":
        return space.knob_features
    cache: dict[int, np.ndarray] = {}
    zero = np.zeros(feature_length())

    def loop_row(index: int) -> np.ndarray:
        row = cache.get(index)
        if row is None:
            try:
                s, tensors = task.instantiate(index)
                row = loop_features(lower_for_features(s, tensors))
            except Exception:  # noqa: BLE001 - invalid configs still need a row
                row = zero
            cache[index] = row
        return row

    def featurize(indices: Sequence[int]) -> np.ndarray:
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        loops = np.array([loop_row(i) for i in idx]).reshape(len(idx), feature_length())
        if kind == "loop":
            return loops
        return np.hstack([loops, space.knob_features(idx)])

    featurize.cache = cache  # type: ignore[attr-defined]
    return featurize
