"""Dependency tokens between the load, compute and store modules, and the final stream.

The modules run concurrently and meet only through the SRAMs: load writes INP/WGT, which
compute reads; compute writes ACC, which store reads. For every op (a group of instructions
on one module, in stream order) this pass finds the latest op of the neighbouring module
it conflicts with (TVM's ``CoProcSync``):

    compute reads INP/WGT entries a LOAD wrote      RAW   load -> compute token
    LOAD writes INP/WGT entries compute read        WAR   compute -> load token
    STORE reads ACC entries compute wrote           RAW   compute -> store token
    compute writes ACC entries a STORE read         WAR   store -> compute token

and, unless an earlier op of the same module already waited for that producer or a later
one, makes the producer push a token after its last instruction and the consumer pop it
before its first. Producers are therefore synchronised in increasing order in every queue,
so the k-th pop always matches the k-th push.
"""
from __future__ import annotations

import numpy as np

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.isa import (
    Alu,
    AluOp,
    Finish,
    Gemm,
    HardwareModule,
    MemType,
    Uop,
    VTALoad,
    VTAStore,
)
from tiletune.backends.vta.ops import AluLoop, DmaLoad, DmaStore, GemmLoop, Op, Span
from tiletune.backends.vta.program import Program
from tiletune.errors import VTAError

L, C, S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE
Direction = tuple[HardwareModule, HardwareModule]


def plan_tokens(ops: list[Op], config: VTAConfig) -> tuple[list[set[Direction]],
                                                            list[set[Direction]]]:
    """(pops, pushes) per op: the (producer, consumer) module pairs of its tokens."""
    depth = {"INP": config.inp_depth, "WGT": config.wgt_depth, "ACC": config.acc_depth}
    written = {b: np.full(d, -1, np.int64) for b, d in depth.items()}  # by load / compute
    read = {b: np.full(d, -1, np.int64) for b, d in depth.items()}  # by compute / store
    synced: dict[Direction, int] = {}
    pops: list[set[Direction]] = [set() for _ in ops]
    pushes: list[set[Direction]] = [set() for _ in ops]

    def need(i: int, producer: int, direction: Direction) -> None:
        if producer >= 0 and producer > synced.get(direction, -1):
            synced[direction] = producer
            pushes[producer].add(direction)
            pops[i].add(direction)

    def last(table: dict[str, np.ndarray], spans: list[Span], bufs: tuple[str, ...]) -> int:
        return max((int(table[s.sram][s.lo:s.hi].max()) for s in spans
                    if s.sram in bufs and s.hi > s.lo), default=-1)

    for i, op in enumerate(ops):
        if op.module is C:
            need(i, last(written, op.reads, ("INP", "WGT")), (L, C))
            need(i, last(read, op.writes, ("ACC",)), (S, C))
            for s in op.reads:
                if s.sram in ("INP", "WGT"):
                    read[s.sram][s.lo:s.hi] = i
            for s in op.writes:
                if s.sram == "ACC":
                    written[s.sram][s.lo:s.hi] = i
        elif op.module is L:
            need(i, last(read, op.writes, ("INP", "WGT")), (C, L))
            for s in op.writes:
                written[s.sram][s.lo:s.hi] = i
        else:
            need(i, last(written, op.reads, ("ACC",)), (C, S))
            for s in op.reads:
                read[s.sram][s.lo:s.hi] = i
    return pops, pushes


