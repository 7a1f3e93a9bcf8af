"""Inlining and bound inference: the region of every stage that must be computed.

A root stage computes its whole shape. A stage computed at loop ``ivar`` of a consumer
computes only what one iteration of ``ivar`` reads: the consumer's read indices with every
loop inside ``ivar`` relaxed to its range (``symbolic_bound``). The region's extent is a
constant in the affine cases; otherwise its maximum over the outer loops is used (with guards).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tiletune.compiler.interval import bound, symbolic_bound
from tiletune.compiler.simplify import simplify
from tiletune.errors import LoweringError
from tiletune.ir.attach import effective_readers
from tiletune.ir.expr import Const, Expr, TensorRead, Var, const, max_, min_
from tiletune.ir.functor import Rewriter, collect, substitute
from tiletune.ir.schedule import Schedule, Split, Stage
from tiletune.ir.tensor import IterVar


@dataclass
class LeafMap:
    """How a stage's original axes are computed from its leaf loops."""

    extents: dict  # IterVar -> int (every iter var of the stage)
    values: dict  # root IterVar -> Expr over leaf vars (relative to the region min)
    guards: list = field(default_factory=list)  # (Expr condition, set of root IterVars)


def leaf_map(stage: Stage, root_extents: dict[IterVar, int]) -> LeafMap:
    """Extents of every loop and the value of every original axis in terms of leaf loop vars."""
    ext: dict[IterVar, int] = dict(root_extents)
    for rel in stage.relations:
        if isinstance(rel, Split):
            pe = ext[rel.parent]
            if rel.factor is not None:
                ext[rel.outer], ext[rel.inner] = -(-pe // rel.factor), rel.factor
            else:
                ext[rel.outer], ext[rel.inner] = rel.nparts, -(-pe // rel.nparts)
        else:
            ext[rel.fused] = ext[rel.outer] * ext[rel.inner]
    values: dict[IterVar, Expr] = {iv: iv.var for iv in stage.leaf_iter_vars}
    guards = []
    for rel in reversed(stage.relations):
        if isinstance(rel, Split):
            v = values[rel.outer] * ext[rel.inner] + values[rel.inner]
            values[rel.parent] = v
            if ext[rel.outer] * ext[rel.inner] != ext[rel.parent]:
                guards.append((v < ext[rel.parent], rel.parent))
        else:
            f = values[rel.fused]
            values[rel.outer] = f // ext[rel.inner]
            values[rel.inner] = f % ext[rel.inner]
    roots = list(stage.op.axis) + list(stage.op.reduce_axis)
    return LeafMap(ext, {iv: values[iv] for iv in roots}, guards)


@dataclass
class Region:
    mins: list  # Expr per data axis (absolute index of the region start)
    extents: list  # int per data axis


class _Inliner(Rewriter):
    def __init__(self, bodies: dict):
        self.bodies = bodies

    def visit_TensorRead(self, e: TensorRead) -> Expr:
        idx = tuple(self.visit(i) for i in e.indices)
        if e.tensor.op in self.bodies:
            op, body = self.bodies[e.tensor.op]
            return substitute(body, {a.var: i for a, i in zip(op.axis, idx)})
        return e if all(a is b for a, b in zip(idx, e.indices)) else TensorRead(e.tensor, idx)


def inline_bodies(sch: Schedule) -> dict[Stage, Expr]:
    """Each stage's body with every compute_inline'd producer substituted in."""
    inlined: dict = {}
    out: dict[Stage, Expr] = {}
    for st in sch.stages:
        body = _Inliner(inlined).visit(st.op.body) if inlined else st.op.body
        out[st] = body
        if st.attach_type == "inline":
            inlined[st.op] = (st.op, body)
            inlined[st.origin_op] = (st.op, body)
    return out


def infer_regions(sch: Schedule, bodies: dict[Stage, Expr]) -> tuple[dict, dict]:
    """Region (mins, extents) of every non-inlined stage, and each stage's LeafMap."""
    regions: dict[Stage, Region] = {}
    maps: dict[Stage, LeafMap] = {}
    live = [st for st in sch.stages if st.attach_type != "inline"]
    for st in reversed(live):
        if st.attach_type == "root":
            regions[st] = Region([const(0, "int64")] * len(st.op.axis),
                                 [a.extent for a in st.op.axis])
        else:
            regions[st] = _attached_region(sch, st, bodies, regions, maps)
        root_ext = {a: e for a, e in zip(st.op.axis, regions[st].extents)}
        root_ext.update({r: r.extent for r in st.op.reduce_axis})
        maps[st] = leaf_map(st, root_ext)
    return regions, maps


def absolute_values(st: Stage, region: Region, lm: LeafMap) -> dict[Var, Expr]:
    """Original axis var -> absolute index expression over leaf vars."""
    out = {}
    for a, m in zip(st.op.axis, region.mins):
        out[a.var] = m + lm.values[a]
    for r in st.op.reduce_axis:
        out[r.var] = lm.values[r] + r.lo if r.lo else lm.values[r]
    return out


def _reads(body: Expr, tensor_op) -> list[tuple]:
    hits = collect(body, lambda e: isinstance(e, TensorRead) and e.tensor.op is tensor_op)
    return [h.indices for h in hits]


def _attached_region(sch: Schedule, st: Stage, bodies, regions, maps) -> Region:
    parent, ivar = st.attach_stage, st.attach_ivar
    ppos = parent.leaf_iter_vars.index(ivar)
    pmap = maps[parent]
    relax = {iv.var: (const(0, "int64"), const(pmap.extents[iv] - 1, "int64"))
             for iv in parent.leaf_iter_vars[ppos + 1:]}
    fixed_ranges = outer_ranges(parent, ppos, maps)
    ndim = len(st.op.axis)
    los: list[list[Expr]] = [[] for _ in range(ndim)]
    his: list[list[Expr]] = [[] for _ in range(ndim)]
    for consumer in effective_readers(sch, st):
        body = bodies[consumer]
        cvals = absolute_values(consumer, regions[consumer], maps[consumer])
        crelax = dict(relax)
        if consumer is not parent:
            cm = maps[consumer]
            crelax.update({iv.var: (const(0, "int64"), const(cm.extents[iv] - 1, "int64"))
                           for iv in consumer.leaf_iter_vars})
        for idx in _reads(body, st.origin_op) + (_reads(body, st.op) if st.op is not
                                                 st.origin_op else []):
            for d, e in enumerate(idx):
                e = simplify(substitute(e, cvals))
                try:
                    lo, hi = symbolic_bound(e, crelax)
                except ValueError as exc:
                    raise LoweringError(f"compute_at of {st.name}: cannot bound index {e!r} "
                                        f"read by {consumer.name}: {exc}") from None
                los[d].append(simplify(lo))
                his[d].append(simplify(hi))
    mins, extents = [], []
    for d in range(ndim):
        if not los[d]:
            raise LoweringError(f"compute_at of {st.name}: no read found in {parent.name}")
        lo, hi = _merge(los[d], min_), _merge(his[d], max_)
        ext = simplify(hi - lo + 1)
        if not isinstance(ext, Const):
            iv = bound(ext, fixed_ranges)
            if iv.hi is None:
                raise LoweringError(f"compute_at of {st.name}: the extent {ext!r} of axis "
                                    f"{st.op.axis[d].name} is unbounded")
            ext = const(iv.hi, "int64")
        n, full = max(1, int(ext.value)), st.op.axis[d].extent
        lo_min = bound(lo, fixed_ranges).lo
        if n > full and lo_min is not None and lo_min >= 0:
            n = full  # the region overshoots the tensor; the guards skip the excess
        mins.append(lo)
        extents.append(n)
    return Region(mins, extents)


def _merge(exprs: list[Expr], op) -> Expr:
    out = exprs[0]
    for e in exprs[1:]:
        diff = simplify(e - out)
        if isinstance(diff, Const):
            if (op is min_ and diff.value < 0) or (op is max_ and diff.value > 0):
                out = e
        else:
            out = simplify(op(out, e))
    return out


def outer_ranges(parent: Stage, ppos: int, maps: dict) -> dict:
    """Ranges of the loop vars that enclose (and include) the attach point."""
    from tiletune.compiler.interval import Interval
    ranges = {}
    cur, pos = parent, ppos
    while True:
        m = maps[cur]
        for iv in cur.leaf_iter_vars[:pos + 1]:
            ranges[iv.var] = Interval(0, m.extents[iv] - 1)
        if cur.attach_type != "scope":
            return ranges
        pos = cur.attach_stage.leaf_iter_vars.index(cur.attach_ivar)
        cur = cur.attach_stage
