"""The FMA peak probe: host-sized vectors, no spills, a plausible figure."""
from tiletune.backends.llvm.peak import fma_peak_gflops, probe_ir, vector_shape
from tiletune.schedules.machine import host_machine


def test_probe_uses_the_host_vector_width():
    lanes, registers = vector_shape()
    m = host_machine()
    assert (lanes, registers) == (m.vector_lanes, m.vector_registers)
    text = probe_ir(lanes, registers - 4)
    assert f"<{lanes} x float>" in text and f"@llvm.fma.v{lanes}f32" in text
    assert text.count("call ") == registers - 4


def test_peak_is_positive_and_finite():
    g = fma_peak_gflops(iterations=1 << 14, repeat=2)
    assert 0.5 < g < 1e5
