"""The host target machine (CPU name and features from LLVM), cached per option set.

Never call ``llvm.initialize()`` (it raises in llvmlite 0.50); the native target and asm
printer must be initialised, and the host CPU must be named or LLVM emits SSE2 code.
"""
from __future__ import annotations

import ctypes.util
import functools
from typing import TYPE_CHECKING

import llvmlite.binding as llvm

if TYPE_CHECKING:
    from tiletune.backends.llvm.cpu_target import CpuTarget


@functools.cache
def init() -> None:
    """Initialise LLVM's native target and assembly printer; make libc and libm visible to
    the JIT (math intrinsics become libm calls: an unresolved one would segfault)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    for lib in ("c", "m"):
        path = ctypes.util.find_library(lib)
        for name in (path, f"lib{lib}.so.6"):
            try:
                llvm.load_library_permanently(name)
                break
            except (RuntimeError, TypeError):
                continue


@functools.cache
def host() -> tuple[str, str, str]:
    """``(triple, cpu name, feature string)`` of this machine."""
    init()
    return (llvm.get_process_triple(), llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten())


def create_target_machine(opt_level: int = 3, *, jit: bool = True,
                          cpu_target: CpuTarget | None = None) -> llvm.TargetMachine:
    """A new target machine for the host, or for ``cpu_target`` (a CPU named by a target
    string). ``jit=False`` gives PIC + small code model (for ``.so``).

    A new one is needed for every MCJIT engine: the engine takes ownership of it.
    """
    triple, cpu, features = host()
    if cpu_target is not None:
        cpu, features = cpu_target.cpu, cpu_target.features
    target = llvm.Target.from_triple(triple)
    if jit:
        return target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                            reloc="default", codemodel="jitdefault", jit=True)
    return target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                        reloc="pic", codemodel="default", jit=False)


@functools.cache
def target_machine(opt_level: int = 3, *, jit: bool = True,
                   cpu_target: CpuTarget | None = None) -> llvm.TargetMachine:
    """A cached target machine (for pass pipelines, assembly and object emission)."""
    return create_target_machine(opt_level, jit=jit, cpu_target=cpu_target)


# Features checked against /proc/cpuinfo when a saved library is loaded (SIGILL guard).
_CHECKED = ("avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512dq", "avx512vl",
            "avx512cd", "avx512vnni", "avx512bf16")


def required_features() -> list[str]:
    """The subset of ``_CHECKED`` that code generated for this host may use."""
    enabled = {f[1:] for f in host()[2].split(",") if f.startswith("+")}
    return [f for f in _CHECKED if f in enabled]


@functools.cache
def libmvec_isas() -> str:
    """glibc's vector math ISA letters usable here ("b" SSE, "d" AVX2, "e" AVX-512), or ""
    when libmvec cannot be loaded into the process."""
    init()
    try:
        llvm.load_library_permanently(ctypes.util.find_library("mvec") or "libmvec.so.1")
    except (RuntimeError, TypeError):
        return ""
    if llvm.address_of_symbol("_ZGVbN4v_expf") is None:
        return ""
    features = host()[2]
    return "b" + ("d" if "+avx2" in features else "") + ("e" if "+avx512f" in features else "")


def data_layout(cpu_target: CpuTarget | None = None) -> str:
    return str(target_machine(cpu_target=cpu_target).target_data)
