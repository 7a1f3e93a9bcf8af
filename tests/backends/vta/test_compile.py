"""Compiling int8 conv2d and dense to the VTA simulator: bit-exact results, tokens, errors."""
import numpy as np
import pytest

import tiletune as tt
from tiletune.errors import ArgumentError, ScheduleError, TileTuneError, VTAError
from tiletune.runtime.module import Module
from tiletune.schedules import vta_conv2d as vc
from tiletune.schedules import vta_dense as vd

RNG = np.random.default_rng(0)


def _int8(*shape):
    return RNG.integers(-128, 128, shape).astype(np.int8)


def _conv_args(w):
    data, kernel = _int8(w.N, w.C, w.H, w.W), _int8(w.K, w.C, w.R, w.S)
    bias = RNG.integers(-3000, 3000, w.K).astype(np.int32) if w.bias else None
    args = [vc.pack_data(data), vc.pack_kernel(kernel)] + (
        [vc.pack_bias(bias)] if w.bias else [])
    out = np.zeros((w.N, w.K // 16, w.OH, w.OW, 1, 16), np.int8)
    return args, out, vc.reference(w, data, kernel, bias)


def _cfg(th, tw, tci, tco, oc=1, h=1):
    return dict(tile_b=1, tile_h=th, tile_w=tw, tile_ci=tci, tile_co=tco, oc_nthread=oc,
                h_nthread=h)


# reduced ResNet-18-like layers: 32 -> 32 channels on 14 x 14
CONV_CASES = [
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1), _cfg(7, 14, 1, 1, oc=2)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1), _cfg(2, 7, 2, 2, h=1)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1), _cfg(7, 14, 2, 1, h=2)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 2, 1), _cfg(7, 7, 1, 1, oc=2)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 2, 1), _cfg(1, 7, 2, 2)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 48, 1, 1, 1, 0), _cfg(14, 14, 2, 3)),
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 1, 1, 2, 0, bias=True, clip=(-128, 127)),
     _cfg(7, 7, 1, 1, oc=2)),
    (vc.VTAConv2dWorkload(1, 16, 9, 9, 32, 3, 3, 2, 1, bias=True), None),
]


@pytest.mark.parametrize("w,cfg", CONV_CASES, ids=lambda x: getattr(x, "key", lambda: str(x))())
def test_conv2d_bit_exact(w, cfg):
    f = vc.build(w, cfg)
    args, out, expect = _conv_args(w)
    f(*args, out)
    assert np.array_equal(vc.unpack_output(out), expect)
    assert f.report.gemm_ops * 256 == w.macs


