"""The VTA simulator: DRAM, bit-exact semantics, tokens and ordering, hazards, cycles."""

import dataclasses

import numpy as np
import pytest

from tiletune.backends.vta import (
    DRAM,
    Alu,
    AluOp,
    Finish,
    Gemm,
    HardwareModule,
    InstructionStream,
    MemType,
    Program,
    Simulator,
    Uop,
    VTAConfig,
    VTALoad,
    VTAStore,
    instruction_cycles,
)
from tiletune.errors import VTAError

L, C, S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE
RNG = np.random.default_rng(0)


def _int8(*shape):
    return RNG.integers(-128, 128, shape).astype(np.int8)


def _run(stream, dram, **kw):
    report = Simulator(stream.config).run(stream.finish(), dram, **kw)
    return report, report.datapath


# -- streams used by several tests -----------------------------------------------------------
def matmul_stream(a, b, shift=4):
    """C = clip((A @ B) >> shift, 0, 127) for A: 16 x 32, B: 32 x 16 (int8)."""
    dram = DRAM()
    a_addr = dram.alloc(a.reshape(16, 2, 1, 16), MemType.INP)
    w_addr = dram.alloc(np.ascontiguousarray(b.reshape(2, 16, 16).transpose(0, 2, 1)),
                        MemType.WGT)
    c_addr = dram.alloc(np.zeros((16, 1, 16), np.int8), MemType.OUT)
    s = InstructionStream()
    s.load(MemType.INP, 0, a_addr, 1, 32)
    s.load(MemType.WGT, 0, w_addr, 1, 2)
    s.dep_push(L, C)
    s.dep_pop(L, C)
    bgn, end = s.kernel([Uop(0, 0, 0)])
    s.gemm(bgn, end, iter_out=16, dst_factor=(1, 0), reset=True)
    bgn, end = s.kernel([Uop(0, 0, 0), Uop(0, 1, 1)])
    s.gemm(bgn, end, iter_out=16, dst_factor=(1, 0), src_factor=(2, 0))
    bgn, end = s.kernel([Uop(0, 0)])
    for op, imm in ((AluOp.SHR, shift), (AluOp.MAX, 0), (AluOp.MIN, 127)):
        s.alu(op, bgn, end, imm=imm, iter_out=16, dst_factor=(1, 0), src_factor=(1, 0))
    s.dep_push(C, S)
    s.dep_pop(C, S)
    s.store(0, c_addr, 1, 16)
    return s.finish(), dram, c_addr


def conv_stream(data, kernel, rows_per_tile, buffers, shift=8):
    """3x3, pad 1, stride 1 conv on NCHWnc data, tiled by output rows.

    With ``buffers=2`` tiles alternate between two halves of INP and ACC (ping-pong) and the
    tokens let the next tile's loads overlap this tile's GEMMs; ``buffers=1`` serialises.
    """
    _, ci_b, h, w, _, _ = data.shape
    co_b = kernel.shape[0]
    dram = DRAM()
    d = dram.alloc(data, MemType.INP)
    k = dram.alloc(kernel, MemType.WGT)
    o = dram.alloc(np.zeros((1, co_b, h, w, 1, 16), np.int8), MemType.OUT)
    th, rows, cols = rows_per_tile, rows_per_tile + 2, w + 2
    uops = [(co * th * w, ci * rows * cols + kh * cols + kw, ((co * ci_b + ci) * 3 + kh) * 3 + kw)
            for co in range(co_b) for ci in range(ci_b) for kh in range(3) for kw in range(3)]
    s = InstructionStream()
    s.load(MemType.WGT, 0, k, 1, co_b * ci_b * 9)
    tiles = h // th
    for t in range(tiles):
        base = (t % buffers) * 1024  # INP and ACC half
        y0 = t * th
        top, bottom = int(y0 == 0), int(y0 + th == h)
        if t >= buffers:
            s.dep_pop(C, L)  # compute is done with this INP half
        for ci in range(ci_b):
            s.load(MemType.INP, base + ci * rows * cols, d + ci * h * w + (y0 - 1 + top) * w,
                   rows - top - bottom, w, w, (top, bottom, 1, 1))
        s.dep_push(L, C)
        s.dep_pop(L, C)
        if t >= buffers:
            s.dep_pop(S, C)  # store is done with this ACC half
        bgn, end = s.kernel([Uop(base, 0, 0)])
        s.gemm(bgn, end, iter_out=co_b * th, iter_in=w, dst_factor=(w, 1), reset=True)
        bgn, end = s.kernel([Uop(a + base, b + base, c) for a, b, c in uops])
        s.gemm(bgn, end, iter_out=th, iter_in=w, dst_factor=(w, 1), src_factor=(cols, 1))
        bgn, end = s.kernel([Uop(base, base)])
        for op, imm in ((AluOp.SHR, shift), (AluOp.MAX, 0), (AluOp.MIN, 127)):
            s.alu(op, bgn, end, imm=imm, iter_out=co_b * th, iter_in=w, dst_factor=(w, 1),
                  src_factor=(w, 1))
        if t + buffers < tiles:
            s.dep_push(C, L)
        s.dep_push(C, S)
        s.dep_pop(C, S)
        for co in range(co_b):
            s.store(base + co * th * w, o + co * h * w + y0 * w, th, w, w)
        if t + buffers < tiles:
            s.dep_push(S, C)
    return s.finish(), dram, o


