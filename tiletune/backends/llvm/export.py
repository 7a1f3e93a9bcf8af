"""Ahead-of-time output: assembly, PIC objects and shared libraries with embedded metadata.

A ``.so`` is the PIC object linked by ``cc -shared`` (with ``-lgomp`` / ``-lmvec`` when used);
its metadata (arguments, entry points, loop nest, LLVM IR, assembly) is a JSON string in the
global ``__tiletune_metadata`` that ``tiletune.runtime.load_module`` reads back with ctypes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING

from tiletune.backends.llvm import target
from tiletune.backends.llvm.codegen import KernelIR
from tiletune.backends.llvm.emit import string_lit
from tiletune.backends.llvm.jit import optimized
from tiletune.errors import BuildError
from tiletune.runtime.code import export_kind
from tiletune.runtime.info import METADATA_SYMBOL, KernelInfo

if TYPE_CHECKING:
    from tiletune.backends.llvm.cpu_target import CpuTarget


def assembly(text: str, opt_level: int = 3, codegen_opt: int = 3,
             cpu_target: CpuTarget | None = None) -> str:
    tm = target.target_machine(codegen_opt, jit=False, cpu_target=cpu_target)
    return optimized(text, opt_level, codegen_opt, tm.emit_assembly, cpu_target)


def object_code(text: str, opt_level: int = 3, codegen_opt: int = 3,
                cpu_target: CpuTarget | None = None) -> bytes:
    """A position-independent ELF object for ``text`` (for the host or ``cpu_target``)."""
    tm = target.target_machine(codegen_opt, jit=False, cpu_target=cpu_target)
    return optimized(text, opt_level, codegen_opt, tm.emit_object, cpu_target)


def metadata_global(json_text: str) -> str:
    data = json_text.encode("utf-8") + b"\0"
    return (f"@{METADATA_SYMBOL} = constant [{len(data)} x i8] {string_lit(data)}, align 1\n")


def find_cc() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    raise BuildError("no C compiler (cc, gcc or clang) found to link a shared library; "
                     "export a .o instead")


def link_shared(obj: bytes, path: str, libs: tuple[str, ...] = ()) -> None:
    """``cc -shared`` the object into ``path`` (written atomically: loaded copies stay valid)."""
    out_dir = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory() as tmp:
        o = os.path.join(tmp, "kernel.o")
        with open(o, "wb") as f:
            f.write(obj)
        fd, tmp_so = tempfile.mkstemp(suffix=".so", dir=out_dir)
        os.close(fd)
        cmd = [find_cc(), "-shared", "-o", tmp_so, o] + [f"-l{lib}" for lib in libs] + ["-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            os.unlink(tmp_so)
            raise BuildError(f"linking {path} failed ({' '.join(cmd)}):\n{res.stderr.strip()}")
        os.chmod(tmp_so, 0o755)
        os.replace(tmp_so, path)


def export(path: str, kernel: KernelIR, info: KernelInfo, opt_level: int, codegen_opt: int,
           ir_text: str, cpu_target: CpuTarget | None = None) -> None:
    """Write ``path`` as .so / .o / .ll / .s according to its extension."""
    kind = export_kind(path)
    if kind == "ll":
        _write(path, kernel.text)
        return
    asm = assembly(kernel.text, opt_level, codegen_opt, cpu_target)
    if kind == "asm":
        _write(path, asm)
        return
    meta = info.to_json(ir=ir_text, sources={"ll": kernel.text, "asm": asm})
    obj = object_code(kernel.text + metadata_global(meta), opt_level, codegen_opt, cpu_target)
    if kind == "o":
        with open(path, "wb") as f:
            f.write(obj)
        return
    link_shared(obj, path, kernel.libs)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
