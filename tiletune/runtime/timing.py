"""Kernel timing with TVM's ``time_evaluator`` semantics.

The timing loop itself is generated code (``<kernel>__time``): it calls the kernel ``number``
times between two ``clock_gettime(CLOCK_MONOTONIC)`` and returns seconds per call, so no
Python overhead is measured. Around it: one warm-up call, ``repeat`` measurements, growth of
``number`` while a repeat is shorter than ``min_repeat_ms``, and an optional cache flush
(writing a buffer twice the size of the L3 cache) before each repeat, outside the timing.
"""
from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimingResult:
    """Seconds per call, one value per repeat."""

    results: tuple[float, ...]
    number: int  # calls per repeat (after any growth for min_repeat_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.results)

    @property
    def median(self) -> float:
        return statistics.median(self.results)

    @property
    def min(self) -> float:
        return min(self.results)

    @property
    def max(self) -> float:
        return max(self.results)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.results)

    def __repr__(self) -> str:
        return (f"TimingResult(mean={self.mean * 1e6:.3f} us, median={self.median * 1e6:.3f} us,"
                f" min={self.min * 1e6:.3f} us, repeat={len(self.results)}, "
                f"number={self.number})")


def _l3_bytes() -> int:
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip().upper()
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        return int(text.rstrip("KMG")) * mult
    except (OSError, ValueError):
        return 32 << 20


@functools.cache
def _flush_buffer() -> np.ndarray:
    nbytes = min(max(2 * _l3_bytes(), 16 << 20), 512 << 20)
    return np.zeros(nbytes // 8, dtype=np.int64)


def flush_cache() -> None:
    """Evict the caches by reading and writing a buffer larger than the L3 cache."""
    buf = _flush_buffer()
    np.add(buf, 1, out=buf)


def measure(timer: Callable[..., float], addrs: Sequence[int], number: int, repeat: int,
            min_repeat_ms: float, flush: bool) -> TimingResult:
    """Run ``timer(*addrs, number)`` ``repeat`` times (warm-up done by the caller)."""
    results = []
    for _ in range(repeat):
        if flush:
            flush_cache()
        per_call = timer(*addrs, number)
        while min_repeat_ms > 0 and per_call * number * 1e3 < min_repeat_ms:
            per_ms = max(per_call * 1e3, 1e-7)
            number = int(max(min_repeat_ms / per_ms + 1, number * 1.618))
            if flush:
                flush_cache()
            per_call = timer(*addrs, number)
        results.append(per_call)
    return TimingResult(tuple(results), number)
