"""Compiling many kernels in one process must not grow memory (tuner workload)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from tiletune.backends.llvm import build
from tiletune.ir.expr import Binary, Broadcast, Const, Load, Ramp, Var
from tiletune.ir.stmt import Buffer, For, PrimFunc, Store


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def kernel(k: int) -> PrimFunc:
    """A distinct small kernel per k: B = A * k + (k % 7), some parallel."""
    n = 256
    A, B = Buffer("A", "float32", (n,)), Buffer("B", "float32", (n,))
    i = Var("i")
    idx = Ramp(Binary("mul", i, Const(16, "int64")), Const(1, "int64"), 16)
    val = Binary("add", Binary("mul", Load(A, (idx,), "float32x16"),
                               Broadcast(Const(float(k), "float32"), 16)),
                 Broadcast(Const(float(k % 7), "float32"), 16))
    kind = "parallel" if k % 3 == 0 else "serial"
    return PrimFunc(f"k{k}", (A, B), For(i, Const(0, "int64"), Const(n // 16, "int64"), kind,
                                         Store(B, (idx,), val)))


@pytest.mark.timeout(60)
def test_rss_growth_over_300_kernels():
    a = np.arange(256, dtype=np.float32)
    b = np.zeros(256, np.float32)
    for k in range(40):  # warm-up: allocator pools, caches, libgomp threads
        m = build(kernel(k))
        m(a, b)
        m.close()
    gc.collect()
    before = rss_mb()
    for k in range(40, 340):
        m = build(kernel(k))
        m(a, b)
        np.testing.assert_allclose(b[:3], a[:3] * k + k % 7)
        if k % 2:
            m.close()  # the other half is freed by garbage collection
        del m
    gc.collect()
    growth = rss_mb() - before
    assert growth < 30, f"RSS grew {growth:.1f} MB over 300 kernels"