def conv_reference(data, kernel, shift=8):
    x = data[0, :, :, :, 0, :].transpose(0, 3, 1, 2)
    x = x.reshape(-1, *x.shape[2:]).astype(np.int64)
    wt = kernel.transpose(0, 4, 1, 5, 2, 3).astype(np.int64)
    wt = wt.reshape(kernel.shape[0] * 16, -1, 3, 3)
    h, w = x.shape[1:]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    res = sum(np.einsum("oc,chw->ohw", wt[:, :, i, j], xp[:, i:i + h, j:j + w])
              for i in range(3) for j in range(3))
    res = np.clip(res.astype(np.int32) >> shift, 0, 127).astype(np.int8)
    return res.reshape(-1, 16, h, w).transpose(0, 2, 3, 1)[None, :, :, :, None, :]


def _drop_flags(program, index, **flags):
    insns = list(program.instructions)
    insns[index] = insns[index].with_flags(**flags)
    return Program(insns, program.uops, program.config)


# -- DRAM ------------------------------------------------------------------------------------
def test_dram_alloc_addresses_and_checks():
    dram = DRAM()
    a = dram.alloc(np.zeros((3, 1, 16), np.int8), MemType.INP)
    b = dram.alloc(np.zeros((2, 1, 16), np.int32), MemType.ACC)
    assert a > 0 and a * 16 % 4096 == 0 and b * 64 % 4096 == 0 and b * 64 > a * 16
    assert dram.get(a, MemType.INP).shape == (3, 1, 16)
    with pytest.raises(VTAError, match="must be int8, got int32"):
        dram.alloc(np.zeros((1, 16), np.int32), MemType.INP)
    with pytest.raises(VTAError, match=r"shape \(\.\.\., 16, 16\)"):
        dram.alloc(np.zeros((4, 1, 16), np.int8), MemType.WGT)
    with pytest.raises(VTAError, match="no DRAM region starts"):
        dram.get(a + 1, MemType.INP)
    with pytest.raises(VTAError, match="overruns its DRAM region by 1 element"):
        dram.read(MemType.INP, a, 2, 2, 2)
    with pytest.raises(VTAError, match="not inside any allocated region"):
        dram.read(MemType.INP, 0, 1, 1, 1)


# -- bit-exact semantics ---------------------------------------------------------------------
def test_load_with_padding_and_stride():
    img = _int8(5, 7, 1, 16)            # 5 rows x 7 columns of INP elements
    dram = DRAM()
    addr = dram.alloc(img, MemType.INP)
    s = InstructionStream()
    # rows 1..3, columns 2..5 (x_size 4, stride 7), padded (2, 1, 1, 3), at SRAM entry 10
    s.load(MemType.INP, 10, addr + 7 + 2, 3, 4, 7, (2, 1, 1, 3))
    _, dp = _run(s, dram)
    expect = np.pad(img[1:4, 2:6], ((2, 1), (1, 3), (0, 0), (0, 0)))
    assert np.array_equal(dp.inp[10:10 + 6 * 8].reshape(6, 8, 1, 16), expect)
    assert not dp.inp[:10].any() and not dp.inp[58:].any()


