"""Loaded machine code behind a Module: symbol addresses, sources, export, lifetime.

A backend hands the runtime a ``LoadedCode``; the runtime never imports a backend. Kinds:

* native code, called through ctypes at ``address(info.symbol)``:
  the LLVM backend's JIT code (``tiletune.backends.llvm.jit.JitCode``, an MCJIT engine) and
  ``SharedLibraryCode`` (an exported ``.so`` opened with ctypes by ``load_module``);
* ``PythonCode``: anything run from Python on the checked arrays (e.g. an accelerator
  simulator); it may report its own time per call (e.g. simulated cycles / clock).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tiletune.errors import BuildError, TileTuneError

if TYPE_CHECKING:
    from tiletune.runtime.info import KernelInfo


class LoadedCode(ABC):
    """Executable code that stays valid until ``close()``."""

    native = True  # called through ctypes at address(info.symbol)

    @abstractmethod
    def address(self, symbol: str) -> int:
        """Address of a function or global; raises TileTuneError if it is missing."""

    @abstractmethod
    def source(self, fmt: str) -> str:
        """Source text: "ll" (generated LLVM IR), "ll-opt" (optimised) or "asm"."""

    @abstractmethod
    def export(self, path: str, info: KernelInfo) -> None:
        """Write ``.so`` (with ``info`` embedded), ``.o``, ``.ll`` or ``.s`` by extension."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the code; addresses become invalid."""


def export_kind(path: str) -> str:
    ext = os.path.splitext(str(path))[1].lower()
    kinds = {".so": "so", ".o": "o", ".ll": "ll", ".s": "asm"}
    if ext not in kinds:
        raise BuildError(f"cannot export to {path!r}: use a .so, .o, .ll or .s file name")
    return kinds[ext]


class SharedLibraryCode(LoadedCode):
    """A tiletune ``.so`` opened with ctypes (kept loaded for the life of the process)."""

    def __init__(self, path: str, lib: ctypes.CDLL, sources: dict[str, str]) -> None:
        self.path, self._lib, self._sources = path, lib, dict(sources)

    def address(self, symbol: str) -> int:
        try:
            return ctypes.addressof(ctypes.c_char.in_dll(self._lib, symbol))
        except ValueError as exc:
            raise TileTuneError(f"{self.path} has no symbol {symbol!r}") from exc

    def source(self, fmt: str) -> str:
        if fmt not in self._sources:
            raise TileTuneError(f"{self.path} holds no {fmt!r} source; it has "
                                f"{sorted(self._sources)}")
        return self._sources[fmt]

    def export(self, path: str, info: KernelInfo) -> None:
        kind = export_kind(path)
        if kind == "so":
            if os.path.abspath(path) != os.path.abspath(self.path):
                shutil.copyfile(self.path, path)
            return
        if kind == "o":
            raise BuildError(f"{self.path} is a loaded library; it cannot be exported as .o")
        with open(path, "w") as f:
            f.write(self.source(kind))


class PythonCode(LoadedCode):
    """Code run from Python: override ``run`` (and ``time_per_call`` to report, e.g.,
    simulated time instead of wall-clock time)."""

    native = False
    #: ``time_per_call`` reports a model's time without running: no warm-up call, no cache
    #: flush, when a Module times it
    simulated = False

    @abstractmethod
    def run(self, arrays: Sequence[np.ndarray]) -> None:
        """Execute once on the checked arrays (outputs are written in place)."""

    def time_per_call(self, arrays: Sequence[np.ndarray], number: int) -> float:
        """Seconds per call of ``number`` calls (wall clock by default)."""
        t0 = time.perf_counter()
        for _ in range(number):
            self.run(arrays)
        return (time.perf_counter() - t0) / number

    def address(self, symbol: str) -> int:
        raise TileTuneError("Python-run code has no native symbols")

    def source(self, fmt: str) -> str:
        raise TileTuneError(f"this module has no {fmt!r} source")

    def export(self, path: str, info: KernelInfo) -> None:
        raise BuildError("this module cannot be exported as a native library")
