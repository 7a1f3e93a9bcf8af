"""Thread settings shared by the JIT and loaded libraries.

* ``TILETUNE_NUM_THREADS`` - threads per parallel region, read when a Module is created or
  loaded (default ``os.cpu_count()``); ``Module.set_num_threads`` changes it later.
* After ``fork()`` in a process where libgomp is loaded, the child runs parallel loops
  serially: libgomp's thread pool does not survive a fork and the next parallel region in
  the child would hang. Use "spawn"/"forkserver" worker processes to keep threads.
* ``GOMP_SPINCOUNT`` - set to 10000 before libgomp is loaded unless the user set it (or
  ``OMP_WAIT_POLICY``): idle pool threads then spin only a few microseconds before they
  sleep, so they do not steal a core from single-thread kernels being timed, while
  back-to-back parallel regions still find them awake.
"""
from __future__ import annotations

import contextlib
import ctypes.util
import functools
import os
import warnings
import weakref
from typing import Any

DEFAULT_SPINCOUNT = "10000"


_live: weakref.WeakSet[Any] = weakref.WeakSet()  # Modules, told to go serial after a fork
_forked_with_gomp = False


def register(module: Any) -> None:
    """Track a Module (weakly) so a forked child can make it serial."""
    _live.add(module)


def fork_limit(n: int) -> int:
    """``n`` capped to 1 in a child forked from a process that had libgomp loaded."""
    if n > 1 and _forked_with_gomp:
        warnings.warn("parallel loops run serially in a process forked after libgomp was "
                      "loaded (its thread pool does not survive fork); use spawn workers",
                      RuntimeWarning, stacklevel=3)
        return 1
    return n


def _gomp_mapped() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libgomp" in f.read()
    except OSError:
        return find_libgomp.cache_info().currsize > 0


def _after_fork_in_child() -> None:
    global _forked_with_gomp
    if _forked_with_gomp or _gomp_mapped():
        _forked_with_gomp = True
        for m in list(_live):
            m._force_serial()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_num_threads() -> int:
    """``TILETUNE_NUM_THREADS`` if set to a positive int, else the number of CPUs (1 in a
    child forked after libgomp was loaded)."""
    if _forked_with_gomp:
        return 1
    env = os.environ.get("TILETUNE_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def prepare_gomp_env() -> None:
    """Make idle libgomp threads sleep soon (must run before libgomp is loaded)."""
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = DEFAULT_SPINCOUNT


@functools.cache
def find_libgomp() -> str | None:
    """Path or soname of libgomp, or None when it cannot be loaded (loads it globally)."""
    prepare_gomp_env()
    for name in (ctypes.util.find_library("gomp"), "libgomp.so.1"):
        if not name:
            continue
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return name
    return None


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit NumPy's BLAS to one thread inside the ``with`` block (a no-op without
    threadpoolctl): on small matrices one thread avoids spin-wait stalls on a busy machine
    (8x slower with the default pool here)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
