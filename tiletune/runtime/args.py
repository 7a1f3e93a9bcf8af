"""Argument checking before a kernel call: count, type, dtype, shape, layout, aliasing.

Every failure raises ``ArgumentError`` naming the argument (position and buffer name) with the
expected and the received value. Data addresses are cached per position with a weak reference
to the array, since ``arr.ctypes.data`` costs ~1.5 us per call.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from tiletune.errors import ArgumentError
from tiletune.runtime.info import ArgSpec


class ArgChecker:
    """Validates a call's arguments and returns their data addresses."""

    def __init__(self, kernel: str, specs: Sequence[ArgSpec]) -> None:
        self.kernel = kernel
        self.specs = tuple(specs)
        self._dtypes = [s.np_dtype for s in self.specs]
        self._nbytes = [s.nbytes for s in self.specs]
        self._outputs = [i for i, s in enumerate(self.specs) if s.output and s.nbytes > 0]
        self._cache: list[tuple[Any, int] | None] = [None] * len(self.specs)
        self._fast = [(d, s.shape, s.output) for d, s in zip(self._dtypes, self.specs)]

    def _where(self, i: int) -> str:
        return f"{self.kernel}: argument {i} ({self.specs[i].name})"

    def signature(self) -> str:
        return ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in self.specs)

    def addresses(self, args: Sequence[Any]) -> list[int]:
        """Check ``args``; their data addresses in order."""
        if len(args) != len(self.specs):
            raise ArgumentError(f"{self.kernel} takes {len(self.specs)} arrays "
                                f"({self.signature()}), got {len(args)}")
        addrs: list[int] = []
        cache = self._cache
        for i, (a, (dtype, shape, out)) in enumerate(zip(args, self._fast)):
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
                self._diagnose(i, a)
            fl = a.flags
            if not (fl.carray if out else fl.c_contiguous and fl.aligned):
                self._diagnose(i, a)
            hit = cache[i]
            if hit is not None and hit[0]() is a:
                addrs.append(hit[1])
            else:
                addr = a.ctypes.data
                cache[i] = (weakref.ref(a), addr)
                addrs.append(addr)
        if self._outputs:
            self._check_overlap(addrs)
        return addrs

    def _diagnose(self, i: int, a: Any) -> None:
        """Raise the ArgumentError explaining why ``a`` does not fit argument ``i``."""
        spec = self.specs[i]
        if not isinstance(a, np.ndarray):
            raise ArgumentError(f"{self._where(i)}: expected a numpy.ndarray "
                                f"({spec.describe()}), got {type(a).__name__}")
        if a.dtype != self._dtypes[i]:
            raise ArgumentError(f"{self._where(i)}: expected dtype {spec.dtype}, got "
                                f"{a.dtype} (shape {a.shape})")
        if a.shape != spec.shape:
            raise ArgumentError(f"{self._where(i)}: expected shape {spec.shape}, got "
                                f"{a.shape} ({a.dtype})")
        if not a.flags.c_contiguous:
            raise ArgumentError(f"{self._where(i)}: expected a C-contiguous array, got strides"
                                f" {a.strides} (C order would be {_c_strides(a)}); use "
                                "np.ascontiguousarray")
        if not a.flags.aligned:
            raise ArgumentError(f"{self._where(i)}: the array data is not aligned to its "
                                f"{a.dtype} element size")
        if spec.output and not a.flags.writeable:
            raise ArgumentError(f"{self._where(i)}: is an output but the array is read-only")
        raise ArgumentError(f"{self._where(i)}: unusable array")  # not reached

    def _check_overlap(self, addrs: list[int]) -> None:
        nb = self._nbytes
        for o in self._outputs:
            lo, hi = addrs[o], addrs[o] + nb[o]
            for j, a in enumerate(addrs):
                if j != o and nb[j] and a < hi and lo < a + nb[j]:
                    raise ArgumentError(
                        f"{self._where(o)}: the kernel writes it but it shares memory with "
                        f"argument {j} ({self.specs[j].name}); pass separate arrays")


def _c_strides(a: np.ndarray) -> tuple[int, ...]:
    out, step = [], a.itemsize
    for n in reversed(a.shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))