def test_load_acc_and_acc_8bit_sign_extend():
    dram = DRAM()
    acc = RNG.integers(-2**31, 2**31, (4, 1, 16)).astype(np.int32)
    small = _int8(3, 1, 16)
    a, b = dram.alloc(acc, MemType.ACC), dram.alloc(small, MemType.ACC_8BIT)
    s = InstructionStream()
    s.load(MemType.ACC, 0, a, 1, 4)
    s.load(MemType.ACC_8BIT, 4, b, 1, 3)
    _, dp = _run(s, dram)
    assert np.array_equal(dp.acc[:4], acc)
    assert np.array_equal(dp.acc[4:7], small.astype(np.int32))


def test_store_truncates_to_low_bits():
    dram = DRAM()
    values = np.array([300, -129, 2**31 - 1, -2**31, 128, 255, -1, 0] * 2, np.int32)
    a = dram.alloc(values.reshape(1, 1, 16), MemType.ACC)
    o = dram.alloc(np.zeros((2, 3, 1, 16), np.int8), MemType.OUT)
    s = InstructionStream()
    s.load(MemType.ACC, 0, a, 1, 1)
    s.load(MemType.ACC, 1, a, 1, 1)
    s.dep_push(C, S)
    s.dep_pop(C, S)
    s.store(0, o + 1, 2, 1, 3)           # two rows of one element, DRAM row stride 3
    _run(s, dram)
    out = dram.get(o, MemType.OUT)
    expect = ((values.astype(np.int64) + 128) % 256 - 128).astype(np.int8)
    assert np.array_equal(out[0, 1, 0], expect) and np.array_equal(out[1, 1, 0], expect)
    assert not out[:, 0].any() and not out[:, 2].any()


def _loop_ref(insn, uops):
    for i in range(insn.iter_out):
        for j in range(insn.iter_in):
            for k in range(insn.uop_bgn, insn.uop_end):
                u = uops[k]
                yield (u.dst + i * insn.dst_factor_out + j * insn.dst_factor_in,
                       u.src + i * insn.src_factor_out + j * insn.src_factor_in,
                       u.wgt + i * getattr(insn, "wgt_factor_out", 0)
                       + j * getattr(insn, "wgt_factor_in", 0))


@pytest.mark.parametrize("many_weights", [False, True])
def test_gemm_bit_exact(many_weights):
    dram = DRAM()
    inp, wgt = _int8(64, 1, 16), _int8(32, 16, 16)
    init = RNG.integers(-2**31, 2**31, (40, 1, 16)).astype(np.int32)
    init[0, 0, :4] = 2**31 - 1          # accumulation wraps around
    ia, wa = dram.alloc(inp, MemType.INP), dram.alloc(wgt, MemType.WGT)
    aa = dram.alloc(init, MemType.ACC)
    s = InstructionStream()
    s.load(MemType.INP, 0, ia, 1, 64)
    s.load(MemType.WGT, 0, wa, 1, 32)
    s.dep_push(L, C)
    s.dep_pop(L, C)
    s.load(MemType.ACC, 0, aa, 1, 40)
    uops = [Uop(int(RNG.integers(0, 8)), int(RNG.integers(0, 20)), int(RNG.integers(0, 8)))
            for _ in range(5)]
    bgn, end = s.kernel(uops)
    wgt_factor = (1, 3) if many_weights else (0, 0)  # matmul per weight tile, or batched
    gemm = s.gemm(bgn, end, iter_out=4, iter_in=3, dst_factor=(8, 2), src_factor=(5, 7),
                  wgt_factor=wgt_factor)
    bgn, end = s.kernel([Uop(1, 0, 0)])
    reset = s.gemm(bgn, end, iter_out=2, dst_factor=(37, 0), reset=True)
    _, dp = _run(s, dram)
    acc = init.astype(np.int64)
    for d, x, w in _loop_ref(gemm, uops):
        acc[d] += inp[x].astype(np.int64) @ wgt[w].astype(np.int64).T
    for d, _, _ in _loop_ref(reset, [None] * bgn + [Uop(1, 0, 0)]):
        acc[d] = 0
    expect = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)
    assert np.array_equal(dp.acc[:40], expect)


