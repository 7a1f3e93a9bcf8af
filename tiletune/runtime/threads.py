"""Thread settings shared by the JIT and loaded libraries.

* ``TILETUNE_NUM_THREADS`` - threads per parallel region, read when a Module is created or
  loaded (default ``os.cpu_count()``); ``Module.set_num_threads`` changes it later.
* ``GOMP_SPINCOUNT`` - set to 10000 before libgomp is loaded unless the user set it (or
  ``OMP_WAIT_POLICY``): idle pool threads then spin only a few microseconds before they
  sleep, so they do not steal a core from single-thread kernels being timed, while
  back-to-back parallel regions still find them awake.
"""
from __future__ import annotations

import ctypes.util
import functools
import os

DEFAULT_SPINCOUNT = "10000"


def default_num_threads() -> int:
    """``TILETUNE_NUM_THREADS`` if set to a positive int, else the number of CPUs."""
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
