"""Detects missing dependency tokens with vector clocks (happens-before race detection).

Each module keeps a vector clock: entry ``m`` counts the instructions of module ``m`` known
to have completed.  A module ticks its own entry per instruction; a pushed token carries the
pusher's clock and a pop merges it into the popper's.  The k-th pop of a queue always
matches its k-th push, so this happens-before relation depends only on the program, not on
the order the simulator interleaves the modules in: detection is deterministic.

Cross-module sharing is fixed by the hardware: the load module writes INP and WGT which
compute reads; compute writes ACC which store reads (as OUT).  Per SRAM entry the checker
keeps the sequence number of the last write by the writer module and of the last read by
the reader module.  A read whose last write is not ordered before it (RAW), or a write whose
last read is not (WAR), raises ``VTAError("missing dependency token: ...")``.  FINISH must
be ordered after every load and store instruction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.datapath import Access, Index
from tiletune.backends.vta.isa import HardwareModule
from tiletune.errors import VTAError

_L, _C, _S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE
_SHARED = {"INP": (_L, _C), "WGT": (_L, _C), "ACC": (_C, _S)}  # buffer -> (writer, reader)


class HazardChecker:
    """Vector clocks per module plus last-access tables for the shared SRAMs.

    ``describe(module, seq)`` names an instruction (by module and 1-based sequence number)
    in error messages.
    """

    def __init__(self, config: VTAConfig, describe: Callable[[HardwareModule, int], str]) -> None:
        self.clock = [[0] * len(HardwareModule) for _ in HardwareModule]
        depth = {"INP": config.inp_depth, "WGT": config.wgt_depth, "ACC": config.acc_depth}
        self._last_write = {b: np.zeros(d, np.int64) for b, d in depth.items()}
        self._last_read = {b: np.zeros(d, np.int64) for b, d in depth.items()}
        self._describe = describe

    def pop(self, module: HardwareModule, token: tuple[int, ...]) -> None:
        """Merge the clock carried by a popped token."""
        self.clock[module] = [max(a, b) for a, b in zip(self.clock[module], token)]

    def tick(self, module: HardwareModule) -> int:
        """Start the module's next instruction; return its sequence number (from 1)."""
        self.clock[module][module] += 1
        return self.clock[module][module]

    def token(self, module: HardwareModule) -> tuple[int, ...]:
        """The clock a token pushed now by ``module`` carries."""
        return tuple(self.clock[module])

    def access(self, module: HardwareModule, seq: int, accesses: list[Access]) -> None:
        """Check and record an instruction's SRAM accesses."""
        for acc in accesses:
            if acc.buffer not in _SHARED:
                continue
            writer, reader = _SHARED[acc.buffer]
            if module == writer and acc.writes is not None:
                self._check(acc.buffer, acc.writes, self._last_read[acc.buffer], module, seq,
                            reader, "WAR", "writes", "read")
                self._last_write[acc.buffer][acc.writes] = seq
            if module == reader and acc.reads is not None:
                self._check(acc.buffer, acc.reads, self._last_write[acc.buffer], module, seq,
                            writer, "RAW", "reads", "written")
                self._last_read[acc.buffer][acc.reads] = seq

    def _check(self, buffer: str, index: Index, table: np.ndarray, module: HardwareModule, seq: int,
               other: HardwareModule, kind: str, verb: str, their: str) -> None:
        seen = table[index]
        known = self.clock[module][other]
        if seen.size and seen.max() > known:
            n = int(np.argmax(seen > known))
            entry = index.start + n if isinstance(index, slice) else index[n]
            raise VTAError(
                f"missing dependency token ({kind} on {buffer}[{int(entry)}]): "
                f"{self._describe(module, seq)} {verb} {buffer}[{int(entry)}], last {their} by "
                f"{self._describe(other, int(seen[n]))}, but no {other.label}->{module.label} "
                "token orders the two")

    def check_finish(self, totals: dict[HardwareModule, int], seq: int) -> None:
        """FINISH must come after every load and store instruction (happens-before)."""
        for module in (HardwareModule.LOAD, HardwareModule.STORE):
            known = self.clock[HardwareModule.COMPUTE][module]
            if known < totals[module]:
                raise VTAError(
                    f"missing dependency token before FINISH: "
                    f"{self._describe(module, known + 1)} is not ordered before "
                    f"{self._describe(HardwareModule.COMPUTE, seq)} (pop a {module.label}->compute "
                    "token before FINISH)")
