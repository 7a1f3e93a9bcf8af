"""Schedule primitives that rewrite the dataflow: new stages and redirected reads.

``cache_write`` and ``cache_read`` add a stage between a computation and its readers;
``rfactor`` splits a reduction into a partial-sum stage and a final one. The public entry
points (with their before/after loop nests) are the ``Schedule`` methods of the same names.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiletune.errors import ScheduleError
from tiletune.ir.attach import move_attachments
from tiletune.ir.expr import Reduce, TensorRead, Var
from tiletune.ir.functor import Rewriter, substitute
from tiletune.ir.schedule import SCOPES, Fuse, Schedule, Stage
from tiletune.ir.tensor import ComputeOp, IterVar, Tensor


def cache_write(sch: Schedule, tensor: Tensor, scope: str) -> Tensor:
    if scope not in ("local", "global"):
        raise ScheduleError(f"cache_write scope must be 'local' or 'global', got {scope!r}")
    st = sch[tensor]
    if st.relations or st.annotations or st.attach_type != "root":
        st.fail(f"cache_write of {st.name} must come before any other primitive on it")
    old = st.op
    axes = tuple(IterVar(Var(a.name + ".c"), a.lo, a.extent, "data") for a in old.axis)
    body = substitute(old.body, {a.var: b.var for a, b in zip(old.axis, axes)})
    cache_op = ComputeOp(f"{old.name}.{scope}", axes, body, old.tag, old.attrs)
    copy_body = TensorRead(cache_op.output(), tuple(a.var for a in old.axis))
    new_op = ComputeOp(old.name, old.axis, copy_body, old.tag, old.attrs)
    cache_stage = Stage(cache_op, sch)
    cache_stage.scope = scope
    old_loops = list(st.leaf_iter_vars)
    st.op = new_op
    st._reset_loops()
    sch.stage_map[new_op] = st
    sch.stage_map[cache_op] = cache_stage
    sch.stages.insert(sch.stages.index(st), cache_stage)
    matching = dict(zip(map(id, old.axis), axes))
    for iv in old_loops:
        move_attachments(sch, st, iv, cache_stage, matching.get(id(iv), iv),
                         "cache_write")
    return cache_op.output()


def cache_read(sch: Schedule, tensor: Tensor, scope: str, readers: Iterable[Any]) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise ScheduleError(f"cache_read takes a tensor, got {tensor!r}")
    if scope not in SCOPES or scope == "global":
        raise ScheduleError(f"cache_read: scope must be one of "
                            f"{', '.join(x for x in SCOPES if x != 'global')}, got {scope!r}")
    if isinstance(readers, (Tensor, Stage)):
        readers = [readers]
    stages: list[Stage] = []
    for r in readers:
        st = r if isinstance(r, Stage) else sch[r] if isinstance(r, Tensor) else None
        if st is None or st.schedule is not sch:
            raise ScheduleError(f"cache_read readers must be tensors or stages of this "
                                f"schedule, got {r!r}")
        if not any(t.op is tensor.op for t in st.op.input_tensors):
            readers_now = ", ".join(s.name for s in sch.stages if any(
                t.op is tensor.op for t in s.op.input_tensors)) or "none"
            st.fail(f"cache_read({tensor.name}): stage {st.name} does not read "
                    f"{tensor.name} (its readers: {readers_now})")
        if st not in stages:
            stages.append(st)
    if not stages:
        raise ScheduleError(f"cache_read({tensor.name}) needs at least one reader")
    names = {s.name for s in sch.stages}
    name, k = f"{tensor.name}.{scope}", 1
    while name in names:
        name, k = f"{tensor.name}.{scope}{k}", k + 1
    axes = tuple(IterVar(Var(f"ax{d}"), 0, n, "data") for d, n in enumerate(tensor.shape))
    cache_op = ComputeOp(name, axes, TensorRead(tensor, tuple(a.var for a in axes)))
    cache = cache_op.output()

    class _Redirect(Rewriter):
        def visit_TensorRead(self, e: TensorRead) -> Any:
            idx = tuple(self.visit(i) for i in e.indices)
            if e.tensor.op is tensor.op:
                return TensorRead(cache, idx)
            return e if all(a is b for a, b in zip(idx, e.indices)) else TensorRead(
                e.tensor, idx)

    for st in stages:
        old = st.op
        new_op = ComputeOp(old.name, old.axis, _Redirect().visit(old.body), old.tag,
                           old.attrs)
        st.op = new_op
        sch.stage_map[new_op] = st
    cache_stage = Stage(cache_op, sch)
    cache_stage.scope = scope
    sch.stage_map[cache_op] = cache_stage
    sch.stages.insert(min(sch.stages.index(st) for st in stages), cache_stage)
    source = sch.stage_map.get(tensor.op)
    if source is not None and source.attach_type == "scope":
        cache_stage.attach_type = "scope"
        cache_stage.attach_stage, cache_stage.attach_ivar = (source.attach_stage,
                                                             source.attach_ivar)
        cache_stage.attach_history = [f"cache_read: at the loop of {source.name}"]
    return cache


def rfactor(sch: Schedule, tensor: Tensor, axis: IterVar, factor_axis: int = 0) -> Tensor:
    st = sch[tensor]
    op = st.op
    if not isinstance(op.body, Reduce):
        st.fail(f"rfactor of {st.name}: it is not a reduction")
    iv = st._leaf(axis, "rfactor")
    if iv.kind != "reduce":
        st.fail(f"rfactor needs a reduce loop; {iv.name} is a data loop")
    data = {id(a) for a in op.axis}
    if st.annotations or any(isinstance(r, Fuse) or id(r.parent) in data
                             for r in st.relations):
        st.fail(f"rfactor of {st.name} must come before any primitive on it other than "
                f"splitting its reduce loops (its loops are rebuilt)")
    if isinstance(factor_axis, bool) or not isinstance(factor_axis, int) or not (
            0 <= factor_axis <= len(op.axis)):
        st.fail(f"rfactor factor_axis must be an int in 0..{len(op.axis)}, got {factor_axis!r}")
    red: Reduce = op.body
    # the factored loop becomes a data axis of the partial stage; the other reduce loops stay
    # reduce loops of it; the original reduce axes are recomputed from them (split relations)
    factored = IterVar(Var(f"{iv.name}.v"), 0, iv.extent, "data")
    axes = [IterVar(Var(a.name), a.lo, a.extent, "data") for a in op.axis]
    axes.insert(factor_axis, factored)
    new_of: dict[int, Any] = {id(iv): factored.var}
    kept = []
    for leaf in st.leaf_iter_vars:
        if leaf.kind == "reduce" and leaf is not iv:
            nv = IterVar(Var(leaf.name), 0, leaf.extent, "reduce")
            kept.append(nv)
            new_of[id(leaf)] = nv.var
    value = dict(new_of)
    guards = []
    for rel in reversed(st.relations):  # only reduce-loop splits remain (checked above)
        v = value[id(rel.outer)] * rel.inner.extent + value[id(rel.inner)]
        value[id(rel.parent)] = v
        if rel.outer.extent * rel.inner.extent != rel.parent.extent:
            guards.append(v < rel.parent.extent)
    mapping = {a.var: b.var for a, b in zip(op.axis, [x for x in axes if x is not factored])}
    for r in op.reduce_axis:
        mapping[r.var] = value[id(r)] + r.lo if r.lo else value[id(r)]
    source = substitute(red.source, mapping)
    cond = substitute(red.cond, mapping) if red.cond is not None else None
    for g in guards:
        cond = g if cond is None else cond & g
    if not kept:  # every reduce loop is factored out: reduce over one point
        kept.append(IterVar(Var(f"{iv.name}.unit"), 0, 1, "reduce"))
    rf_body = Reduce(red.combiner, source, tuple(kept), cond)
    rf_op = ComputeOp(f"{op.name}.rf", tuple(axes), rf_body, op.tag, op.attrs)
    rv = IterVar(Var(f"{iv.name}.v"), 0, iv.extent, "reduce")
    idx = [a.var for a in op.axis]
    idx.insert(factor_axis, rv.var)
    new_op = ComputeOp(op.name, op.axis,
                       Reduce(red.combiner, TensorRead(rf_op.output(), tuple(idx)), (rv,)),
                       op.tag, op.attrs)
    rf_stage = Stage(rf_op, sch)
    old_loops = list(st.leaf_iter_vars)
    st.op = new_op
    st._reset_loops()
    sch.stage_map[new_op] = st
    sch.stage_map[rf_op] = rf_stage
    sch.stages.insert(sch.stages.index(st), rf_stage)
    rf_loops = {id(a): b for a, b in zip(op.axis, [x for x in axes if x is not factored])}
    rf_loops[id(iv)] = factored
    rf_loops.update({id(leaf): nv for leaf, nv in zip(
        [x for x in old_loops if x.kind == "reduce" and x is not iv], kept)})
    for loop in old_loops:
        move_attachments(sch, st, loop, rf_stage, rf_loops[id(loop)], "rfactor")
    return rf_op.output()

