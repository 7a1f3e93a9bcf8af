"""VTAModule: a compiled VTA program, callable on NumPy arrays like ``runtime.Module``.

    f(data, kernel, out)                          # checks the arrays, runs the simulator
    t = f.time_evaluator(number=1, repeat=3)(data, kernel, out)
    t.mean, t.results                             # *simulated* seconds: cycles / clock
    f.cycles, f.report                            # SimReport counters (cycles-only run)
    f.get_source("asm")                           # the instruction stream and micro-ops
    f.get_source("ir")                            # the loop nest it was generated from

A call copies the arguments into a fresh simulated DRAM (in argument order, so their
addresses are the ones the program was built with), runs the program bit-exactly and copies
the outputs back. Timing needs no data: the cycle model depends only on the program, so
``time_evaluator`` runs it once in cycles-only mode (cached) and reports
``cycles / clock_hz`` for every repeat.

``VTAModule`` is a ``runtime.Module`` over ``VTACode``, a ``PythonCode`` that runs the
simulator and reports simulated time; ``close()``, ``with`` blocks, ``set_num_threads``
(accepted, the simulator is serial) and ``export_library`` (refused) are the Module's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.cycles import SimReport
from tiletune.backends.vta.dram import DRAM
from tiletune.backends.vta.isa import MemType
from tiletune.backends.vta.ops import ArgInfo
from tiletune.backends.vta.program import Program
from tiletune.backends.vta.simulator import Simulator
from tiletune.errors import TileTuneError, VTAError
from tiletune.runtime.code import PythonCode
from tiletune.runtime.info import ArgSpec, KernelInfo
from tiletune.runtime.module import Module

DEFAULT_CLOCK_HZ = 100e6  # the Pynq clock


def dram_layout(args: list[tuple[str, str, tuple[int, ...], MemType]],
                config: VTAConfig) -> list[int]:
    """DRAM base addresses (in elements of each kind) of arguments allocated in order."""
    dram = DRAM(config)
    return [dram.alloc(np.zeros(shape, dtype), kind) for _, dtype, shape, kind in args]


class VTACode(PythonCode):
    """A VTA program run on the simulator; it times itself in simulated seconds."""

    simulated = True

    def __init__(self, name: str, program: Program, args: list[ArgInfo], ir: str,
                 config: VTAConfig, clock_hz: float) -> None:
        self.name, self.program, self.args, self.ir = name, program, args, ir
        self.config, self.clock_hz = config, clock_hz
        self._report: SimReport | None = None

    def run(self, arrays: Sequence[np.ndarray], order: str = "program", seed: int = 0
            ) -> SimReport:
        """Copy the arrays into a fresh DRAM, simulate bit-exactly, copy the outputs back."""
        dram = DRAM(self.config)
        for a, info in zip(arrays, self.args):
            base = dram.alloc(a, info.kind)
            if base != info.base:
                raise VTAError(f"{self.name}: argument {info.buffer.name} landed at DRAM "
                               f"address {base}, the program expects {info.base}")
        report = Simulator(self.config).run(self.program, dram, mode="full", order=order,
                                            seed=seed)
        for a, info in zip(arrays, self.args):
            if info.kind is MemType.OUT:
                a[...] = dram.get(info.base, info.kind).reshape(a.shape)
        return report

    @property
    def report(self) -> SimReport:
        """Counters of a cycles-only run (cached: the cycle model needs no data)."""
        if self._report is None:
            dram = DRAM(self.config)
            for info in self.args:
                dram.alloc(np.zeros(info.buffer.shape, info.buffer.dtype), info.kind)
            self._report = Simulator(self.config).run(self.program, dram, mode="cycles")
        return self._report

    def time_per_call(self, arrays: Sequence[np.ndarray], number: int) -> float:
        return self.report.cycles / self.clock_hz

    def source(self, fmt: str) -> str:
        if fmt == "asm":
            return self.program.asm()
        if fmt == "ir":
            return self.ir
        raise TileTuneError(f"VTA modules have sources 'asm' and 'ir', not {fmt!r}")

    def export(self, path: str, info: KernelInfo) -> None:
        raise TileTuneError("VTA modules run on the simulator and cannot be exported as a "
                            "shared library; keep the Program (module.program.encode())")


class VTAModule(Module):
    """A VTA kernel: call it with one NumPy array per argument, in order."""

    def __init__(self, name: str, program: Program, args: list[ArgInfo],
                 outputs: set[str], ir: str, config: VTAConfig,
                 clock_hz: float = DEFAULT_CLOCK_HZ,
                 sram_usage: dict[str, int] | None = None) -> None:
        #: the accelerator's hardware parameters (``config`` is the schedule config)
        self.program, self.vta_config, self.clock_hz = program, config, clock_hz
        #: peak SRAM entries the program uses per scope ("vta.inp", "vta.wgt", "vta.acc")
        self.sram_usage = dict(sram_usage or {})
        self.arg_info = args
        specs = tuple(ArgSpec(a.buffer.name, a.buffer.dtype, tuple(a.buffer.shape),
                              a.buffer.name in outputs) for a in args)
        self._vta = VTACode(name, program, args, ir, config, clock_hz)
        super().__init__(self._vta, KernelInfo(name, name, specs, ir=ir, target="vta"))
        self.last_report: SimReport | None = None

    def __repr__(self) -> str:
        return (f"<tiletune.VTAModule {self.name}({self._checker.signature()}) "
                f"{len(self.program)} instructions>")

    def __call__(self, *arrays: Any, order: str = "program", seed: int = 0) -> None:
        """Run bit-exactly on the simulator; ``order="random"`` shuffles module steps."""
        self._checker.addresses(arrays)
        self._live_code()  # closed modules cannot run
        self.last_report = self._vta.run(arrays, order=order, seed=seed)

    @property
    def report(self) -> SimReport:
        """Counters of a cycles-only run (cycles, bytes per buffer, gemm_ops, ...)."""
        return self._vta.report

    @property
    def cycles(self) -> int:
        return self.report.cycles

    @property
    def seconds(self) -> float:
        """Simulated run time at ``clock_hz``."""
        return self.cycles / self.clock_hz
