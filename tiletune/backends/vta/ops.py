"""Ops: groups of instructions for one VTA module with the SRAM entries they touch.

The code generator produces ops (``codegen``), virtual threads are merged op-segment by
op-segment (``interleave``), and ``sync`` adds dependency tokens between them and emits
the instruction stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tiletune.backends.vta.fold import Dma, LoopInsn
from tiletune.backends.vta.isa import MemType, Module
from tiletune.ir.stmt import Buffer

Interval = tuple[str, int, int]  # (SRAM name, first entry, one past the last)


@dataclass
class Op:
    """Instructions of one module plus the SRAM entries they read and write."""

    module: Module
    insns: list[tuple[Any, ...]]
    reads: list[Interval] = field(default_factory=list)
    writes: list[Interval] = field(default_factory=list)
    what: str = ""

    def shifted(self, shift: list[int], kind: str) -> Op:
        """This op (computed at base 0) with operand k moved by ``shift[k]`` entries."""
        if kind in ("reset", "gemm"):
            sh = np.array(shift, np.int64)
            insns = [(t, _shift_loop(li, sh[:li.uops.shape[1]]), r) for t, li, r in self.insns]
            names = {"INP": shift[1] if len(shift) > 1 else 0,
                     "WGT": shift[2] if len(shift) > 2 else 0, "ACC": shift[0]}
        else:  # load: operands (sram, dram); store: (sram, dram)
            s_sram, s_dram = shift
            insns = []
            for insn in self.insns:
                d = insn[-1]
                moved = Dma(d.sram + s_sram, d.dram + s_dram if d.y_size else d.dram,
                            d.y_size, d.x_size, d.x_stride, d.pad)
                insns.append((*insn[:-1], moved))
            names = {"INP": s_sram, "WGT": s_sram, "ACC": s_sram}
        return Op(self.module, insns, [(b, lo + names[b], hi + names[b]) for b, lo, hi in
                                       self.reads],
                  [(b, lo + names[b], hi + names[b]) for b, lo, hi in self.writes], self.what)


def _shift_loop(li: LoopInsn, shift: np.ndarray) -> LoopInsn:
    return LoopInsn(li.uops + shift, li.iter_out, li.iter_in, li.factor_out, li.factor_in)


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
