"""The cycle model: what one instruction costs, and the report of a run.

Costs (cycles), all derived from the configuration:

* fetch: ``ceil(16 / bus_width)`` per instruction (the 128-bit word over the DRAM bus); the
  fetch module dispatches in stream order and stalls while the target command queue is full.
* LOAD: ``dram_latency`` once per transfer + ``y_size * ceil(x_size * element_bytes /
  bus_width)`` (rows are separate bursts) + one cycle per padding entry written.
* STORE: ``dram_latency`` + ``y_size * ceil(x_size * element_bytes / bus_width)``.
* GEMM: ``gemm_ii`` per uop-iteration + ``gemm_fill`` (reset GEMMs cost the same).
* ALU: ``alu_ii`` per uop-iteration + ``alu_fill``.
* FINISH and DMA NOPs (``x_size == 0``): 1 cycle.

The DRAM bus is not shared between modules (no contention), and DRAM latency is paid once
per DMA instruction, not per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from tiletune.backends.vta.config import INSN_BYTES, VTAConfig
from tiletune.backends.vta.dram import element_bytes
from tiletune.backends.vta.isa import (
    Alu,
    Gemm,
    HardwareModule,
    Instruction,
    MemType,
    VTALoad,
    VTAStore,
)

if TYPE_CHECKING:
    from tiletune.backends.vta.datapath import Datapath


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fetch_cycles(config: VTAConfig) -> int:
    """Cycles the fetch module needs per instruction."""
    return _ceil_div(INSN_BYTES, config.bus_width)


def dram_bytes(insn: Instruction, config: VTAConfig) -> int:
    """Bytes an instruction moves over the DRAM bus (padding excluded)."""
    if isinstance(insn, (VTALoad, VTAStore)) and insn.x_size:
        return insn.y_size * insn.x_size * element_bytes(config, insn.mem)
    return 0


def instruction_cycles(insn: Instruction, config: VTAConfig) -> int:
    """Cycles the executing module is busy with one instruction."""
    if isinstance(insn, (VTALoad, VTAStore)):
        if insn.x_size == 0:
            return 1
        row = _ceil_div(insn.x_size * element_bytes(config, insn.mem), config.bus_width)
        pad = insn.sram_size - insn.y_size * insn.x_size if isinstance(insn, VTALoad) else 0
        return config.dram_latency + insn.y_size * row + pad
    if isinstance(insn, Gemm):
        return insn.iterations * config.gemm_ii + config.gemm_fill
    if isinstance(insn, Alu):
        return insn.iterations * config.alu_ii + config.alu_fill
    return 1


_MODULES = tuple(m.label for m in HardwareModule)
_LOAD_COUNTER = {MemType.INP: "inp_load_bytes", MemType.WGT: "wgt_load_bytes",
                 MemType.ACC: "acc_load_bytes", MemType.ACC_8BIT: "acc_load_bytes",
                 MemType.UOP: "uop_load_bytes"}


@dataclass
class SimReport:
    """What a run measured.

    ``cycles`` is when the last module finished.  Byte counters count DRAM traffic per
    buffer; ``gemm_ops`` counts GEMM uop-iterations excluding resets (each is BATCH x
    BLOCK_IN x BLOCK_OUT MACs), ``alu_ops`` ALU uop-iterations.  ``busy`` and
    ``instructions`` are per module.  ``timeline`` holds (start, end) cycles per instruction
    in stream order.  ``datapath`` is the final SRAM state (its arrays stay zero in
    cycles-only mode).
    """

    cycles: int = 0
    inp_load_bytes: int = 0
    wgt_load_bytes: int = 0
    acc_load_bytes: int = 0
    uop_load_bytes: int = 0
    out_store_bytes: int = 0
    gemm_ops: int = 0
    alu_ops: int = 0
    busy: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_MODULES, 0))
    instructions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_MODULES, 0))
    timeline: list[tuple[int, int]] = field(default_factory=list, repr=False)
    datapath: Datapath | None = field(default=None, repr=False)

    @property
    def gemm_utilization(self) -> float:
        """Fraction of cycles the GEMM unit did useful work: gemm_ops / cycles."""
        return self.gemm_ops / self.cycles if self.cycles else 0.0

    def count(self, insn: Instruction, module: HardwareModule, cycles: int,
              config: VTAConfig) -> None:
        """Add one executed instruction to the counters."""
        self.busy[module.label] += cycles
        self.instructions[module.label] += 1
        if isinstance(insn, VTALoad) and insn.x_size:
            name = _LOAD_COUNTER[insn.mem]
            setattr(self, name, getattr(self, name) + dram_bytes(insn, config))
        elif isinstance(insn, VTAStore):
            self.out_store_bytes += dram_bytes(insn, config)
        elif isinstance(insn, Gemm) and not insn.reset:
            self.gemm_ops += insn.iterations
        elif isinstance(insn, Alu):
            self.alu_ops += insn.iterations

    def to_dict(self) -> dict[str, Any]:
        """The counters as plain data (timeline and datapath left out)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("timeline", "datapath")}
        out["busy"], out["instructions"] = dict(self.busy), dict(self.instructions)
        out["gemm_utilization"] = self.gemm_utilization
        return out

