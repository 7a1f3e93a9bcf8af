"""Schedule -> loop nest: one nest per stage, producers placed at their attach points.

For a reduction the init store sits just outside the first reduce loop of the leaf order,
inside every data loop that precedes it, and loops over the data loops that follow it::

    for io:                      # data loops before the first reduce loop: shared
      for ii: for ji: C[..] = 0  # init nest: the data loops after it
      for ko: for ii: for ki: for ji: C[..] = C[..] + A[..] * B[..]
"""
from __future__ import annotations

from tiletune.compiler.bounds import LeafMap, Region, absolute_values, outer_ranges
from tiletune.compiler.interval import Interval, bound
from tiletune.errors import LoweringError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Expr, Load, Reduce, TensorRead, as_expr, const
from tiletune.ir.functor import Rewriter, collect, substitute
from tiletune.ir.schedule import MAX_LANES, MAX_UNROLL, Schedule, Stage
from tiletune.ir.stmt import Allocate, Buffer, For, IfThenElse, Stmt, Store, seq
from tiletune.ir.tensor import IterVar

_KIND = {None: "serial", "unrolled": "unrolled", "vectorized": "vectorized",
         "parallel": "parallel", "spatial": "spatial", "virtual_thread": "serial"}


def identity(combiner: str, dtype: str) -> Expr:
    if combiner == "sum":
        return const(0, dtype)
    if dt.is_float(dtype):
        return const(float("-inf") if combiner == "max" else float("inf"), dtype)
    lo, hi = dt.int_range(dtype)
    return const(lo if combiner == "max" else hi, dtype)


def combine(combiner: str, acc: Expr, value: Expr) -> Expr:
    op = {"sum": "add", "max": "max", "min": "min"}[combiner]
    return Binary(op, acc, value)


class _Reads(Rewriter):
    """TensorRead -> Load from the tensor's buffer, relative to its region start."""

    def __init__(self, ctx: NestBuilder):
        self.ctx = ctx

    def visit_TensorRead(self, e: TensorRead) -> Expr:
        idx = tuple(self.visit(i) for i in e.indices)
        buf, mins = self.ctx.buffer_of(e.tensor)
        rel = tuple(i - m if not _is_zero(m) else i for i, m in zip(idx, mins))
        return Load(buf, rel, buf.dtype)


def _is_zero(e: Expr) -> bool:
    return getattr(e, "value", None) == 0


