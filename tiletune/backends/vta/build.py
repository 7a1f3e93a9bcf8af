"""``tt.build(s, args, target="vta")``: schedule -> checked -> loop nest -> instructions.

    check_schedule   the hardware rules, before lowering (schedule_check.py)
    lower_vta        loop nest, scopes, virtual threads, SRAM plan (lower_vta.py)
    CodeGen          host loops run, innermost nests become ops (codegen.py)
    emit_program     dependency tokens, micro-op kernels, FINISH (sync.py)
    VTAModule        callable on NumPy arrays, timed in simulated cycles (module.py)

Options: ``config`` (a VTAConfig, default the Pynq-like DEFAULT_CONFIG) and ``clock_hz``
(100 MHz); the LLVM option ``codegen_opt`` is accepted and ignored. ``dump=dir`` writes the
loop nest after each pass, the annotated nest and the assembly.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tiletune.backends.vta.codegen import CodeGen, arg_kinds
from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.lower_vta import lower_vta
from tiletune.backends.vta.module import DEFAULT_CLOCK_HZ, VTAModule, dram_layout
from tiletune.backends.vta.ops import ArgInfo
from tiletune.backends.vta.schedule_check import check_schedule
from tiletune.backends.vta.sync import emit_program
from tiletune.errors import BuildError
from tiletune.ir.schedule import Schedule
from tiletune.ir.tensor import Tensor


def build_vta(sch: Schedule, args: Sequence[Tensor], name: str = "main", *,
              dump: str | os.PathLike | None = None, config: VTAConfig = DEFAULT_CONFIG,
              clock_hz: float = DEFAULT_CLOCK_HZ, **options: object) -> VTAModule:
    """Compile a schedule for the VTA simulator (see the module docstring)."""
    options.pop("codegen_opt", None)  # an LLVM option; the tuner passes it to every target
    if options:
        raise BuildError(f"unknown VTA build option(s) {sorted(options)}; "
                         "use config=VTAConfig(...), clock_hz=...")
    if not isinstance(config, VTAConfig):
        raise BuildError(f"config must be a VTAConfig, got {type(config).__name__}")
    args = list(args)
    check_schedule(sch, args, config)
    vf = lower_vta(sch, args, name, config, dump)
    kinds = arg_kinds(vf)
    params = list(vf.func.params)
    bases = dram_layout([(b.name, b.dtype, b.shape, kinds[b.uid]) for b in params], config)
    infos = [ArgInfo(b, kinds[b.uid], base) for b, base in zip(params, bases)]
    ops = CodeGen(vf, config, {i.buffer.uid: i for i in infos}).run()
    program = emit_program(ops, config)
    ir = str(vf.func)
    if dump:
        d = Path(dump)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"90_{name}_vta_annotated.txt").write_text(ir)
        (d / f"91_{name}_vta.asm").write_text(program.asm())
    outputs = {b.name for b in params if kinds[b.uid].name == "OUT"}
    return VTAModule(name, program, infos, outputs, ir, config, clock_hz, vf.plan.usage)
