"""Ops: groups of instructions for one VTA module with the SRAM entries they touch.

The code generator produces ops (``codegen``), virtual threads are merged op-segment by
op-segment (``interleave``), and ``sync`` adds dependency tokens between them and emits
the instruction stream.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tiletune.backends.vta.fold_uop_loops import Dma, LoopInsn
from tiletune.backends.vta.isa import AluOp, HardwareModule, MemType
from tiletune.errors import LoweringError
from tiletune.ir.stmt import Buffer


@dataclass(frozen=True)
class Span:
    """The SRAM entries ``[lo, hi)`` an op touches through its operand ``operand``."""

    sram: str  # "INP", "WGT" or "ACC"
    lo: int
    hi: int
    operand: int  # which operand's base the entries move with (see ``Op.shifted``)

    def shifted(self, shift: Sequence[int]) -> Span:
        k = shift[self.operand]
        return Span(self.sram, self.lo + k, self.hi + k, self.operand)


@dataclass(frozen=True)
class GemmLoop:
    """A GEMM instruction (or, with ``reset``, the zeroing of its accumulator entries).

    The micro-op columns are the entries of operands (acc, inp, wgt), in that order.
    """

    loop: LoopInsn
    reset: bool

    def shifted(self, shift: Sequence[int]) -> GemmLoop:
        return GemmLoop(_shift_loop(self.loop, shift), self.reset)


@dataclass(frozen=True)
class AluLoop:
    """An ALU instruction: ``acc = op(acc, imm | acc)`` over the loops of ``loop``."""

    loop: LoopInsn
    op: AluOp
    imm: int | None


@dataclass(frozen=True)
class DmaLoad:
    """A 2-D DMA from DRAM (elements of kind ``mem``) into an SRAM; operands (sram, dram)."""

    mem: MemType
    dma: Dma

    def shifted(self, shift: Sequence[int]) -> DmaLoad:
        return DmaLoad(self.mem, _shift_dma(self.dma, shift))


@dataclass(frozen=True)
class DmaStore:
    """A 2-D DMA from the ACC SRAM (truncated to the output type) to DRAM; operands
    (sram, dram)."""

    dma: Dma

    def shifted(self, shift: Sequence[int]) -> DmaStore:
        return DmaStore(_shift_dma(self.dma, shift))


#: One instruction of an op (``sync.emit_program`` turns each into an ISA instruction).
Insn = GemmLoop | AluLoop | DmaLoad | DmaStore


def _shift_loop(li: LoopInsn, shift: Sequence[int]) -> LoopInsn:
    """The micro-op entries of column k moved by ``shift[k]``."""
    moved = li.uops + np.asarray(shift[:li.uops.shape[1]], np.int64)
    return LoopInsn(moved, li.iter_out, li.iter_in, li.factor_out, li.factor_in)


def _shift_dma(d: Dma, shift: Sequence[int]) -> Dma:
    s_sram, s_dram = shift
    return Dma(d.sram + s_sram, d.dram + s_dram if d.y_size else d.dram, d.y_size, d.x_size,
               d.x_stride, d.pad)


@dataclass
class Op:
    """Instructions of one module plus the SRAM entries they read and write."""

    module: HardwareModule
    insns: list[Insn]
    reads: list[Span] = field(default_factory=list)
    writes: list[Span] = field(default_factory=list)
    what: str = ""

    def shifted(self, shift: Sequence[int]) -> Op:
        """This op (computed at base 0) with operand k moved by ``shift[k]`` entries.

        GEMM, reset, load and store ops only: ALU ops are emitted at their entries.
        """
        insns: list[Insn] = []
        for insn in self.insns:
            if isinstance(insn, AluLoop):
                raise LoweringError(f"{self.what}: ALU ops cannot be moved to other entries")
            insns.append(insn.shifted(shift))
        return Op(self.module, insns,
                  [s.shifted(shift) for s in self.reads], [s.shifted(shift) for s in self.writes],
                  self.what)


@dataclass(frozen=True)
class ArgInfo:
    """Where a kernel argument lives in DRAM: its memory kind and base address."""

    buffer: Buffer
    kind: MemType
    base: int


def interleave(threads: list[list[Op]]) -> list[Op]:
    """Merge threads segment by segment (a segment: consecutive ops of one module)."""
    segs = [_segments(t) for t in threads]
    out: list[Op] = []
    for k in range(max((len(s) for s in segs), default=0)):
        for s in segs:
            if k < len(s):
                out += s[k]
    return out


def _segments(ops: list[Op]) -> list[list[Op]]:
    out: list[list[Op]] = []
    for op in ops:
        if out and out[-1][-1].module == op.module:
            out[-1].append(op)
        else:
            out.append([op])
    return out