def _alu_ref(op, a, b):
    a, b = int(a), int(b)
    if op is AluOp.SHL:
        op, b = AluOp.SHR, -b
    if op is AluOp.SHR:
        r = a >> min(b, 31) if b >= 0 else (a << -b if -b < 32 else 0)
    else:
        r = {AluOp.MIN: min, AluOp.MAX: max, AluOp.ADD: lambda x, y: x + y,
             AluOp.MUL: lambda x, y: x * y}[op](a, b)
    return (r + 2**31) % 2**32 - 2**31


ALU_CASES = [(op, imm) for op in AluOp for imm in (None, -5, 3, 40, -40)
             if not (imm is not None and abs(imm) == 40 and op not in (AluOp.SHR, AluOp.SHL))]


@pytest.mark.parametrize("op,imm", ALU_CASES)
def test_alu_bit_exact(op, imm):
    dram = DRAM()
    vals = RNG.integers(-2**31, 2**31, (16, 1, 16)).astype(np.int32)
    if op in (AluOp.SHR, AluOp.SHL) and imm is None:
        vals[8:] = RNG.integers(-40, 41, (8, 1, 16))   # shift amounts read from ACC
    vals[0, 0, :3] = [2**31 - 1, -2**31, -1]
    a = dram.alloc(vals, MemType.ACC)
    s = InstructionStream()
    s.load(MemType.ACC, 0, a, 1, 16)
    bgn, end = s.kernel([Uop(0, 8), Uop(1, 9)])
    insn = s.alu(op, bgn, end, imm=imm, iter_out=2, iter_in=2, dst_factor=(4, 2),
                 src_factor=(4, 2))
    _, dp = _run(s, dram)
    expect = vals.astype(np.int64)
    for d, x, _ in _loop_ref(insn, [Uop(0, 8), Uop(1, 9)]):
        for lane in range(16):
            b = imm if imm is not None else expect[x, 0, lane]
            expect[d, 0, lane] = _alu_ref(op, expect[d, 0, lane], b)
    assert np.array_equal(dp.acc[:16], expect.astype(np.int32))


def test_alu_chained_iterations_run_in_order():
    """Iterations reading what earlier ones wrote (a running sum) follow loop order."""
    dram = DRAM()
    vals = RNG.integers(-100, 100, (8, 1, 16)).astype(np.int32)
    a = dram.alloc(vals, MemType.ACC)
    s = InstructionStream()
    s.load(MemType.ACC, 0, a, 1, 8)
    bgn, end = s.kernel([Uop(1, 0)])
    s.alu(AluOp.ADD, bgn, end, iter_out=7, dst_factor=(1, 0), src_factor=(1, 0))
    bgn, end = s.kernel([Uop(0, 0)])
    s.alu(AluOp.MAX, bgn, end, iter_out=3, dst_factor=(0, 0), src_factor=(2, 0))
    _, dp = _run(s, dram)
    prefix = np.cumsum(vals, axis=0)
    expect = prefix.copy()
    expect[0] = np.max(prefix[[0, 2, 4]], axis=0)
    assert np.array_equal(dp.acc[:8], expect)


# -- whole streams ---------------------------------------------------------------------------
def test_matmul_stream_matches_numpy():
    a, b = _int8(16, 32), _int8(32, 16)
    program, dram, c_addr = matmul_stream(a, b, shift=4)
    report = Simulator().run(program, dram)
    expect = np.clip((a.astype(np.int32) @ b.astype(np.int32)) >> 4, 0, 127).astype(np.int8)
    assert np.array_equal(dram.get(c_addr, MemType.OUT).reshape(16, 16), expect)
    assert report.gemm_ops == 32 and report.alu_ops == 48
    assert (report.inp_load_bytes, report.wgt_load_bytes) == (512, 512)
    assert report.out_store_bytes == 256 and report.uop_load_bytes == 12
    assert report.instructions == {"load": 3, "compute": 9, "store": 1}
    assert report.gemm_utilization == pytest.approx(32 / report.cycles)
    assert report.cycles == max(end for _, end in report.timeline)


