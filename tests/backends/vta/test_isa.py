"""VTA configuration, instructions, encoding and the InstructionStream builder."""

import dataclasses

import numpy as np
import pytest

from tiletune.backends.vta import (
    DEFAULT_CONFIG,
    Alu,
    AluOp,
    Finish,
    Gemm,
    HardwareModule,
    InstructionStream,
    MemType,
    Program,
    Uop,
    VTAConfig,
    VTALoad,
    VTAStore,
    decode,
    decode_program,
    decode_uop,
    encode,
    encode_bytes,
    encode_program,
    encode_uop,
)
from tiletune.errors import TileTuneError, VTAError

L, C, S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE


# -- configuration ---------------------------------------------------------------------------
def test_default_config_sizes():
    c = DEFAULT_CONFIG
    assert (c.batch, c.block_in, c.block_out) == (1, 16, 16)
    assert (c.inp_dtype, c.wgt_dtype, c.acc_dtype, c.out_dtype) == (
        np.int8, np.int8, np.int32, np.int8)
    assert (c.inp_depth, c.wgt_depth, c.acc_depth, c.out_depth, c.uop_depth) == (
        2048, 1024, 2048, 2048, 8192)
    assert (c.inp_elem_bytes, c.wgt_elem_bytes, c.acc_elem_bytes) == (16, 256, 64)
    assert (c.bus_width, c.queue_depth) == (8, 8)


def test_default_layouts_match_vta():
    c = DEFAULT_CONFIG
    mem = c.layout("mem")
    assert mem["mem"] == (7, 3) and mem["sram_base"] == (10, 16)
    assert mem["dram_base"] == (26, 32) and mem["y_size"] == (64, 16)
    assert mem["x_pad_1"] == (124, 4)
    gemm = c.layout("gemm")
    assert gemm["reset"] == (7, 1) and gemm["uop_bgn"] == (8, 13)
    assert gemm["uop_end"] == (21, 14) and gemm["iter_in"] == (49, 14)
    assert gemm["dst_factor_out"] == (64, 11) and gemm["wgt_factor_in"] == (118, 10)
    alu = c.layout("alu")
    assert alu["src_factor_in"] == (97, 11) and alu["op"] == (108, 3)
    assert alu["use_imm"] == (111, 1) and alu["imm"] == (112, 16)
    assert c.layout("uop") == {"dst": (0, 11), "src": (11, 11), "wgt": (22, 10)}


def test_isa_widths_follow_config():
    small = VTAConfig(log_wgt_buff_size=17, log_inp_buff_size=14)
    assert small.wgt_depth == 512 and small.inp_depth == 1024
    assert small.width("gemm", "wgt_factor_out") == 9
    assert small.width("gemm", "src_factor_in") == 10
    Gemm(0, 1, wgt_factor_out=511, config=small)
    with pytest.raises(VTAError, match="wgt_factor_out=512.*9-bit"):
        Gemm(0, 1, wgt_factor_out=512, config=small)
    Gemm(0, 1, wgt_factor_out=512)  # fits the default 10-bit field
    with pytest.raises(VTAError, match="GEMM instruction needs 1.. bits.*limit is 128"):
        VTAConfig(loop_iter_width=16)  # iter_in moves to word 1, which then overflows
    with pytest.raises(VTAError, match="micro-op needs 34 bits.*limit is 32"):
        VTAConfig(log_acc_buff_size=18)  # 12-bit ACC indices
    with pytest.raises(VTAError, match="log_inp_width"):
        VTAConfig(log_inp_width=2)


def test_vta_error_is_tiletune_error():
    assert issubclass(VTAError, TileTuneError)


# -- instructions: fields at their limits ----------------------------------------------------
def _base(cls):
    return {
        VTALoad: dict(mem=MemType.INP, sram_base=0, dram_base=0, y_size=1, x_size=1, x_stride=1),
        VTAStore: dict(sram_base=0, dram_base=0, y_size=1, x_size=1, x_stride=1),
        Gemm: dict(uop_bgn=0, uop_end=1),
        Alu: dict(uop_bgn=0, uop_end=1),
    }[cls]


def _limit_cases():
    c = DEFAULT_CONFIG
    skip = {"opcode", "pop_prev", "pop_next", "push_prev", "push_next", "mem", "op"}
    for cls in (VTALoad, VTAStore, Gemm, Alu):
        for name, (_, width) in c.layout(cls.LAYOUT).items():
            if name not in skip and name in {f.name for f in dataclasses.fields(cls)}:
                yield cls, name, width


