"""Schedule -> loop-nest IR: inline, infer bounds, build the nest, then run the pass list."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tiletune.compiler.bounds import infer_regions, inline_bodies
from tiletune.compiler.loop_nest import NestBuilder
from tiletune.compiler.passes.pipeline import Pass, pipeline
from tiletune.errors import LoweringError, ScheduleError
from tiletune.ir.attach import describe
from tiletune.ir.functor import collect
from tiletune.ir.schedule import Schedule
from tiletune.ir.stmt import Buffer, PrimFunc, Store
from tiletune.ir.tensor import PlaceholderOp, Tensor


def _arg_buffers(sch: Schedule, args: Sequence[Tensor]) -> dict:
    bufs: dict = {}
    names: set[str] = set()
    for t in args:
        if not isinstance(t, Tensor):
            raise LoweringError(f"kernel arguments must be tensors, got {t!r}")
        if t.op in bufs:
            raise LoweringError(f"tensor {t.name} is listed twice in the arguments")
        name = t.name
        k = 1
        while name in names:
            name, k = f"{t.name}_{k}", k + 1
        names.add(name)
        bufs[t.op] = Buffer(name, t.dtype, t.shape)
    for st in sch.stages:
        if st.attach_type == "inline" and st.origin_op in bufs:
            raise ScheduleError(f"stage {st.name} is inlined but also a kernel argument")
    for op in sch.output_ops:
        if op not in bufs:
            raise LoweringError(f"output {op.name} is missing from the kernel arguments")
    return bufs


def _check_inputs(sch: Schedule, bufs: dict) -> None:
    for st in sch.stages:
        for t in st.op.input_tensors:
            if isinstance(t.op, PlaceholderOp) and t.op not in bufs:
                raise LoweringError(f"placeholder {t.name} (read by {st.name}) is missing from "
                                    f"the kernel arguments")


def loop_nest(sch: Schedule, args: Sequence[Tensor], name: str = "main") -> PrimFunc:
    """The first loop nest of a schedule (before any pass)."""
    if not isinstance(sch, Schedule):
        raise LoweringError(f"lower takes a Schedule (tt.create_schedule), got {sch!r}")
    args = list(args)
    bufs = _arg_buffers(sch, args)
    _check_inputs(sch, bufs)
    sch.check_attachments()
    bodies = inline_bodies(sch)
    regions, maps = infer_regions(sch, bodies)
    body = NestBuilder(sch, bodies, regions, maps, bufs).program()
    params = tuple(bufs[t.op] for t in args)
    written = {s.buffer.name for s in collect(body, lambda n: isinstance(n, Store))}
    outputs = [b.name for b in params if b.name in written]
    placed = {st.name: describe(st) for st in sch.stages if st.attach_type == "scope"}
    return PrimFunc(name, params, body, {"outputs": outputs, "attachments": placed})


def run_passes(func: PrimFunc, passes: list[tuple[str, Pass]],
               dump: str | os.PathLike | None = None) -> PrimFunc:
    dump = dump or os.environ.get("TILETUNE_DUMP_IR") or None
    if dump:
        d = Path(dump)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"00_{func.name}_loop_nest.txt").write_text(str(func))
    for k, (pname, p) in enumerate(passes, 1):
        func = p(func)
        if dump:
            (Path(dump) / f"{k:02d}_{func.name}_{pname}.txt").write_text(str(func))
    return func


def lower(sch: Schedule, args: Sequence[Tensor], name: str = "main", *,
          target: str | None = None, dump: str | os.PathLike | None = None,
          simple_mode: bool = True) -> PrimFunc:
    """Lower a schedule to a loop nest.

    With ``target=None`` only the readable front passes run (what a user wants to read);
    ``target="llvm"`` runs the whole CPU pipeline. ``dump=dir`` (or ``TILETUNE_DUMP_IR``)
    writes the IR after every pass as numbered text files. ``simple_mode`` is accepted for
    TVM compatibility: the printed loop nest is always the simple, readable one. The buffer
    of every stage computed at a loop is marked with where it landed (``# T computed at
    loop k.outer of R (moved: split k -> k.outer)``).
    """
    func = loop_nest(sch, args, name)
    passes = pipeline(target) if target else pipeline("none")
    return run_passes(func, passes, dump)
