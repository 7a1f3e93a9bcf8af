"""The VTA-like accelerator: configuration, ISA, encoder, instruction builder and simulator.

Public API (all errors are ``tiletune.errors.VTAError``)::

    VTAConfig(log_inp_width=3, ..., bus_width=8, dram_latency=64, queue_depth=8, ...)
        frozen; depths (inp_depth, wgt_depth, acc_depth, out_depth, uop_depth), element
        sizes, dtypes, and instruction layouts (layout(kind), width(kind, name)) derived
    DEFAULT_CONFIG
    Opcode, MemType, AluOp, HardwareModule            enums (MemType.ACC_8BIT, AluOp.SHL, ...)
    VTALoad(mem, sram_base, dram_base, y_size, x_size, x_stride, y_pad_0=0, y_pad_1=0,
            x_pad_0=0, x_pad_1=0, *, pop_prev=False, pop_next=False, push_prev=False,
            push_next=False, config=DEFAULT_CONFIG)
    VTAStore(sram_base, dram_base, y_size, x_size, x_stride, mem=MemType.OUT, *, flags, config)
    Gemm(uop_bgn, uop_end, iter_out=1, iter_in=1, dst_factor_out=0, dst_factor_in=0,
         src_factor_out=0, src_factor_in=0, wgt_factor_out=0, wgt_factor_in=0,
         reset=False, *, flags, config)
    Alu(uop_bgn, uop_end, iter_out=1, iter_in=1, dst_factor_out=0, dst_factor_in=0,
        src_factor_out=0, src_factor_in=0, op=AluOp.ADD, use_imm=False, imm=0, *, flags,
        config)
    Finish(*, flags, config)
    Uop(dst, src, wgt=0, *, config)
        instructions are frozen, validated on construction, ``str()`` is one line of
        assembly, ``insn.module`` is the module that runs it, ``insn.with_flags(...)``
    encode(insn) -> int; encode_bytes(insn) -> bytes; decode(word, config) -> insn
    encode_uop(uop) -> int; decode_uop(word, config) -> Uop
    encode_program(insns) -> bytes; decode_program(data, config) -> list
    Program(instructions, uops=(), config=DEFAULT_CONFIG)
        .asm() -> str, .encode() -> (bytes, uint32 array), Program.decode(data, words, config)
    InstructionStream(config)                         builder in the style of VTA's runtime
        .load(mem, sram_base, dram_base, y_size, x_size, x_stride=None, pad=(0, 0, 0, 0))
        .store(sram_base, dram_base, y_size, x_size, x_stride=None)
        .gemm(uop_bgn, uop_end, *, iter_out, iter_in, dst_factor, src_factor, wgt_factor,
              reset)
        .alu(op, uop_bgn, uop_end, *, imm=None, iter_out, iter_in, dst_factor, src_factor)
        .kernel(uops) -> (uop_bgn, uop_end)           micro-op table + UOP buffer residency
        .dep_push(src, dst), .dep_pop(src, dst)       tokens between adjacent modules
        .emit(insn), .finish() -> Program
    DRAM(config)
        .alloc(array, kind) -> address in elements of kind;  .get(address, kind) -> live array
        .read(kind, base, y_size, x_size, x_stride), .write(kind, base, x_stride, data),
        .check(kind, base, y_size, x_size, x_stride, what)          2-D DMA helpers
    Simulator(config).run(program, dram=None, *, mode="full"|"cycles",
                          order="program"|"random", seed=0) -> SimReport
    SimReport: cycles, inp/wgt/acc/uop_load_bytes, out_store_bytes, gemm_ops, alu_ops,
        busy/instructions per module, gemm_utilization, timeline, datapath (SRAM state),
        to_dict()
    instruction_cycles(insn, config) -> int

Example: a 16x32 @ 32x16 int8 matmul, ``>> 4`` and clipped to [0, 127]::

    s = InstructionStream()
    s.load(MemType.INP, 0, a_addr, 1, 32)             # 16 rows x 2 K-blocks
    s.load(MemType.WGT, 0, w_addr, 1, 2)
    L, C, S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE
    s.dep_push(L, C); s.dep_pop(L, C)
    bgn, end = s.kernel([Uop(0, 0, 0), Uop(0, 1, 1)])
    s.gemm(bgn, end, iter_out=16, dst_factor=(1, 0), src_factor=(2, 0))
    bgn, end = s.kernel([Uop(0, 0)])
    s.alu(AluOp.SHR, bgn, end, imm=4, iter_out=16, dst_factor=(1, 0), src_factor=(1, 0))
    ...
    s.dep_push(C, S); s.dep_pop(C, S)
    s.store(0, c_addr, 1, 16)
    report = Simulator().run(s.finish(), dram)

The modules' details: config.py (sizes, layouts), isa.py (instructions), encoding.py,
program.py, stream.py (builder), dram.py, datapath.py (semantics), hazards.py (missing
token detection), cycles.py (cycle costs, SimReport), simulator.py (queues, tokens, order).
"""

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.cycles import SimReport, instruction_cycles
from tiletune.backends.vta.dram import DRAM
from tiletune.backends.vta.encoding import (
    decode,
    decode_program,
    decode_uop,
    encode,
    encode_bytes,
    encode_program,
    encode_uop,
)
from tiletune.backends.vta.isa import (
    Alu,
    AluOp,
    Finish,
    Gemm,
    HardwareModule,
    Instruction,
    MemType,
    Opcode,
    Uop,
    VTALoad,
    VTAStore,
)
from tiletune.backends.vta.program import Program
from tiletune.backends.vta.simulator import Simulator
from tiletune.backends.vta.stream import InstructionStream

__all__ = [
    "DEFAULT_CONFIG", "DRAM", "Alu", "AluOp", "Finish", "Gemm", "Instruction",
    "InstructionStream", "VTALoad", "MemType", "HardwareModule", "Opcode", "Program",
    "SimReport", "Simulator", "VTAStore", "Uop", "VTAConfig", "decode", "decode_program",
    "decode_uop",
    "encode", "encode_bytes", "encode_program", "encode_uop", "instruction_cycles",
]
