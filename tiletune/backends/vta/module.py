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
"""
from __future__ import annotations

from collections.abc import Callable
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
from tiletune.runtime.args import ArgChecker
from tiletune.runtime.info import ArgSpec
from tiletune.runtime.timing import TimingResult

DEFAULT_CLOCK_HZ = 100e6  # the Pynq clock


def dram_layout(args: list[tuple[str, str, tuple[int, ...], MemType]],
                config: VTAConfig) -> list[int]:
    """DRAM base addresses (in elements of each kind) of arguments allocated in order."""
    dram = DRAM(config)
    return [dram.alloc(np.zeros(shape, dtype), kind) for _, dtype, shape, kind in args]


class VTAModule:
    """A VTA kernel: call it with one NumPy array per argument, in order."""

    def __init__(self, name: str, program: Program, args: list[ArgInfo],
                 outputs: set[str], ir: str, config: VTAConfig,
                 clock_hz: float = DEFAULT_CLOCK_HZ,
                 sram_usage: dict[str, int] | None = None) -> None:
        self.name, self.program, self.config, self.clock_hz = name, program, config, clock_hz
        #: peak SRAM entries the program uses per scope ("vta.inp", "vta.wgt", "vta.acc")
        self.sram_usage = dict(sram_usage or {})
        self.arg_info = args
        self.args = tuple(ArgSpec(a.buffer.name, a.buffer.dtype, tuple(a.buffer.shape),
                                  a.buffer.name in outputs) for a in args)
        self._checker = ArgChecker(name, self.args)
        self._ir = ir
        self._report: SimReport | None = None
        self.last_report: SimReport | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.output)

    def __repr__(self) -> str:
        return (f"<tiletune.VTAModule {self.name}({self._checker.signature()}) "
                f"{len(self.program)} instructions>")

    # -- running --------------------------------------------------------------------------
    def __call__(self, *arrays: Any, order: str = "program", seed: int = 0) -> None:
        """Run bit-exactly on the simulator; ``order="random"`` shuffles module steps."""
        self._checker.addresses(arrays)
        dram = DRAM(self.config)
        for a, info in zip(arrays, self.arg_info):
            base = dram.alloc(a, info.kind)
            if base != info.base:
                raise VTAError(f"{self.name}: argument {info.buffer.name} landed at DRAM "
                               f"address {base}, the program expects {info.base}")
        report = Simulator(self.config).run(self.program, dram, mode="full", order=order,
                                            seed=seed)
        for a, info, spec in zip(arrays, self.arg_info, self.args):
            if spec.output:
                a[...] = dram.get(info.base, info.kind).reshape(a.shape)
        self.last_report = report

    @property
    def report(self) -> SimReport:
        """Counters of a cycles-only run (cycles, bytes per buffer, gemm_ops, ...)."""
        if self._report is None:
            dram = DRAM(self.config)
            for info in self.arg_info:
                dram.alloc(np.zeros(info.buffer.shape, info.buffer.dtype), info.kind)
            self._report = Simulator(self.config).run(self.program, dram, mode="cycles")
        return self._report

    @property
    def cycles(self) -> int:
        return self.report.cycles

    @property
    def seconds(self) -> float:
        """Simulated run time at ``clock_hz``."""
        return self.cycles / self.clock_hz

    def time_evaluator(self, number: int = 10, repeat: int = 3, min_repeat_ms: float = 0,
                       flush_cache: bool = False) -> Callable[..., TimingResult]:
        """``(*arrays) -> TimingResult`` of simulated seconds per call (cycles / clock).

        The arrays are checked as for a call; ``number``, ``min_repeat_ms`` and
        ``flush_cache`` have no effect on a deterministic cycle model.
        """
        if number < 1 or repeat < 1:
            raise ValueError("time_evaluator needs number >= 1 and repeat >= 1")

        def evaluate(*arrays: Any) -> TimingResult:
            self._checker.addresses(arrays)
            return TimingResult((self.seconds,) * repeat, number)

        return evaluate

    def set_num_threads(self, n: int) -> None:
        """Accepted for interface parity with ``runtime.Module``; the simulator is serial."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"set_num_threads needs an int >= 1, got {n!r}")

    def close(self) -> None:
        """Nothing to free (the program is plain data); kept for ``runtime.Module`` parity."""

    def __enter__(self) -> VTAModule:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sources --------------------------------------------------------------------------
    def get_source(self, fmt: str = "asm") -> str:
        """"asm": the instruction stream and micro-op table; "ir": the loop nest."""
        if fmt == "asm":
            return self.program.asm()
        if fmt == "ir":
            return self._ir
        raise TileTuneError(f"VTA modules have sources 'asm' and 'ir', not {fmt!r}")

    def export_library(self, path: Any) -> None:
        raise TileTuneError("VTA modules run on the simulator and cannot be exported as a "
                            "shared library; keep the Program (module.program.encode())")
