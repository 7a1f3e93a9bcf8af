"""The VTA hardware rules, checked on the schedule before anything is lowered.

Every error is a ``ScheduleError`` naming the stage and the constraint, with the stage's loop
order, raised when ``tt.build(..., target="vta")`` starts:

* every intermediate stage lives on chip (``vta.inp``, ``vta.wgt``, ``vta.acc``) or is
  inlined; outputs stay global and are the int8 cast of a ``vta.acc`` stage (STORE);
* dtypes: INP and WGT hold int8, ACC int32; each on-chip stage ends in its SRAM entry shape
  (INP: BATCH x BLOCK_IN, WGT: BLOCK_OUT x BLOCK_IN, ACC: BATCH x BLOCK_OUT);
* a reduction in ``vta.acc`` is a GEMM: ``sum(int32(inp[.., b, k]) * int32(wgt[.., o, k]))``
  with the spatial block (``spatial_for``) exactly the GEMM unit: the output-vector axis
  (BLOCK_OUT), the input-vector reduce axis (BLOCK_IN) and, if BATCH > 1, the batch axis;
* on-chip copies read a kernel argument (optionally ``if_then_else(cond, x, 0)``: padding);
* other ``vta.acc`` stages use only ALU operations (+, - const, *, // 2**k, min, max);
* at most ``MAX_THREADS`` (2) virtual threads.
"""
from __future__ import annotations

from collections.abc import Sequence

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.lower_vta import VTA_SCOPES, element_shape
from tiletune.backends.vta.patterns import alu_chain
from tiletune.errors import BuildError, ScheduleError, VTAError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Cast, Const, Expr, Reduce, Select, TensorRead, Var
from tiletune.ir.functor import collect
from tiletune.ir.schedule import Schedule, Stage
from tiletune.ir.tensor import PlaceholderOp, Tensor

MAX_THREADS = 2
_ALU_OPS = ("add", "sub", "mul", "floordiv", "min", "max")


def check_schedule(sch: Schedule, args: Sequence[Tensor], config: VTAConfig) -> None:
    """Raise ScheduleError for the first rule the schedule breaks (module docstring)."""
    if not isinstance(sch, Schedule):
        raise BuildError(f"build takes a Schedule (tt.create_schedule), got {sch!r}")
    threads = 1
    for st in sch.stages:
        if st.attach_type == "inline":
            continue
        for iv, ann in st.annotations.items():
            if ann == "virtual_thread":
                threads *= iv.extent
        if st.origin_op in sch.output_ops:
            _check_output(sch, st, config)
            continue
        if st.scope not in VTA_SCOPES:
            st.fail(f"stage {st.name} is an intermediate in {st.scope} memory; on VTA it must "
                    f"live on chip (set_scope / cache_read into {', '.join(VTA_SCOPES)}) or "
                    "be inlined")
        _check_buffer(st, config)
        body = st.op.body
        if isinstance(body, Reduce):
            _check_gemm(sch, st, body, config)
        elif _copy_source(body) is not None:
            _check_copy(st, body)
        elif st.scope == "vta.acc":
            _check_alu(sch, st, body)
        else:
            st.fail(f"stage {st.name} in {st.scope} must be a copy of a kernel argument "
                    f"(a DMA load, optionally if_then_else(cond, x, 0) for padding), got "
                    f"{body!r}")
    if threads > MAX_THREADS:
        raise ScheduleError(f"the schedule uses {threads} virtual threads; VTA interleaves at "
                            f"most {MAX_THREADS} instruction streams")


def _scope_of(sch: Schedule, t: Tensor) -> str:
    if isinstance(t.op, PlaceholderOp):
        return "argument"
    return sch.stage_map[t.op].scope if t.op in sch.stage_map else "?"


def _check_buffer(st: Stage, config: VTAConfig) -> None:
    want = config.acc_dtype if st.scope == "vta.acc" else (
        config.inp_dtype if st.scope == "vta.inp" else config.wgt_dtype)
    if st.op.dtype != str(want) and not (st.scope == "vta.acc" and st.op.dtype == "int8"
                                         and _copy_source(st.op.body) is not None):
        st.fail(f"stage {st.name} in {st.scope} must be {want} (the {st.scope[4:].upper()} "
                f"SRAM holds {want} values), got {st.op.dtype}")
    shape = element_shape(config, st.scope)
    if tuple(st.op.shape[-2:]) != shape or len(st.op.shape) < 3:
        st.fail(f"stage {st.name} in {st.scope} must have shape (..., {shape[0]}, {shape[1]}): "
                f"its last two axes are one {st.scope[4:].upper()} entry; got {st.op.shape}")


def _copy_source(body: Expr) -> TensorRead | None:
    if isinstance(body, Select) and isinstance(body.b, Const) and body.b.value == 0:
        body = body.a
    if isinstance(body, Cast):
        body = body.a
    if isinstance(body, TensorRead) and isinstance(body.tensor.op, PlaceholderOp):
        return body
    return None


def _check_copy(st: Stage, body: Expr) -> None:
    src = _copy_source(body)
    assert src is not None
    axes = [a.var for a in st.op.axis]
    if not all(isinstance(i, Var) and i is a for i, a in zip(src.indices[-2:], axes[-2:])):
        st.fail(f"stage {st.name} copies {src.tensor.name} into {st.scope}: the last two "
                "indices must be the stage's last two axes (whole SRAM entries are copied)")