class NestBuilder:
    """Builds the loop nest of every stage, given inlined bodies, regions and leaf maps."""

    def __init__(self, sch: Schedule, bodies: dict, regions: dict[Stage, Region],
                 maps: dict[Stage, LeafMap], arg_buffers: dict):
        self.sch, self.bodies, self.regions, self.maps = sch, bodies, regions, maps
        self.arg_buffers = arg_buffers  # Operation -> Buffer (placeholders and args)
        self.stage_buffers: dict[Stage, Buffer] = {}
        # kernel arguments computed at a loop: each attach point writes its region into the
        # whole argument buffer, at absolute indices (as TVM does)
        self.in_place: set[Stage] = set()
        for st, reg in regions.items():
            if st.origin_op in arg_buffers:
                if st.attach_type != "root":
                    self.in_place.add(st)
                self.stage_buffers[st] = arg_buffers[st.origin_op]
            else:
                self.stage_buffers[st] = Buffer(st.name, st.op.dtype, tuple(reg.extents),
                                                _scope(st, reg))
        self.attached: dict[int, list[Stage]] = {}
        for st in regions:
            if st.attach_type == "scope":
                self.attached.setdefault(id(st.attach_ivar), []).append(st)

    def buffer_of(self, tensor) -> tuple[Buffer, list[Expr]]:
        st = self.sch.stage_map.get(tensor.op)
        if st is None:
            buf = self.arg_buffers.get(tensor.op)
            if buf is None:
                raise LoweringError(f"tensor {tensor.name} is read but is neither a kernel "
                                    f"argument nor computed by the schedule; pass it in args")
            return buf, [const(0, "int64")] * tensor.ndim
        if st.attach_type == "inline":
            raise LoweringError(f"inlined stage {st.name} read as a buffer")
        if st in self.in_place:
            return self.stage_buffers[st], [const(0, "int64")] * tensor.ndim
        return self.stage_buffers[st], self.regions[st].mins

    # ----------------------------------------------------------------- one stage
    def stage_nest(self, st: Stage) -> Stmt:
        lm, reg = self.maps[st], self.regions[st]
        absval = absolute_values(st, reg, lm)
        body = substitute(self.bodies[st], absval)
        body = _Reads(self).visit(body)
        buf = self.stage_buffers[st]
        idx = tuple(lm.values[a] for a in st.op.axis)
        if st in self.in_place:
            idx = tuple(absval[a.var] for a in st.op.axis)
        guards = list(lm.guards)
        if st.attach_type == "scope" and (st in self.in_place
                                          or not self._reads_in_bounds(st, body)):
            # the region may overshoot the tensor: skip points outside it (their reads
            # could leave their buffers, and an argument buffer's writes would); when every
            # read provably stays inside, the extra points are computed into the local
            # region harmlessly and no guard is needed
            for a in st.op.axis:
                v = absval[a.var]
                guards.append(((v >= 0) & (v < a.extent), a))
        leaves = st.leaf_iter_vars
        st._check_spatial_block(st.leaf_iter_vars, "the loop order")
        _check_inferred_extents(st, lm)
        if isinstance(body, Reduce):
            return self._reduce_nest(st, body, buf, idx, guards)
        store = Store(buf, idx, as_expr(body))
        return self._nest(st, leaves, _guard(store, guards), with_attach=True)

    def _reads_in_bounds(self, st: Stage, body: Expr) -> bool:
        parent = st.attach_stage
        ranges = outer_ranges(parent, parent.leaf_iter_vars.index(st.attach_ivar), self.maps)
        lm = self.maps[st]
        for iv in st.leaf_iter_vars:
            ranges[iv.var] = Interval(0, lm.extents[iv] - 1)
        for ld in collect(body, lambda n: isinstance(n, Load)):
            for i, n in zip(ld.indices, ld.buffer.shape):
                b = bound(i, ranges)
                if b.lo is None or b.hi is None or b.lo < 0 or b.hi >= n:
                    return False
        return True

    def _reduce_nest(self, st: Stage, red: Reduce, buf: Buffer, idx: tuple,
                     guards: list) -> Stmt:
        leaves = st.leaf_iter_vars
        first = next(i for i, iv in enumerate(leaves) if iv.kind == "reduce")
        data_guards = [g for g in guards if g[1].kind != "reduce"]
        init = Store(buf, idx, identity(red.combiner, buf.dtype))
        acc = Load(buf, idx, buf.dtype)
        update: Stmt = Store(buf, idx, combine(red.combiner, acc, red.source))
        if red.cond is not None:
            update = IfThenElse(red.cond, update)
        inner_data = [iv for iv in leaves[first:] if iv.kind != "reduce"]
        init_nest = self._nest(st, inner_data, _guard(init, data_guards), with_attach=False)
        upd_nest = self._nest(st, leaves[first:], _guard(update, guards), with_attach=True)
        return self._nest(st, leaves[:first], seq(init_nest, upd_nest), with_attach=True)

    def _nest(self, st: Stage, leaves: list[IterVar], body: Stmt, with_attach: bool) -> Stmt:
        lm = self.maps[st]
        for iv in reversed(leaves):
            if with_attach and id(iv) in self.attached:
                body = self._attach(self.attached[id(iv)], body)
            kind = _KIND[st.annotations.get(iv)]
            body = For(iv.var, const(0, "int64"), const(lm.extents[iv], "int64"), kind, body)
        return body

    def _attach(self, stages: list[Stage], body: Stmt) -> Stmt:
        order = [s for s in self.sch.stages if s in stages]
        nests = [self.stage_nest(s) for s in order]
        out = seq(*nests, body)
        for s in reversed(order):
            if s not in self.in_place:
                out = Allocate(self.stage_buffers[s], out)
        return out

    # ----------------------------------------------------------------- whole program
    def program(self) -> Stmt:
        roots = [st for st in self.sch.stages if st.attach_type == "root"]
        body = seq(*[self.stage_nest(st) for st in roots])
        for st in reversed(roots):
            if self.stage_buffers[st] not in self.arg_buffers.values():
                body = Allocate(self.stage_buffers[st], body)
        return body


STACK_LIMIT = 256 * 1024  # bytes: larger intermediates go to the heap


def _scope(st: Stage, reg: Region) -> str:
    """Where a stage's buffer lives: the stack for small ones computed at a loop, else heap."""
    if st.scope == "local":
        return "local"
    size = dt.nbytes(st.op.dtype)
    for n in reg.extents:
        size *= n
    return "local" if st.attach_type == "scope" and size <= STACK_LIMIT else "global"


def _check_inferred_extents(st: Stage, lm: LeafMap) -> None:
    """The extent limits of ``vectorize``/``unroll``, on the extents after bound inference."""
    for iv in st.leaf_iter_vars:
        ann, n = st.annotations.get(iv), lm.extents[iv]
        if ann == "vectorized" and n > MAX_LANES:
            st.fail(f"vectorize of loop {iv.name}: {n} lanes after bound inference "
                    f"(> {MAX_LANES}); split it to the vector width first")
        if ann == "unrolled" and n > MAX_UNROLL:
            st.fail(f"unroll of loop {iv.name}: extent {n} after bound inference "
                    f"(> {MAX_UNROLL}) would blow up the code; split it first")


def _guard(stmt: Stmt, guards: list) -> Stmt:
    if not guards:
        return stmt
    cond = guards[0][0]
    for g, _ in guards[1:]:
        cond = cond & g
    return IfThenElse(cond, stmt)
