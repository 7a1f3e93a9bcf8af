"""Printed loop nests of a tiled matmul and a conv2d, against golden files."""
import tiletune as tt
from tests import ops


def tiled_matmul():
    A, B, C = ops.matmul(512, 512, 512)
    s = tt.create_schedule(C)
    i, j = s[C].axis
    (k,) = s[C].reduce_axis
    io, jo, ii, ji = s[C].tile(i, j, 32, 32)
    ko, ki = s[C].split(k, factor=4)
    s[C].reorder(io, jo, ko, ii, ki, ji)
    s[C].vectorize(ji)
    s[C].unroll(ki)
    s[C].parallel(io)
    return s, [A, B, C]


def conv():
    data, weight, P, O = ops.conv2d_nchw(1, 8, 14, 14, 16, 3, 3, 2, 1)
    s = tt.create_schedule(O)
    OL = s.cache_write(O, "local")
    n, k, h, w = s[O].axis
    ko, ki = s[O].split(k, factor=8)
    wo, wi = s[O].split(w, factor=4)
    s[O].reorder(n, ko, h, wo, ki, wi)
    s[O].parallel(ko)
    s[OL].compute_at(s[O], wo)
    s[P].compute_at(s[O], h)
    nl, kl, hl, wl = s[OL].axis
    rc, rh, rw = s[OL].reduce_axis
    s[OL].reorder(nl, hl, rc, rh, rw, wl, kl)
    s[OL].unroll(wl)
    s[OL].vectorize(kl)
    return s, [data, weight, O]


def test_tiled_matmul_golden(golden):
    s, args = tiled_matmul()
    golden("matmul_tiled.txt", str(tt.lower(s, args, "matmul")))


def test_tiled_matmul_llvm_pipeline_golden(golden):
    s, args = tiled_matmul()
    golden("matmul_tiled_lowered.txt", str(tt.lower(s, args, "matmul", target="llvm")))


def test_conv2d_golden(golden):
    s, args = conv()
    golden("conv2d.txt", str(tt.lower(s, args, "conv2d")))


def test_dump_writes_every_pass(tmp_path):
    s, args = tiled_matmul()
    tt.lower(s, args, "matmul", target="llvm", dump=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith("00_matmul_loop_nest")
    assert any("vectorize" in n for n in names) and any("unroll" in n for n in names)


def test_dump_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("TILETUNE_DUMP_IR", str(tmp_path))
    s, args = tiled_matmul()
    tt.lower(s, args, "matmul", target="llvm")
    assert len(list(tmp_path.iterdir())) >= 5
