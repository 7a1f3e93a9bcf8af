"""The LLVM CPU backend: lowered PrimFunc -> LLVM IR text -> MCJIT -> runtime.Module.

    build(func, opt_level=3, codegen_opt=3, target="llvm") -> tiletune.runtime.Module

``opt_level`` is LLVM's IR pipeline level (0 = no passes), ``codegen_opt`` the machine code
generator's level; they are independent (pipeline 0 + codegen 1 compiles 3-6x faster and is
as fast when the IR is already vectorised). ``target`` may name another x86-64 CPU
(``"llvm -mcpu=haswell -mattr=+avx2"``, see ``cpu_target.py``): the code runs here when the
host has its features, otherwise the Module only exports (``cross.py``).
"""
from __future__ import annotations

from tiletune.backends.llvm.codegen import KernelIR, generate, written_params
from tiletune.backends.llvm.cpu_target import describe, missing_on_host, parse_target
from tiletune.backends.llvm.jit import JitCode
from tiletune.errors import BuildError
from tiletune.ir import dtype as dt
from tiletune.ir.stmt import PrimFunc
from tiletune.runtime.info import ArgSpec, KernelInfo
from tiletune.runtime.module import Module

__all__ = ["KernelIR", "build", "generate", "kernel_info"]


def kernel_info(func: PrimFunc, kernel: KernelIR, **extra: object) -> KernelInfo:
    """The runtime's view of ``func``. Outputs: ``attrs["outputs"]`` plus every parameter the
    body stores to (a written buffer must never be a read-only or aliased array)."""
    outputs = set(func.attrs.get("outputs") or ()) | set(written_params(func))
    args = []
    for b in func.params:
        if dt.lanes(b.dtype) != 1 or dt.element(b.dtype) not in dt.SCALARS:
            raise BuildError(f"parameter {b.name} has dtype {b.dtype}; parameters must have a "
                             "scalar dtype")
        try:
            shape = tuple(int(s) for s in b.shape)
        except TypeError as exc:
            raise BuildError(f"parameter {b.name} has a non-constant shape {b.shape}") from exc
        args.append(ArgSpec(b.name, b.dtype, shape, b.name in outputs))
    return KernelInfo(func.name, kernel.symbol, tuple(args), kernel.time_symbol,
                      kernel.threads_symbol, kernel.parallel, "", "llvm",
                      {**describe(None), **extra})


def build(func: PrimFunc, *, opt_level: int = 3, codegen_opt: int = 3,
          target: str = "llvm") -> Module:
    """Compile a lowered PrimFunc for this CPU (or the one ``target`` names)."""
    for name, v in (("opt_level", opt_level), ("codegen_opt", codegen_opt)):
        if not isinstance(v, int) or not 0 <= v <= 3:
            raise BuildError(f"{name} must be 0, 1, 2 or 3, got {v!r}")
    cpu = parse_target(target)
    cpu_target = None if cpu.is_host else cpu
    kernel = generate(func)
    missing = missing_on_host(cpu) if cpu_target else []
    if missing:
        from tiletune.backends.llvm.cross import CrossCode

        code = CrossCode(kernel, opt_level, codegen_opt, cpu, missing, ir_text=func.__str__)
    else:
        code = JitCode(kernel, opt_level, codegen_opt, ir_text=func.__str__,
                       cpu_target=cpu_target)
    where = {} if cpu_target is None else {**describe(cpu_target), "target": cpu.text}
    info = kernel_info(func, kernel, opt_level=opt_level, codegen_opt=codegen_opt, **where)
    return Module(code, info)
