"""``tt.build``: lower a schedule, run the target's pass list and generate code."""
from __future__ import annotations

import os
from collections.abc import Sequence

from tiletune.compiler.lower import loop_nest, run_passes
from tiletune.compiler.passes.pipeline import pipeline
from tiletune.errors import BuildError
from tiletune.ir.schedule import Schedule
from tiletune.ir.tensor import Tensor

TARGETS = ("llvm", "vta")


def build(sch: Schedule, args: Sequence[Tensor], target: str = "llvm", name: str = "main", *,
          opt_level: int = 3, dump: str | os.PathLike | None = None, **options):
    """Compile a schedule to a callable ``runtime.Module``.

    ``target``: "llvm" (the host CPU), "llvm -mcpu=NAME -mattr=+f,-g" (another x86-64 CPU:
    runs here if the host has its features, else export only; see
    ``backends/llvm/cpu_target.py``) or "vta" (the accelerator simulator).
    ``opt_level``: LLVM optimisation level of the IR pipeline (0-3).
    """
    words = str(target).split()
    kind = words[0] if words else ""
    if kind not in TARGETS:
        raise BuildError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    if kind == "vta" and len(words) > 1:
        raise BuildError(f"target {target!r}: vta takes no options (configure it with "
                         "config=VTAConfig(...))")
    if not name.isidentifier():
        raise BuildError(f"kernel name {name!r} must be an identifier")
    if kind == "vta":
        from tiletune.backends.vta.build import build_vta
        return build_vta(sch, args, name=name, dump=dump, **options)
    func = run_passes(loop_nest(sch, args, name), pipeline("llvm"), dump)
    from tiletune.backends.llvm import build as llvm_build
    return llvm_build(func, opt_level=opt_level, target=str(target), **options)
