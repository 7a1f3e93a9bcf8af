"""Which config a library schedule uses when none is passed: tuned, else the default.

The schedules call ``lookup(w.key(), default_config(w), w)``. Outside any context that is
just the default. Inside ``with tt.tuner.apply_history_best("records.jsonl"):`` (which pushes
a :class:`DispatchContext`), a tuned workload gets its best config and an untuned one gets
the default and is remembered, so the context can report every untuned workload once.

This module knows nothing of the tuner (the layering points down): a context is any object
with ``query(key, workload) -> config | None`` and ``miss(key, workload)``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol


class DispatchContext(Protocol):
    def query(self, key: str, workload: Any = None) -> Mapping[str, Any] | None: ...

    def miss(self, key: str, workload: Any = None) -> None: ...


class _Stack(threading.local):
    def __init__(self) -> None:
        self.contexts: list[DispatchContext] = []


_STACK = _Stack()


def lookup(key: str, default: Any, workload: Any = None) -> Any:
    """The tuned config of ``key`` from the innermost context that has one, else ``default``
    (and, inside a context, the miss is recorded by the innermost context)."""
    cfg = query(key, workload)
    if cfg is not None:
        return cfg
    if _STACK.contexts:
        _STACK.contexts[-1].miss(key, workload)
    return default


def resolve(w: Any, cfg: Mapping[str, Any] | None, default: Any) -> dict[str, Any]:
    """The config a library ``build(w, cfg)`` uses: ``cfg`` if given, else the tuned one
    (:func:`lookup`), else ``default(w)``."""
    if cfg is None:
        cfg = lookup(w.key(), None, w)
    return dict(default(w) if cfg is None else cfg)


def with_config(module: Any, cfg: Mapping[str, Any]) -> Any:
    """``module`` with ``cfg`` recorded in its metadata: ``module.config`` (kept by
    ``export_library``), e.g. for ``conv2d.pack_weight(weight, f.config)``."""
    module.info.extra["config"] = dict(cfg)
    return module


def query(key: str, workload: Any = None) -> dict[str, Any] | None:
    """The tuned config of ``key`` if a context has one (a miss is not recorded)."""
    for ctx in reversed(_STACK.contexts):
        cfg = ctx.query(key, workload)
        if cfg is not None:
            return dict(cfg)
    return None


def active() -> bool:
    """True inside at least one dispatch context."""
    return bool(_STACK.contexts)


@contextmanager
def push(ctx: DispatchContext) -> Iterator[DispatchContext]:
    """Make ``ctx`` the innermost context for the ``with`` block (this thread only)."""
    _STACK.contexts.append(ctx)
    try:
        yield ctx
    finally:
        _STACK.contexts.remove(ctx)
