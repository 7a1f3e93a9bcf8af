"""The measured single-core fp32 FMA peak of this CPU (GFLOP/s).

A loop of independent FMA chains on the widest vector register the host has (AVX-512: 16
lanes, 32 registers; AVX/AVX2: 8 lanes, 16 registers; else SSE: 4 lanes), as many chains as
registers minus four (enough to cover two FMA pipes times the FMA latency without spilling).
The best of five runs of ``2**20`` iterations is the peak. Used by benchmarks (fraction of
peak columns) and by ``tiletune report``.
"""
from __future__ import annotations

import ctypes
import math
import time

import llvmlite.binding as llvm

from tiletune.backends.llvm.target import create_target_machine, host, init


def vector_shape() -> tuple[int, int]:
    """(float32 lanes, vector registers) of the host's widest SIMD unit."""
    feats = host()[2].split(",")
    if "+avx512f" in feats:
        return 16, 32
    if "+avx" in feats:
        return 8, 16
    return 4, 16


def probe_ir(lanes: int, chains: int) -> str:
    """LLVM IR of ``peak(n, x)``: ``n`` iterations of ``chains`` independent vector FMAs."""
    vt = f"<{lanes} x float>"
    fma = f"@llvm.fma.v{lanes}f32"
    body = [f"  %a{c} = phi {vt} [ %init, %entry ], [ %b{c}, %loop ]" for c in range(chains)]
    body.append("  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]")
    body += [f"  %b{c} = call {vt} {fma}({vt} %a{c}, {vt} %m, {vt} %m)" for c in range(chains)]
    body += ["  %i1 = add i64 %i, 1", "  %done = icmp eq i64 %i1, %n",
             "  br i1 %done, label %exit, label %loop"]
    red = [f"  %s0 = fadd {vt} %b0, %b1"]
    red += [f"  %s{c - 1} = fadd {vt} %s{c - 2}, %b{c}" for c in range(2, chains)]
    nl = "\n"
    return f"""
declare {vt} {fma}({vt}, {vt}, {vt})
define float @peak(i64 %n, float %x) "min-legal-vector-width"="{lanes * 32}" {{
entry:
  %v = insertelement {vt} poison, float %x, i64 0
  %init = shufflevector {vt} %v, {vt} poison, <{lanes} x i32> zeroinitializer
  %m = fmul {vt} %init, %init
  br label %loop
loop:
{nl.join(body)}
exit:
{nl.join(red)}
  %r = extractelement {vt} %s{chains - 2}, i64 0
  ret float %r
}}"""


def fma_peak_gflops(iterations: int = 1 << 20, repeat: int = 5) -> float:
    """Measured single-core fp32 FMA peak in GFLOP/s (best of ``repeat`` runs)."""
    lanes, registers = vector_shape()
    chains = registers - 4
    init()
    mod = llvm.parse_assembly(probe_ir(lanes, chains))
    mod.verify()
    engine = llvm.create_mcjit_compiler(mod, create_target_machine())  # MCJIT owns it
    try:
        engine.finalize_object()
        fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64, ctypes.c_float)(
            engine.get_function_address("peak"))
        fn(1000, 0.5)
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(iterations, 0.5)
            best = min(best, time.perf_counter() - t0)
    finally:
        engine.close()
    return iterations * chains * lanes * 2 / best / 1e9