@pytest.mark.parametrize("mnk,cfg", [
    ((16, 64, 64), None),
    ((16, 64, 64), dict(tile_m=2, tile_n=1, tile_k=1, nthread=2)),
    ((4, 32, 48), dict(tile_m=4, tile_n=2, tile_k=3, nthread=1)),
    ((8, 96, 32), dict(tile_m=8, tile_n=3, tile_k=1, nthread=2)),
])
def test_dense_bit_exact(mnk, cfg):
    w = vd.VTADenseWorkload(*mnk)
    a, wt = _int8(w.M, w.K), _int8(w.N, w.K)
    f = vd.build(w, cfg)
    out = np.zeros((w.M, w.N // 16, 1, 16), np.int8)
    f(vd.pack_data(a), vd.pack_weight(wt), out)
    assert np.array_equal(vd.unpack_output(out), vd.reference(w, a, wt))


def test_random_module_orders_give_identical_results():
    w = vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1)
    f = vc.build(w, _cfg(7, 14, 1, 1, oc=2))
    args, out, expect = _conv_args(w)
    f(*args, out)
    first = f.last_report
    assert np.array_equal(vc.unpack_output(out), expect)
    for seed in range(4):
        out[...] = 0
        f(*args, out, order="random", seed=seed)
        assert np.array_equal(vc.unpack_output(out), expect)
        assert f.last_report.cycles == first.cycles
        assert np.array_equal(f.last_report.datapath.acc, first.datapath.acc)


def test_two_virtual_threads_overlap_loads_with_compute():
    w = vc.VTAConv2dWorkload(1, 64, 14, 14, 64, 3, 3, 1, 1)
    one = vc.build(w, _cfg(7, 14, 2, 2, oc=1))
    two = vc.build(w, _cfg(7, 14, 2, 2, oc=2))
    assert two.cycles * 1.2 < one.cycles
    assert two.report.gemm_ops == one.report.gemm_ops
    args, out, expect = _conv_args(w)
    two(*args, out)
    assert np.array_equal(vc.unpack_output(out), expect)


def test_module_api():
    w = vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1)
    f = vc.build(w, _cfg(7, 14, 1, 1, oc=2))
    args, out, _ = _conv_args(w)
    t = f.time_evaluator(number=2, repeat=3)(*args, out)
    assert t.results == (f.cycles / 100e6,) * 3 and t.mean == f.seconds
    asm, ir = f.get_source("asm"), f.get_source("ir")
    assert "GEMM" in asm and "LOAD INP" in asm and "pad=(1," in asm and "ALU SHR imm=8" in asm
    assert "vta.inp" in ir and "virtual_thread(2)" in ir and "spatial(16)" in ir
    assert f.outputs == ("out",) and f.report.to_dict()["gemm_utilization"] > 0.3
    with pytest.raises(ArgumentError, match="expected shape"):
        f(args[0][:, :1], args[1], out)
    with pytest.raises(ArgumentError, match="expected dtype int8"):
        f(args[0].astype(np.int32), args[1], out)
    with pytest.raises(ArgumentError, match="C-contiguous"):
        f(np.asfortranarray(args[0]), args[1], out)
    with pytest.raises(ArgumentError, match="takes 3 arrays"):
        f(args[0], out)
    with pytest.raises(TileTuneError, match="'asm' and 'ir'"):
        f.get_source("ll")
    with pytest.raises(TileTuneError, match="cannot be exported"):
        f.export_library("k.so")
    assert isinstance(f, Module) and "instructions>" in repr(f)
    with f:
        f.set_num_threads(2)
    with pytest.raises(TileTuneError, match="closed"):
        f(*args, out)