@pytest.mark.parametrize("cls,name,width", list(_limit_cases()),
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_field_at_limit_round_trips_and_one_over_fails(cls, name, width):
    kwargs = _base(cls)
    if name == "imm":
        for v in (-(1 << (width - 1)), (1 << (width - 1)) - 1):
            insn = cls(**kwargs, use_imm=True, imm=v)
            assert decode(encode(insn)) == insn
        for v in (-(1 << (width - 1)) - 1, 1 << (width - 1)):
            with pytest.raises(VTAError, match=f"imm={v} does not fit its 16-bit signed"):
                cls(**kwargs, use_imm=True, imm=v)
        return
    limit = (1 << width) - 1
    extra = {}
    if name == "uop_end":
        limit = DEFAULT_CONFIG.uop_depth  # the buffer, not the 14-bit field, is the limit
    if name == "uop_bgn":
        extra["uop_end"] = DEFAULT_CONFIG.uop_depth
    insn = cls(**{**kwargs, **extra, name: limit})
    assert decode(encode(insn)) == insn
    assert decode(encode_bytes(insn)) == insn
    with pytest.raises(VTAError, match=name):
        cls(**{**kwargs, **extra, name: limit + 1})
    with pytest.raises(VTAError, match=f"{name}=-1"):
        cls(**{**kwargs, **extra, name: -1})


def test_width_error_names_field_and_range():
    with pytest.raises(VTAError, match=r"LOAD field y_pad_0=16 does not fit its 4-bit field "
                                       r"\(allowed 0\.\.15\)"):
        VTALoad(MemType.INP, 0, 0, 1, 1, 1, y_pad_0=16)
    with pytest.raises(VTAError, match=r"uop_end=8193 exceeds the UOP buffer depth 8192"):
        Gemm(0, 8193)
    with pytest.raises(VTAError, match="uop_end=1 < uop_bgn=2"):
        Alu(2, 1)
    with pytest.raises(VTAError, match="must be an int"):
        Gemm(0, 1.5)
    with pytest.raises(VTAError, match="GEMM field pop_next=2 does not fit its 1-bit field"):
        Gemm(0, 1, pop_next=2)
    assert Gemm(0, 1, reset=1, pop_prev=1) == Gemm(0, 1, reset=True, pop_prev=True)
    assert Gemm(0, 1, reset=1).reset is True


@pytest.mark.parametrize("insn", [
    VTALoad(MemType.INP, 7, 128, 3, 18, 58, 1, 1, 1, 1, pop_next=True, push_next=True),
    VTALoad(MemType.WGT, 0, 99, 1, 144, 144, pop_next=True),
    VTALoad(MemType.UOP, 100, 5, 1, 9, 9, pop_prev=True, pop_next=True, push_prev=True,
         push_next=True),
    VTALoad(MemType.ACC, 3, 4, 5, 6, 7, 0, 0, 2, 2),
    VTALoad(MemType.ACC_8BIT, 3, 4, 5, 6, 7),
    VTALoad(MemType.INP, 0, 0, 0, 0, 0),
    VTAStore(12, 34, 2, 56, 3136, pop_prev=True, push_prev=True),
    Gemm(3, 12, 7, 56, 56, 1, 58, 1, 3, 4, reset=True, push_next=True),
    Gemm(0, 8192, 16383, 16383, 2047, 2047, 2047, 2047, 1023, 1023),
    Alu(1, 2, 3, 4, 5, 6, 7, 8, op=AluOp.SHR, use_imm=True, imm=-8, pop_next=True),
    Alu(0, 1, op=AluOp.MUL),
    Alu(0, 1, op=AluOp.SHL, use_imm=True, imm=3),
    Finish(),
    Finish(pop_prev=True, push_next=True),
], ids=str)
def test_round_trip(insn):
    word = encode(insn)
    assert 0 <= word < 1 << 128
    assert decode(word) == insn
    assert decode(encode_bytes(insn)) == insn
    assert encode_bytes(insn) == word.to_bytes(16, "little")
    assert encode(decode(word)) == word


def test_known_encoding_bits():
    insn = VTALoad(MemType.INP, 7, 128, 3, 18, 58, 1, 2, 3, 4, pop_next=True)
    word = encode(insn)
    assert word & 7 == 0 and (word >> 4) & 1 == 1
    assert (word >> 7) & 7 == MemType.INP and (word >> 10) & 0xFFFF == 7
    assert (word >> 26) & 0xFFFFFFFF == 128 and (word >> 64) & 0xFFFF == 3
    assert (word >> 112) & 0xF == 1 and (word >> 124) & 0xF == 4
    alu = Alu(0, 1, op=AluOp.SHR, use_imm=True, imm=-1)
    assert (encode(alu) >> 112) == 0xFFFF and (encode(alu) >> 108) & 7 == AluOp.SHR


def test_program_round_trip():
    insns = [VTALoad(MemType.INP, 0, 0, 1, 1, 1, push_next=True),
             Gemm(0, 1, pop_prev=True), Finish()]
    assert decode_program(encode_program(insns)) == insns
    p = Program(insns, [Uop(1, 2, 3)])
    data, words = p.encode()
    assert Program.decode(data, words) == p


def test_decode_rejects_bad_words():
    with pytest.raises(VTAError, match="unknown opcode 5"):
        decode(5)
    with pytest.raises(VTAError, match="bits 63 are set but belong to no field"):
        decode(encode(Gemm(0, 1)) | 1 << 63)
    with pytest.raises(VTAError, match="STORE does not support padding"):
        decode(encode(VTAStore(0, 0, 1, 1, 1)) | 1 << 112)
    with pytest.raises(VTAError, match="memory type OUT"):
        decode(encode(VTAStore(0, 0, 1, 1, 1)) & ~(7 << 7) | MemType.INP << 7)
    with pytest.raises(VTAError, match="LOAD field mem=7 is not one of"):
        decode(encode(VTALoad(MemType.INP, 0, 0, 1, 1, 1)) | 7 << 7)
    with pytest.raises(VTAError, match="ALU field op=6"):
        decode(encode(Alu(0, 1)) & ~(7 << 108) | 6 << 108)
    with pytest.raises(VTAError, match="16 bytes"):
        decode(b"\0" * 15)
    with pytest.raises(VTAError, match="128-bit"):
        decode(1 << 128)


def test_uop_round_trip_and_limits():
    for u in (Uop(0, 0, 0), Uop(2047, 2047, 1023), Uop(5, 6, 7)):
        assert decode_uop(encode_uop(u)) == u
    assert encode_uop(Uop(1, 2, 3)) == 1 | 2 << 11 | 3 << 22
    for kwargs, field in ((dict(dst=2048, src=0), "dst"), (dict(dst=0, src=2048), "src"),
                          (dict(dst=0, src=0, wgt=1024), "wgt")):
        with pytest.raises(VTAError, match=f"UOP field {field}=.*11|UOP field {field}=.*10"):
            Uop(**kwargs)
    with pytest.raises(VTAError, match="32-bit"):
        decode_uop(1 << 32)


def test_routing_and_stage_flags():
    assert VTALoad(MemType.INP, 0, 0, 1, 1, 1).module is L
    assert VTALoad(MemType.WGT, 0, 0, 1, 1, 1).module is L
    assert VTALoad(MemType.UOP, 0, 0, 1, 1, 1).module is C
    assert VTALoad(MemType.ACC, 0, 0, 1, 1, 1).module is C
    assert VTALoad(MemType.ACC_8BIT, 0, 0, 1, 1, 1).module is C
    assert VTAStore(0, 0, 1, 1, 1).module is S
    assert Gemm(0, 1).module is C and Alu(0, 1).module is C and Finish().module is C
    with pytest.raises(VTAError, match="load module, which has no previous stage"):
        VTALoad(MemType.INP, 0, 0, 1, 1, 1, push_prev=True)
    with pytest.raises(VTAError, match="store module, which has no next stage"):
        VTAStore(0, 0, 1, 1, 1, pop_next=True)
    with pytest.raises(VTAError, match="LOAD cannot target OUT"):
        VTALoad(MemType.OUT, 0, 0, 1, 1, 1)


def test_asm_strings():
    assert str(VTALoad(MemType.INP, 0, 128, 3, 18, 58, 1, 1, 1, 1, pop_next=True,
                    push_next=True)) == (
        "LOAD INP sram=0 dram=128 y=3 x=18 stride=58 pad=(1,1,1,1) [pop_next push_next]")
    assert str(VTALoad(MemType.WGT, 0, 5, 1, 9, 9)) == "LOAD WGT sram=0 dram=5 y=1 x=9 stride=9"
    assert str(VTAStore(0, 16, 2, 56, 3136, pop_prev=True)) == (
        "STORE OUT sram=0 dram=16 y=2 x=56 stride=3136 [pop_prev]")
    assert str(Gemm(0, 9, 14, 1, 1, 0, 1, 0, reset=True)) == (
        "GEMM reset uop=[0,9) iter=(14,1) dst=(1,0) src=(1,0) wgt=(0,0)")
    assert str(Alu(0, 1, 2, 3, 16, 1, 16, 1, op=AluOp.SHR, use_imm=True, imm=8)) == (
        "ALU SHR imm=8 uop=[0,1) iter=(2,3) dst=(16,1) src=(16,1)")
    assert str(Alu(0, 1, op=AluOp.ADD)) == "ALU ADD uop=[0,1) iter=(1,1) dst=(0,0) src=(0,0)"
    assert str(Finish()) == "FINISH"
    assert str(VTALoad(MemType.UOP, 0, 0, 0, 0, 0, pop_prev=True)) == "LOAD UOP nop [pop_prev]"
    assert str(Uop(1, 2, 3)) == "uop(dst=1, src=2, wgt=3)"


def test_program_requires_single_final_finish():
    with pytest.raises(VTAError, match="no FINISH"):
        Program([Gemm(0, 1)])
    with pytest.raises(VTAError, match=r"FINISH at \[0\]"):
        Program([Finish(), Gemm(0, 1)])
    other = VTAConfig(dram_latency=1)
    with pytest.raises(VTAError, match="different VTAConfig"):
        Program([Gemm(0, 1, config=other), Finish()])


# -- the builder -----------------------------------------------------------------------------
def test_stream_folds_pops_and_pushes():
    s = InstructionStream()
    s.load(MemType.INP, 0, 0, 1, 4)
    s.dep_push(L, C)                      # folded onto the LOAD
    s.dep_pop(L, C)                       # folded into the next compute instruction
    s.gemm(0, 1)
    s.dep_push(L, C)                      # LOAD already pushes: a load NOP carries it
    s.dep_pop(C, S)                       # pending on store
    s.dep_pop(C, S)                       # second pending pop: the first goes on a NOP
    s.store(0, 0, 1, 1)
    insns = s.instructions
    assert insns[0].push_next and insns[1].pop_prev and not insns[1].push_next
    assert str(insns[2]) == "LOAD INP nop [push_next]"
    assert str(insns[3]) == "STORE OUT nop [pop_prev]"
    assert insns[4].pop_prev and isinstance(insns[4], VTAStore)
    with pytest.raises(VTAError, match="adjacent modules"):
        s.dep_push(L, S)


def test_stream_push_commits_pending_pops_first():
    s = InstructionStream()
    s.gemm(0, 1)
    s.dep_pop(S, C)
    s.dep_push(C, S)   # the pending pop must be executed before the push
    insns = s.instructions
    assert not insns[0].push_next
    assert str(insns[1]) == "LOAD UOP nop [pop_next push_next]"


def test_stream_finish_orders_finish_last():
    s = InstructionStream()
    s.load(MemType.INP, 0, 0, 1, 1)
    s.store(0, 0, 1, 1)
    p = s.finish()
    lines = p.asm().splitlines()
    assert lines == [
        "0: LOAD INP sram=0 dram=0 y=1 x=1 stride=1 [push_next]",
        "1: STORE OUT sram=0 dram=0 y=1 x=1 stride=1 [push_prev]",
        "2: LOAD UOP nop [pop_prev pop_next]",
        "3: FINISH",
    ]
    with pytest.raises(VTAError, match="finished"):
        s.gemm(0, 1)


def test_stream_kernel_table_and_residency():
    c = VTAConfig(log_uop_buff_size=5)  # 8 micro-ops
    s = InstructionStream(c)
    k1 = [Uop(0, 0, config=c), Uop(1, 1, config=c)]
    k2 = [Uop(2, 2, config=c)] * 5
    assert s.kernel(k1) == (0, 2)
    assert s.kernel(k1) == (0, 2)         # resident: no reload
    assert s.kernel(k2) == (2, 7)
    assert s.kernel(k1) == (0, 2)
    k3 = [Uop(3, 3, config=c)] * 4        # does not fit after k2: everything is evicted
    assert s.kernel(k3) == (0, 4)
    assert s.kernel(k1) == (4, 6)
    loads = [str(i) for i in s.instructions]
    assert loads == ["LOAD UOP sram=0 dram=0 y=1 x=2 stride=2",
                     "LOAD UOP sram=2 dram=2 y=1 x=5 stride=5",
                     "LOAD UOP sram=0 dram=7 y=1 x=4 stride=4",
                     "LOAD UOP sram=4 dram=0 y=1 x=2 stride=2"]
    assert len(s.uops) == 11               # each kernel stored once
    with pytest.raises(VTAError, match="does not fit the UOP buffer"):
        s.kernel([Uop(0, 0, config=c)] * 9)
