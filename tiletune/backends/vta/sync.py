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

from tiletune.backends.vta.codegen import Op
from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.isa import Module, Uop
from tiletune.backends.vta.program import Program
from tiletune.backends.vta.stream import InstructionStream

L, C, S = Module.LOAD, Module.COMPUTE, Module.STORE
Direction = tuple[Module, Module]


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

    def last(table: dict[str, np.ndarray], spans: list, bufs: tuple[str, ...]) -> int:
        return max((int(table[b][lo:hi].max()) for b, lo, hi in spans if b in bufs and hi > lo),
                   default=-1)

    for i, op in enumerate(ops):
        if op.module is C:
            need(i, last(written, op.reads, ("INP", "WGT")), (L, C))
            need(i, last(read, op.writes, ("ACC",)), (S, C))
            for buf, lo, hi in op.reads:
                if buf in ("INP", "WGT"):
                    read[buf][lo:hi] = i
            for buf, lo, hi in op.writes:
                if buf == "ACC":
                    written[buf][lo:hi] = i
        elif op.module is L:
            need(i, last(read, op.writes, ("INP", "WGT")), (C, L))
            for buf, lo, hi in op.writes:
                written[buf][lo:hi] = i
        else:
            need(i, last(written, op.reads, ("ACC",)), (C, S))
            for buf, lo, hi in op.reads:
                read[buf][lo:hi] = i
    return pops, pushes


def emit_program(ops: list[Op], config: VTAConfig) -> Program:
    """The instruction stream of ``ops`` with its dependency tokens and FINISH."""
    pops, pushes = plan_tokens(ops, config)
    s = InstructionStream(config)
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
            kind = insn[0]
            if kind == "load":
                _, mem, d = insn
                s.load(mem, d.sram, d.dram, d.y_size, d.x_size, d.x_stride, d.pad)
            elif kind == "store":
                d = insn[1]
                s.store(d.sram, d.dram, d.y_size, d.x_size, d.x_stride)
            elif kind == "gemm":
                _, li, reset = insn
                bgn, end = kernel(li.uops)
                f_out, f_in = li.factor_out + (0, 0), li.factor_in + (0, 0)
                s.gemm(bgn, end, iter_out=li.iter_out, iter_in=li.iter_in,
                       dst_factor=(f_out[0], f_in[0]), src_factor=(f_out[1], f_in[1]),
                       wgt_factor=(f_out[2], f_in[2]), reset=reset)
            else:
                _, li, alu_op, imm = insn
                bgn, end = kernel(li.uops)
                f_out, f_in = li.factor_out + (0,), li.factor_in + (0,)
                s.alu(alu_op, bgn, end, imm=imm, iter_out=li.iter_out, iter_in=li.iter_in,
                      dst_factor=(f_out[0], f_in[0]), src_factor=(f_out[1], f_in[1]))
        for src, dst in sorted(push):
            s.dep_push(src, dst)
    return s.finish()