def test_dump_writes_ir_and_asm(tmp_path):
    w = vd.VTADenseWorkload(16, 32, 32)
    s, args = vd.schedule(w)
    tt.build(s, args, target="vta", name="d", dump=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "91_d_vta.asm" in names and any(n.endswith("_loop_nest.txt") for n in names)


# -- errors name the constraint that failed ----------------------------------------------------
def _manual_conv(split_ki=False, spatial=("b", "c", "k"), dtype="int8", acc_scope="vta.acc",
                 threads=1):
    data = tt.placeholder((1, 2, 8, 8, 1, 16), dtype, name="data")
    kern = tt.placeholder((2, 2, 1, 1, 16, 16), dtype, name="kernel")
    ko, ki = tt.reduce_axis(2, "ko"), tt.reduce_axis(16, "ki")
    acc_t = "int32" if dtype == "int8" else dtype
    conv = tt.compute((1, 2, 8, 8, 1, 16), lambda n, co, i, j, b, c: tt.sum(
        data[n, ko, i, j, b, ki].astype(acc_t) * kern[co, ko, 0, 0, c, ki].astype(acc_t),
        axis=[ko, ki]), name="conv")
    res = tt.compute(conv.shape, lambda n, co, i, j, b, c: conv[n, co, i, j, b, c] // 16
                     if dtype == "int8" else conv[n, co, i, j, b, c], name="res")
    out = tt.compute(conv.shape, lambda n, co, i, j, b, c: res[n, co, i, j, b, c]
                     .astype(dtype), name="out")
    s = tt.create_schedule(out)
    s[res].set_scope(acc_scope)
    dbuf = s.cache_read(data, "vta.inp", [conv])
    kbuf = s.cache_read(kern, "vta.wgt", [conv])
    s[conv].set_scope(acc_scope)
    n, co, i, j, b, c = s[out].axis
    vts = []
    if threads > 1:
        vt, co = s[out].split(co, nparts=2)
        vts.append(vt)
    if threads > 2:
        vt, i = s[out].split(i, nparts=2)
        vts.append(vt)
        s[out].reorder(*vts, co, i)
    s[conv].compute_at(s[out], i if threads > 2 else co)
    s[res].compute_at(s[out], i if threads > 2 else co)
    for vt in vts:
        s[out].virtual_thread(vt)
    cb, cco, ci, cj, cbi, cci = s[conv].axis
    rko, rki = s[conv].reduce_axis
    k = rki
    if split_ki:
        _, k = s[conv].split(rki, factor=8)
    s[conv].reorder(rko, ci, cj, cbi, cci, k)
    names = {"b": cbi, "c": cci, "k": k}
    for a in spatial:
        s[conv].spatial_for(names[a])
    s[dbuf].compute_at(s[conv], rko)
    s[kbuf].compute_at(s[conv], rko)
    return s, [data, kern, out]


def test_manual_schedule_runs():
    s, args = _manual_conv()
    f = tt.build(s, args, target="vta")
    d, k = _int8(1, 2, 8, 8, 1, 16), _int8(2, 2, 1, 1, 16, 16)
    out = np.zeros((1, 2, 8, 8, 1, 16), np.int8)
    f(d, k, out)
    x = d[0, :, :, :, 0, :].astype(np.int64)  # (ci, i, j, k)
    wt = k[:, :, 0, 0].astype(np.int64)        # (co, ci, c, k)
    acc = np.einsum("aijk,oack->oijc", x, wt)
    expect = ((acc.astype(np.int32) // 16).astype(np.int8))[None, :, :, :, None, :]
    assert np.array_equal(out, expect)


@pytest.mark.parametrize("kwargs,match", [
    (dict(split_ki=True), r"spatial block must match the GEMM unit \(BATCH x BLOCK_OUT x "
                          r"BLOCK_IN = 1 x 16 x 16\).*got .*ki.inner\(8\)"),
    (dict(spatial=("c",)), r"spatial block must match the GEMM unit.*got c\(16\)"),
    (dict(dtype="float32"), r"stage data.vta.inp in vta.inp must be int8"),
    (dict(acc_scope="global"), r"intermediate in global memory; on VTA it must live on chip"),
])
def test_schedule_errors_name_the_constraint(kwargs, match):
    s, args = _manual_conv(**kwargs)
    with pytest.raises(ScheduleError, match=match) as e:
        tt.build(s, args, target="vta")
    assert "loops outermost first" in str(e.value)


def test_virtual_threads():
    s, args = _manual_conv(threads=2)
    f = tt.build(s, args, target="vta")
    assert "virtual_thread(2)" in f.get_source("ir")
    s, args = _manual_conv(threads=4)
    with pytest.raises(ScheduleError, match="uses 4 virtual threads; VTA interleaves at most 2"):
        tt.build(s, args, target="vta")
    conv = s[s.stages[-3].op]
    assert conv.name == "conv"
    with pytest.raises(ScheduleError, match="virtual_thread on reduce loop"):
        conv.virtual_thread(conv.reduce_axis[0])


def test_buffer_overflow_names_buffer_and_sizes():
    w = vc.VTAConv2dWorkload(1, 64, 56, 56, 64, 3, 3, 1, 1)
    cfg = _cfg(28, 56, 4, 1)
    assert "INP overflow" in vc.invalid_reason(w, cfg)
    s, args = vc.schedule(w, cfg, validate=False)
    with pytest.raises(VTAError, match=r"INP buffer overflow: the schedule needs 6960 INP "
                                       r"entries .* holds 2048 entries of 16 B \(32 KiB\); "
                                       r"on-chip tiles: pad int8\[1, 4, 30, 58, 1, 16\] = "
                                       r"6960 entries"):
        tt.build(s, args, target="vta")
    cfg = _cfg(28, 28, 1, 2, oc=2)
    assert "ACC overflow" in vc.invalid_reason(w, cfg)
    s, args = vc.schedule(w, cfg, validate=False)
    with pytest.raises(VTAError, match=r"ACC buffer overflow.*conv int32\[1, 2, 28, 28, 1, 16\] "
                                       r"= 1568 entries x 2 virtual threads"):
        tt.build(s, args, target="vta")


def test_alu_and_output_errors():
    data = tt.placeholder((1, 1, 16), "int8", name="a")
    wgt = tt.placeholder((1, 1, 16, 16), "int8", name="w")
    k = tt.reduce_axis(16, "k")
    acc = tt.compute((1, 1, 1, 16), lambda i, j, b, o: tt.sum(
        data[i, b, k].astype("int32") * wgt[j, 0, o, k].astype("int32"), axis=k), name="acc")

    def build(epilogue, out_dtype="int8"):
        res = tt.compute(acc.shape, lambda i, j, b, o: epilogue(acc[i, j, b, o]), name="res")
        out = tt.compute(acc.shape, lambda i, j, b, o: res[i, j, b, o].astype(out_dtype),
                         name="out")
        s = tt.create_schedule(out)
        s.cache_read(data, "vta.inp", [acc])
        s.cache_read(wgt, "vta.wgt", [acc])
        s[acc].set_scope("vta.acc")
        s[res].set_scope("vta.acc")
        for ax in s[acc].axis[2:] + s[acc].reduce_axis:
            s[acc].spatial_for(ax)
        return tt.build(s, [data, wgt, out], target="vta")

    assert build(lambda x: tt.max(x * 2 - 5, -7) // 4) is not None
    with pytest.raises(ScheduleError, match="divides only by powers of two"):
        build(lambda x: x // 3)
    with pytest.raises(ScheduleError, match="'floormod' has no VTA ALU instruction"):
        build(lambda x: x % 4)
    with pytest.raises(ScheduleError, match="output out must be the int8 cast of a vta.acc"):
        build(lambda x: x, out_dtype="int32")


def test_new_primitives_check_their_arguments():
    A = tt.placeholder((4, 32), "int8", name="A")
    C = tt.compute((4, 32), lambda i, j: A[i, j] + 1, name="C")
    D = tt.compute((4, 32), lambda i, j: C[i, j] * 2, name="D")
    s = tt.create_schedule(D)
    with pytest.raises(ScheduleError, match="unknown scope 'texture'"):
        s[C].set_scope("texture")
    with pytest.raises(ScheduleError, match="outputs live in global memory"):
        s[D].set_scope("vta.acc")
    with pytest.raises(ScheduleError, match=r"stage D does not read A \(its readers: C\)"):
        s.cache_read(A, "vta.inp", [D])
    with pytest.raises(ScheduleError, match="scope must be one of"):
        s.cache_read(A, "global", [C])
    with pytest.raises(ScheduleError, match=r"constant extent in 1..16 .*, loop j has 32"):
        s[D].virtual_thread(s[D].axis[1])
    s[D].virtual_thread(s[D].axis[0])
    io, ii = s[C].split(s[C].axis[0], factor=2)
    AL = s.cache_read(A, "vta.inp", [C])   # after a split: the reader's loops are kept
    assert AL.name == "A.vta.inp" and s[C].leaves[:2] == (io, ii)
    assert "A.vta.inp[" in str(tt.lower(s, [A, D]))


@pytest.mark.parametrize("w,cfg", [
    (vc.VTAConv2dWorkload(1, 32, 14, 14, 32, 3, 3, 1, 1), _cfg(4, 5, 1, 1)),
    (vc.VTAConv2dWorkload(1, 48, 13, 11, 32, 3, 3, 2, 1), _cfg(3, 4, 2, 1, oc=2)),
    (vc.VTAConv2dWorkload(1, 32, 10, 10, 48, 3, 3, 1, 1), _cfg(4, 10, 1, 2, oc=2)),
    (vc.VTAConv2dWorkload(2, 32, 8, 8, 32, 3, 3, 1, 1), dict(_cfg(3, 8, 2, 1, h=2), tile_b=2)),
])
def test_tiles_that_do_not_divide_the_extents(w, cfg, monkeypatch):
    """Guards of overhanging tiles become boxes of hardware loops and zero-padded DMAs."""
    monkeypatch.setattr(vc, "_check", lambda *a, **k: None)  # the template wants divisors
    f = vc.build(w, cfg)
    args, out, expect = _conv_args(w)
    f(*args, out, order="random")
    assert np.array_equal(vc.unpack_output(out), expect)