def test_random_orders_give_identical_results():
    a, b = _int8(16, 32), _int8(32, 16)
    program, dram, c_addr = matmul_stream(a, b)
    base = Simulator().run(program, dram)
    expect = dram.get(c_addr, MemType.OUT).copy()
    for seed in range(20):
        dram.get(c_addr, MemType.OUT)[...] = 0
        report = Simulator().run(program, dram, order="random", seed=seed)
        assert np.array_equal(dram.get(c_addr, MemType.OUT), expect)
        assert np.array_equal(report.datapath.acc, base.datapath.acc)
        assert report.cycles == base.cycles and report.timeline == base.timeline


def test_conv_stream_matches_numpy_in_any_order():
    data, kernel = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 3, 3, 16, 16)
    expect = conv_reference(data, kernel)
    program, dram, o = conv_stream(data, kernel, rows_per_tile=2, buffers=2)
    first = Simulator().run(program, dram)
    assert np.array_equal(dram.get(o, MemType.OUT), expect)
    for seed in range(5):
        dram.get(o, MemType.OUT)[...] = 0
        report = Simulator().run(program, dram, order="random", seed=seed)
        assert np.array_equal(dram.get(o, MemType.OUT), expect)
        assert report.cycles == first.cycles


def test_double_buffering_beats_serialised():
    data, kernel = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 3, 3, 16, 16)
    expect = conv_reference(data, kernel)
    cycles = {}
    for buffers in (1, 2):
        program, dram, o = conv_stream(data, kernel, rows_per_tile=2, buffers=buffers)
        report = Simulator().run(program, dram)
        assert np.array_equal(dram.get(o, MemType.OUT), expect)
        cycles[buffers] = report.cycles
    assert cycles[2] < cycles[1] * 0.95


def test_cycles_mode_skips_arithmetic_but_times_the_same():
    data, kernel = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 3, 3, 16, 16)
    program, dram, o = conv_stream(data, kernel, rows_per_tile=2, buffers=2)
    full = Simulator().run(program, dram)
    dram.get(o, MemType.OUT)[...] = 0
    fast = Simulator().run(program, dram, mode="cycles")
    assert not dram.get(o, MemType.OUT).any()
    assert not fast.datapath.acc.any()
    assert fast.to_dict() == full.to_dict() and fast.timeline == full.timeline


# -- tokens, deadlocks and hazards -----------------------------------------------------------
def test_missing_push_deadlocks():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    assert program.instructions[1].push_next and program.instructions[10].push_next
    broken = _drop_flags(program, 10, push_next=False)  # FINISH's load->compute token
    for order in ("program", "random"):
        with pytest.raises(VTAError, match="deadlock") as err:
            Simulator().run(broken, dram, order=order)
    assert str(err.value).splitlines() == [
        "deadlock: no module can proceed",
        "  load: done (3 instructions)",
        "  compute: compute #11 `LOAD UOP nop [pop_prev pop_next]` waits for a token on l2g "
        "(load->compute), which is empty",
        "  store: done (1 instructions)",
        "  token queues: l2g=0, g2l=0, g2s=0, s2g=1",
    ]


def test_missing_token_pair_is_detected_in_every_order():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    broken = _drop_flags(_drop_flags(program, 1, push_next=False), 2, pop_prev=False)
    for seed in range(10):
        with pytest.raises(VTAError, match=r"missing dependency token \(RAW on (INP|WGT)"):
            Simulator().run(broken, dram, order="random", seed=seed)
    with pytest.raises(VTAError, match=r"compute #5 `GEMM .* reads INP\[0\], last written by "
                                       r"load #0 `LOAD INP .*no load->compute token orders"):
        Simulator().run(broken, dram)


def test_missing_store_token_is_detected():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    i = next(n for n, x in enumerate(program.instructions) if isinstance(x, VTAStore))
    broken = _drop_flags(_drop_flags(program, i - 1, push_next=False), i, pop_prev=False)
    with pytest.raises(VTAError, match=r"missing dependency token \(RAW on ACC\[0\]\): "
                                       r"store #9 .* reads ACC\[0\], last written by compute"):
        Simulator().run(broken, dram)


