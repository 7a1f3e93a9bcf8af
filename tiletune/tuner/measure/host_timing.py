"""How long a timed repeat must last on this host (``MeasureOption.min_repeat_ms="auto"``).

A timed repeat is ``number`` back-to-back calls between two clock reads in generated code
(``runtime.timing``), so its error has two parts that do not shrink with the kernel:

* the **clock step**: the clock's resolution plus the cost of reading it (two reads per
  repeat). Measured here as the smallest non-zero difference between consecutive
  ``time.perf_counter_ns()`` readings; Python's read is slower than the generated code's
  ``clock_gettime``, so this over-estimates the step (the safe side);
* the **call overhead**: what one call from Python costs beyond the kernel (ctypes argument
  conversion; the cold first call of a candidate pays it, the generated timing loop does
  not). Measured on a no-op C function through ctypes.

A repeat must be long against both: at least ``STEPS_PER_REPEAT`` clock steps (the step then
distorts a repeat by < 0.05%) and ``CALLS_PER_REPEAT`` call overheads, and never shorter
than ``FLOOR_MS``: one millisecond spans a scheduler tick on HZ=1000 kernels and, for a
microsecond kernel, hundreds of calls, so a single interrupt or cache-cold call moves a
repeat by well under the tuner's 5% decision margins. On the AMD EPYC (Zen 3) host of this
session the clock step is ~30-60 ns and the ctypes call ~0.3-0.6 us, so the floor decides:
1 ms, i.e. 1000 calls of a 1 us kernel per repeat, ~3 ms per candidate for 3 repeats against
~1 s of compiling it.
"""

from __future__ import annotations

import ctypes
import functools
import time

#: A repeat lasts at least this many clock steps...
STEPS_PER_REPEAT = 2000
#: ... and this many Python-call overheads ...
CALLS_PER_REPEAT = 1000
#: ... and at least this long (milliseconds).
FLOOR_MS = 1.0


def clock_step_s(samples: int = 2000) -> float:
    """Smallest non-zero step between consecutive clock readings, in seconds."""
    best = None
    last = time.perf_counter_ns()
    for _ in range(samples):
        now = time.perf_counter_ns()
        if now != last and (best is None or now - last < best):
            best = now - last
        last = now
    return (best or 1000) * 1e-9


def call_overhead_s(calls: int = 2000) -> float:
    """Seconds one ctypes call of a trivial C function takes (best of 5 batches)."""
    try:
        fn = ctypes.CDLL(None).abs
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError, TypeError):  # no C library by that name: a Python call
        fn = abs
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(1)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


@functools.cache
def host_min_repeat_ms() -> float:
    """Milliseconds a timed repeat must last on this host (see the module docstring)."""
    need = max(STEPS_PER_REPEAT * clock_step_s(), CALLS_PER_REPEAT * call_overhead_s())
    return max(FLOOR_MS, round(need * 1e3, 3))
