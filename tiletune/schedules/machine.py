"""What the heuristics need to know about the CPU: SIMD width and register count."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    vector_lanes: int = 16  # float32 lanes of one SIMD register
    vector_registers: int = 32
    cores: int = 1

    @property
    def accumulator_budget(self) -> int:
        """Vector registers left for accumulators (a few hold operands)."""
        return self.vector_registers - 4


@functools.cache
def host_machine() -> Machine:
    """The host CPU as LLVM sees it (AVX-512: 16 lanes, 32 registers)."""
    try:
        import llvmlite.binding as llvm
        feats = llvm.get_host_cpu_features()
        if feats.get("avx512f"):
            return Machine(16, 32, os.cpu_count() or 1)
        if feats.get("avx2") or feats.get("avx"):
            return Machine(8, 16, os.cpu_count() or 1)
    except Exception:  # pragma: no cover - llvmlite always present in practice
        pass
    return Machine(4, 16, os.cpu_count() or 1)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