def _check_output(sch: Schedule, st: Stage, config: VTAConfig) -> None:
    body = st.op.body
    inner = body.a if isinstance(body, Cast) else body
    ok = (isinstance(inner, TensorRead) and _scope_of(sch, inner.tensor) == "vta.acc"
          and st.op.dtype == str(config.out_dtype))
    if not ok:
        st.fail(f"output {st.name} must be the {config.out_dtype} cast of a vta.acc stage "
                f"(STORE truncates ACC to {config.out_dtype}), got {body!r} of dtype "
                f"{st.op.dtype}")
    shape = element_shape(config, "vta.acc")
    if tuple(st.op.shape[-2:]) != shape:
        st.fail(f"output {st.name} must have shape (..., {shape[0]}, {shape[1]}), got "
                f"{st.op.shape}")


def _check_alu(sch: Schedule, st: Stage, body: Expr) -> None:
    try:
        alu_chain(body)
    except VTAError as e:
        st.fail(f"stage {st.name} in vta.acc: {e}")
    for node in collect(body, lambda n: isinstance(n, Expr)):
        if isinstance(node, Binary) and node.op not in _ALU_OPS:
            st.fail(f"stage {st.name}: '{node.op}' has no VTA ALU instruction (ALU: +, "
                    "- const, *, // 2**k, min, max)")
        if isinstance(node, TensorRead) and _scope_of(sch, node.tensor) != "vta.acc":
            st.fail(f"stage {st.name}: the ALU reads only vta.acc stages, but {node.tensor.name} "
                    f"is in {_scope_of(sch, node.tensor)} (cache_read it into vta.acc)")
        if not isinstance(node, (Binary, Const, TensorRead, Var, Cast)):
            st.fail(f"stage {st.name}: {node!r} has no VTA ALU instruction")
        if isinstance(node, Cast) and not dt.is_int(node.dtype):
            st.fail(f"stage {st.name}: the ALU works on integers, got a cast to {node.dtype}")


def _check_gemm(sch: Schedule, st: Stage, red: Reduce, config: VTAConfig) -> None:
    gemm_form = (f"sum(int32(inp[.., b, k]) * int32(wgt[.., o, k])) with inp in vta.inp and "
                 f"wgt in vta.wgt ({config.inp_dtype})")
    src = red.source
    if red.combiner != "sum" or red.cond is not None or not (
            isinstance(src, Binary) and src.op == "mul"):
        st.fail(f"stage {st.name}: a reduction on VTA is a GEMM, {gemm_form}; got {red!r}")
    reads = []
    for x in (src.a, src.b):
        if isinstance(x, Cast) and dt.element(x.dtype) == str(config.acc_dtype):
            x = x.a
        if not isinstance(x, TensorRead):
            st.fail(f"stage {st.name}: GEMM operands must be int8 tensors read directly; "
                    f"got {x!r} ({gemm_form})")
        reads.append(x)
    for x in reads:
        if x.tensor.dtype not in (str(config.inp_dtype), str(config.wgt_dtype)):
            st.fail(f"stage {st.name}: VTA's GEMM multiplies {config.inp_dtype} values into "
                    f"{config.acc_dtype}; {x.tensor.name} is {x.tensor.dtype}")
    scopes = sorted(_scope_of(sch, x.tensor) for x in reads)
    if scopes != ["vta.inp", "vta.wgt"]:
        names = ", ".join(f"{x.tensor.name} ({_scope_of(sch, x.tensor)})" for x in reads)
        st.fail(f"stage {st.name}: GEMM operands must be on chip, one in vta.inp and one in "
                f"vta.wgt (cache_read or set_scope); got {names}")
    inp, wgt = reads if _scope_of(sch, reads[0].tensor) == "vta.inp" else reads[::-1]
    k = inp.indices[-1]
    r = next((a for a in red.axes if isinstance(k, Var) and a.var is k), None)
    b_ax, o_ax = st.op.axis[-2], st.op.axis[-1]
    ok_index = (r is not None and isinstance(wgt.indices[-1], Var) and wgt.indices[-1] is k
                and isinstance(wgt.indices[-2], Var) and wgt.indices[-2] is o_ax.var
                and (config.batch == 1 or inp.indices[-2] is b_ax.var))
    unit = (f"BATCH x BLOCK_OUT x BLOCK_IN = {config.batch} x {config.block_out} x "
            f"{config.block_in}")
    if not ok_index or r.extent != config.block_in:
        st.fail(f"stage {st.name}: the GEMM unit computes acc[b, o] += inp[b, k] * wgt[o, k] "
                f"over one {unit} block: the last index of both operands must be a reduce "
                f"axis of extent {config.block_in} and wgt's second-to-last the output "
                "vector axis")
    want = {o_ax, r} | ({b_ax} if config.batch > 1 else set())
    allowed = want | {b_ax}
    spatial = {iv for iv in st.leaf_iter_vars if st.annotations.get(iv) == "spatial"}
    if not (want <= spatial <= allowed):
        got = ", ".join(f"{iv.name}({iv.extent})" for iv in st.leaf_iter_vars
                        if iv in spatial) or "none"
        need = ", ".join(f"{iv.name}({iv.extent})" for iv in
                         [b_ax, o_ax, r] if iv in want)
        st.fail(f"stage {st.name}: the spatial block must match the GEMM unit ({unit}): mark "
                f"exactly the unsplit axes {need} with spatial_for (they become one GEMM "
                f"micro-op); got {got}")
