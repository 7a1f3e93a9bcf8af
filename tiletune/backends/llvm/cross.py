"""A kernel compiled for a CPU whose features this host lacks: sources and export only.

``tt.build(..., target="llvm -mcpu=skylake-avx512")`` on an AVX2 machine gives a Module
whose ``export_library`` writes a ``.so``/``.o``/``.s`` for that CPU and whose
``get_source`` shows its code; calling or timing it raises ``BuildError`` naming the
missing features (running it would die of SIGILL).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tiletune.backends.llvm.codegen import KernelIR
from tiletune.backends.llvm.cpu_target import CpuTarget
from tiletune.backends.llvm.jit import KernelSources, optimized
from tiletune.backends.llvm.target import host
from tiletune.errors import BuildError
from tiletune.runtime.code import PythonCode


class CrossCode(KernelSources, PythonCode):
    """Ahead-of-time code for another CPU (never executed in this process)."""

    def __init__(self, kernel: KernelIR, opt_level: int, codegen_opt: int,
                 cpu_target: CpuTarget, missing: Sequence[str],
                 ir_text: Callable[[], str] | None = None) -> None:
        self.kernel, self.opt_level, self.codegen_opt = kernel, opt_level, codegen_opt
        self.cpu_target, self.missing = cpu_target, list(missing)
        self._ir_text = ir_text
        optimized(kernel.text, opt_level, codegen_opt, lambda m: None, cpu_target)  # compiles

    def run(self, arrays: Sequence[np.ndarray]) -> None:
        raise BuildError(
            f"this kernel was built for {self.cpu_target.text!r} and uses "
            f"{', '.join(self.missing)}, which this CPU ({host()[1]}) lacks: it cannot run "
            "here. Export it (f.export_library('k.so')) and load it on such a machine, or "
            "build with target='llvm' to run it here")