def test_missing_war_token_in_double_buffering_is_detected():
    data, kernel = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 3, 3, 16, 16)
    program, dram, _ = conv_stream(data, kernel, rows_per_tile=2, buffers=2)
    insns = program.instructions
    # the first compute->load token (INP half 0 is free again) and the load that waits on it
    push = next(n for n, x in enumerate(insns) if x.module is C and x.push_prev)
    pop = next(n for n, x in enumerate(insns) if x.module is L and x.pop_next)
    broken = _drop_flags(_drop_flags(program, push, push_prev=False), pop, pop_next=False)
    for seed in range(5):
        with pytest.raises(VTAError, match=r"missing dependency token \(WAR on INP"):
            Simulator().run(broken, dram, order="random", seed=seed)


def test_every_token_of_the_double_buffered_stream_is_needed():
    """Dropping any single dependency flag is caught (deadlock or missing token)."""
    data, kernel = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 3, 3, 16, 16)
    program, dram, _ = conv_stream(data, kernel, rows_per_tile=2, buffers=2)
    flags = [(n, f) for n, insn in enumerate(program.instructions)
             for f in ("pop_prev", "pop_next", "push_prev", "push_next") if getattr(insn, f)]
    assert len(flags) > 20
    for n, flag in flags:
        with pytest.raises(VTAError, match="deadlock|missing dependency token"):
            Simulator().run(_drop_flags(program, n, **{flag: False}), dram, mode="cycles")


def test_dangling_token_is_reported():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    extra = _drop_flags(program, len(program) - 1, push_next=True)  # FINISH pushes to store
    with pytest.raises(VTAError, match=r"dangling dependency tokens .*: g2s \(compute->store\) "
                                       r"holds 1 token\(s\), the first pushed by compute #12 "
                                       r"`FINISH \[push_next\]`"):
        Simulator().run(extra, dram)


def test_finish_must_follow_stores():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    n = len(program)
    assert program.instructions[n - 2].pop_next
    # drop the store->compute pair that orders FINISH after the STORE
    broken = _drop_flags(_drop_flags(program, n - 4, push_prev=False), n - 2, pop_next=False)
    with pytest.raises(VTAError, match="missing dependency token before FINISH: store #9"):
        Simulator().run(broken, dram)


def test_full_command_queue_blocks_fetch():
    """Fetch is in order: a compute queue full of waiting instructions hides the load."""
    insns = [Gemm(0, 1, pop_prev=True)] + [Gemm(0, 1)] * 8 + [
        VTALoad(MemType.INP, 0, 0, 0, 0, 0, push_next=True), Finish()]
    with pytest.raises(VTAError, match=r"(?s)deadlock.*load: next is load #9 .*not fetched"
                                       r".*fetch: compute #8 .* waits for room in the compute "
                                       r"command queue \(8 entries, full\)"):
        Simulator().run(Program(insns))
    deep = VTAConfig(queue_depth=16)
    insns = [dataclasses.replace(i, config=deep) for i in insns]
    assert Simulator(deep).run(Program(insns, config=deep)).instructions["compute"] == 10


def test_token_queue_depth_throttles_producer():
    cfg = VTAConfig(token_queue_depth=2, queue_depth=16)
    s = InstructionStream(cfg)
    for _ in range(4):
        s.load(MemType.INP, 0, 0, 0, 0)   # NOP loads, one token each
        s.dep_push(L, C)
    for _ in range(4):
        s.dep_pop(L, C)
        s.gemm(0, 1, iter_out=100)
    report = Simulator(cfg).run(s.finish())
    (first_pop, _), (third_push_start, _) = report.timeline[4], report.timeline[2]
    assert third_push_start >= first_pop   # the queue held 2 tokens until compute popped one
    assert report.timeline[1][0] < first_pop