class _Assembler:
    """``InstructionStream``'s token and micro-op bookkeeping, building each instruction once.

    Same semantics as ``stream.InstructionStream`` (pending pops fold into the module's next
    instruction, a push flags the module's last instruction or a NOP, kernels stay resident
    in the UOP buffer until it is full), but flags are collected first and every
    instruction is constructed (and validated) a single time: long programs build ~2x faster.
    """

    def __init__(self, config: VTAConfig) -> None:
        self.config = config
        self.items: list[tuple[type, tuple, dict[str, bool]]] = []
        self.last: dict[HardwareModule, int] = {}
        self.pending: dict[HardwareModule, set[str]] = {m: set() for m in HardwareModule}
        self.uops: list[Uop] = []
        self.table: dict[tuple[Uop, ...], int] = {}
        self.resident: dict[tuple[Uop, ...], int] = {}
        self.uop_top = 0

    def emit(self, module: HardwareModule, cls: type, args: tuple) -> None:
        pending = self.pending[module]
        flags = {f"pop_{d}": True for d in pending}
        pending.clear()
        self.last[module] = len(self.items)
        self.items.append((cls, args, flags))

    def nop(self, module: HardwareModule) -> None:
        if module is S:
            self.emit(module, VTAStore, (0, 0, 0, 0, 0))
        else:
            self.emit(module, VTALoad, (MemType.INP if module is L else MemType.UOP, 0, 0, 0, 0, 0))

    def commit(self, module: HardwareModule) -> None:
        if self.pending[module]:
            self.nop(module)

    def dep_pop(self, src: HardwareModule, dst: HardwareModule) -> None:
        direction = "prev" if src < dst else "next"
        if direction in self.pending[dst]:
            self.commit(dst)
        self.pending[dst].add(direction)

    def dep_push(self, src: HardwareModule, dst: HardwareModule) -> None:
        self.commit(src)
        flag = "push_next" if src < dst else "push_prev"
        last = self.last.get(src)
        if last is None or self.items[last][2].get(flag):
            self.nop(src)
            last = self.last[src]
        self.items[last][2][flag] = True

    def kernel(self, uops: tuple[Uop, ...]) -> tuple[int, int]:
        depth = self.config.uop_depth
        if len(uops) > depth:
            raise VTAError(f"a kernel of {len(uops)} micro-ops does not fit the UOP buffer "
                           f"({depth} entries)")
        if uops not in self.table:
            self.table[uops] = len(self.uops)
            self.uops.extend(uops)
        if uops not in self.resident:
            if self.uop_top + len(uops) > depth:
                self.resident.clear()
                self.uop_top = 0
            self.emit(C, VTALoad, (MemType.UOP, self.uop_top, self.table[uops], 1, len(uops),
                                len(uops)))
            self.resident[uops] = self.uop_top
            self.uop_top += len(uops)
        base = self.resident[uops]
        return base, base + len(uops)

    def finish(self) -> Program:
        self.dep_push(S, C)
        self.dep_push(L, C)
        self.dep_pop(S, C)
        self.dep_pop(L, C)
        self.commit(C)
        self.emit(C, Finish, ())
        cfg = self.config
        insns = tuple(cls(*args, **flags, config=cfg) for cls, args, flags in self.items)
        return Program(insns, tuple(self.uops), cfg)


def emit_program(ops: list[Op], config: VTAConfig) -> Program:
    """The instruction stream of ``ops`` with its dependency tokens and FINISH."""
    pops, pushes = plan_tokens(ops, config)
    s = _Assembler(config)
    kernels: dict[bytes, tuple[Uop, ...]] = {}

    def kernel(table: np.ndarray) -> tuple[int, int]:
        key = table.tobytes() + bytes([table.shape[1]])
        uops = kernels.get(key)
        if uops is None:
            cols = table.shape[1]
            uops = kernels[key] = tuple(
                Uop(int(r[0]), int(r[1]) if cols > 1 else 0, int(r[2]) if cols > 2 else 0,
                    config=config) for r in table)
        return s.kernel(uops)

    for op, pop, push in zip(ops, pops, pushes):
        for src, dst in sorted(pop):
            s.dep_pop(src, dst)
        for insn in op.insns:
            match insn:
                case DmaLoad(mem=mem, dma=d):
                    s.emit(op.module, VTALoad, (mem, d.sram, d.dram, d.y_size, d.x_size,
                                             d.x_stride, *d.pad))
                case DmaStore(dma=d):
                    s.emit(S, VTAStore, (d.sram, d.dram, d.y_size, d.x_size, d.x_stride))
                case GemmLoop(loop=li, reset=reset):
                    bgn, end = kernel(li.uops)
                    f_out, f_in = li.factor_out + (0, 0), li.factor_in + (0, 0)
                    s.emit(C, Gemm, (bgn, end, li.iter_out, li.iter_in, f_out[0], f_in[0],
                                     f_out[1], f_in[1], f_out[2], f_in[2], reset))
                case AluLoop(loop=li, op=alu_op, imm=imm):
                    bgn, end = kernel(li.uops)
                    f_out, f_in = li.factor_out + (0,), li.factor_in + (0,)
                    s.emit(C, Alu, (bgn, end, li.iter_out, li.iter_in, f_out[0], f_in[0],
                                    f_out[1], f_in[1], AluOp(alu_op), imm is not None,
                                    imm or 0))
        for src, dst in sorted(push):
            s.dep_push(src, dst)
    return s.finish()