def test_other_configuration_end_to_end():
    cfg = VTAConfig(log_batch=1, log_block_in=3, log_block_out=3, log_wgt_buff_size=16)
    assert (cfg.batch, cfg.block_in, cfg.block_out, cfg.wgt_depth) == (2, 8, 8, 1024)
    inp, wgt = _int8(6, 2, 8), _int8(3, 8, 8)
    dram = DRAM(cfg)
    ia, wa = dram.alloc(inp, MemType.INP), dram.alloc(wgt, MemType.WGT)
    o = dram.alloc(np.zeros((2, 2, 8), np.int8), MemType.OUT)
    s = InstructionStream(cfg)
    s.load(MemType.INP, 0, ia, 1, 6)
    s.load(MemType.WGT, 0, wa, 1, 3)
    s.dep_push(L, C)
    s.dep_pop(L, C)
    bgn, end = s.kernel([Uop(0, 0, 0, config=cfg), Uop(0, 1, 1, config=cfg),
                         Uop(0, 2, 2, config=cfg)])
    s.gemm(bgn, end, iter_out=2, dst_factor=(1, 0), src_factor=(3, 0))
    s.dep_push(C, S)
    s.dep_pop(C, S)
    s.store(0, o, 1, 2)
    Simulator(cfg).run(s.finish(), dram)
    x = inp.reshape(2, 3, 2, 8).astype(np.int32)
    expect = np.einsum("nkbi,koi->nbo", x, wgt.astype(np.int32)).astype(np.int8)
    assert np.array_equal(dram.get(o, MemType.OUT), expect)


# -- errors from the datapath ----------------------------------------------------------------
def test_out_of_range_gemm_index_names_buffer():
    s = InstructionStream()
    bgn, end = s.kernel([Uop(2000, 0, 0)])
    s.gemm(bgn, end, iter_out=10, dst_factor=(10, 0))
    with pytest.raises(VTAError, match=r"GEMM.*: ACC index 2050 out of range \(the ACC buffer "
                                       r"has 2048 entries\), dst operand at iteration i=5"):
        Simulator().run(s.finish(), mode="cycles")
    s = InstructionStream()
    bgn, end = s.kernel([Uop(0, 0, 1000)])
    s.gemm(bgn, end, iter_in=30, wgt_factor=(0, 1))
    with pytest.raises(VTAError, match="WGT index 1024 out of range"):
        Simulator().run(s.finish())


def test_dma_overflowing_sram_names_buffer():
    dram = DRAM()
    addr = dram.alloc(np.zeros((100, 1, 16), np.int8), MemType.INP)
    s = InstructionStream()
    s.load(MemType.INP, 2000, addr, 1, 50)
    with pytest.raises(VTAError, match=r"INP index 2049 out of range.*INP buffer has 2048"):
        Simulator().run(s.finish(), dram)
    s = InstructionStream()
    s.load(MemType.INP, 0, addr, 2, 60, 60)
    with pytest.raises(VTAError, match="overruns its DRAM region by 20 element"):
        Simulator().run(s.finish(), dram, mode="cycles")


def test_instruction_cycle_costs():
    cfg = VTAConfig()
    load = VTALoad(MemType.INP, 0, 0, 3, 18, 58, 1, 1, 1, 1)
    assert instruction_cycles(load, cfg) == 64 + 3 * 36 + (5 * 20 - 54)
    assert instruction_cycles(VTAStore(0, 0, 2, 56, 56), cfg) == 64 + 2 * 112
    assert instruction_cycles(Gemm(0, 9, 2, 3), cfg) == 54 + 4
    assert instruction_cycles(Alu(0, 1, 4, 8), cfg) == 64 + 4
    assert instruction_cycles(Finish(), cfg) == 1
    assert instruction_cycles(VTALoad(MemType.UOP, 0, 0, 0, 0, 0), cfg) == 1
    slow = VTAConfig(bus_width=4, dram_latency=10, gemm_fill=0)
    assert instruction_cycles(VTALoad(MemType.WGT, 0, 0, 1, 2, 2, config=slow), slow) == 10 + 128
    assert instruction_cycles(Gemm(0, 9, 2, 3, config=slow), slow) == 54


def test_simulator_rejects_bad_arguments():
    program, dram, _ = matmul_stream(_int8(16, 32), _int8(32, 16))
    with pytest.raises(VTAError, match="mode must be"):
        Simulator().run(program, dram, mode="fast")
    with pytest.raises(VTAError, match="order must be"):
        Simulator().run(program, dram, order="any")
    with pytest.raises(VTAError, match="different VTAConfig"):
        Simulator(VTAConfig(dram_latency=1)).run(program, dram)
    assert isinstance(program.instructions[-1], Finish)
    assert all(not isinstance(i, Alu) or i.use_imm for i in program.instructions)
