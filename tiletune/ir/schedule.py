"""Schedules: stages, iteration-variable relations and the primitives that reshape loop nests.

A ``Schedule`` holds one ``Stage`` per compute operation. A stage starts with one loop per
axis (data axes, then reduce axes) and each primitive rewrites its *leaf* loops, recording a
relation (split / fuse) from which the lowering recomputes the original indices. Every
primitive checks its arguments when called and raises ``ScheduleError`` showing the stage's
current loop order.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tiletune.errors import ScheduleError
from tiletune.ir.attach import index_of, move_attachments, violations
from tiletune.ir.expr import Var
from tiletune.ir.tensor import ComputeOp, IterVar, Operation, PlaceholderOp, Tensor

ANNOTATIONS = ("unrolled", "vectorized", "parallel", "spatial", "virtual_thread")

#: Memory scopes of a stage's buffer: host memory, registers/stack, memory shared by a block
#: of threads (TVM's GPU "shared"; on a CPU an ordinary buffer, placed on the stack or heap by
#: size like "global"), and the VTA accelerator's on-chip input, weight and accumulator SRAMs
#: (see ``Stage.set_scope``).
SCOPES = ("global", "local", "shared", "vta.inp", "vta.wgt", "vta.acc")
MAX_VIRTUAL_THREADS = 16
MAX_LANES = 256  # vectorize: widest loop accepted (split to the vector width first)
MAX_UNROLL = 4096  # unroll: longest loop accepted


@dataclass(frozen=True, eq=False)
class Split:
    parent: IterVar
    outer: IterVar
    inner: IterVar
    factor: int | None
    nparts: int | None


@dataclass(frozen=True, eq=False)
class Fuse:
    outer: IterVar
    inner: IterVar
    fused: IterVar


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _positive_int(x: Any, what: str, stage: Stage) -> int:
    if isinstance(x, bool) or not isinstance(x, int) and not hasattr(x, "__index__"):
        stage.fail(f"{what} must be a positive int, got {x!r}")
    x = int(x)
    if x <= 0:
        stage.fail(f"{what} must be positive, got {x}")
    return x


class Stage:
    """The schedule of one operation: its leaf loops, their annotations and where it is computed."""

    def __init__(self, op: ComputeOp, schedule: Schedule):
        self.op = op
        self.origin_op = op
        self.schedule = schedule
        self.scope = "global"
        self._reset_loops()
        self.attach_type = "root"  # root | inline | scope
        self.attach_stage: Stage | None = None
        self.attach_ivar: IterVar | None = None
        self.attach_history: list[str] = []  # how the attach loop moved since compute_at

    def _reset_loops(self) -> None:
        self.all_iter_vars: list[IterVar] = list(self.op.axis) + list(self.op.reduce_axis)
        self.leaf_iter_vars: list[IterVar] = list(self.all_iter_vars)
        self.relations: list[Split | Fuse] = []
        self.annotations: dict[IterVar, str] = {}

    # ------------------------------------------------------------------ introspection
    @property
    def name(self) -> str:
        return self.op.name

    @property
    def axis(self) -> tuple[IterVar, ...]:
        """The operation's original data axes."""
        return tuple(self.op.axis)

    @property
    def reduce_axis(self) -> tuple[IterVar, ...]:
        return tuple(self.op.reduce_axis)

    @property
    def leaves(self) -> tuple[IterVar, ...]:
        return tuple(self.leaf_iter_vars)

    def loop_order(self) -> str:
        parts = []
        for iv in self.leaf_iter_vars:
            ann = self.annotations.get(iv)
            tag = f"{iv.name}({iv.extent}{', ' + ann if ann else ''})"
            parts.append(("~" if iv.kind == "reduce" else "") + tag)
        return " ".join(parts)

    def fail(self, msg: str) -> None:
        raise ScheduleError(f"{msg}\n  stage {self.name}, loops outermost first "
                            f"(~ marks reduce loops): {self.loop_order()}")

    def __repr__(self) -> str:
        return f"Stage({self.name}: {self.loop_order()})"

    def _leaf(self, iv: Any, what: str) -> IterVar:
        if not isinstance(iv, IterVar):
            self.fail(f"{what}: expected an axis of stage {self.name}, got {iv!r}")
        if iv in self.leaf_iter_vars:
            return iv
        if iv in self.all_iter_vars:
            self.fail(f"{what}: axis {iv.name} was already split or fused; use the axes that "
                      f"replaced it")
        owner = self.schedule._owner(iv)
        where = f"it belongs to stage {owner.name}" if owner else "it belongs to no stage"
        self.fail(f"{what}: axis {iv.name} is not a loop of stage {self.name} ({where})")
        raise AssertionError

    def _new_iv(self, name: str, extent: int, kind: str) -> IterVar:
        iv = IterVar(Var(name), 0, extent, kind)
        self.all_iter_vars.append(iv)
        return iv

    def _check_not_inlined(self, what: str) -> None:
        if self.attach_type == "inline":
            self.fail(f"{what}: stage {self.name} is inlined and has no loops")

    # ------------------------------------------------------------------ loop primitives
    def split(self, parent: IterVar, factor: int | None = None,
              nparts: int | None = None) -> tuple[IterVar, IterVar]:
        """Split a loop into an outer and an inner loop (a factor need not divide the extent).

        Before: ``for i in range(100): body(i)``
        After ``split(i, factor=32)``::

            for i_outer in range(4):
              for i_inner in range(32):
                if i_outer * 32 + i_inner < 100: body(i_outer * 32 + i_inner)

        Attachments: a stage computed at ``i`` moves to ``i_outer`` (it then computes what
        one ``i_outer`` iteration needs), which is always legal.
        """
        self._check_not_inlined("split")
        parent = self._leaf(parent, "split")
        if (factor is None) == (nparts is None):
            self.fail("split takes exactly one of factor= or nparts=")
        if factor is not None:
            factor = _positive_int(factor, "split factor", self)
            outer_ext, inner_ext = _ceil_div(parent.extent, factor), factor
        else:
            nparts = _positive_int(nparts, "split nparts", self)
            outer_ext, inner_ext = nparts, _ceil_div(parent.extent, nparts)
        outer = self._new_iv(parent.name + ".outer", outer_ext, parent.kind)
        inner = self._new_iv(parent.name + ".inner", inner_ext, parent.kind)
        pos = self.leaf_iter_vars.index(parent)
        self.leaf_iter_vars[pos:pos + 1] = [outer, inner]
        self.relations.append(Split(parent, outer, inner, factor, nparts))
        move_attachments(self.schedule, self, parent, self, outer, "split")
        ann = self.annotations.pop(parent, None)
        if ann == "parallel":
            self.annotations[outer] = ann
        return outer, inner

    def tile(self, x: IterVar, y: IterVar, x_factor: int, y_factor: int
             ) -> tuple[IterVar, IterVar, IterVar, IterVar]:
        """Split two loops and order them ``xo, yo, xi, yi``.

        Before: ``for x: for y: body``
        After ``tile(x, y, 8, 16)``: ``for x.outer: for y.outer: for x.inner(8): for y.inner(16)``

        Attachments: as for ``split``, a stage computed at ``x`` moves to ``x.outer`` and one
        at ``y`` to ``y.outer``; the reorder then checks them as ``reorder`` does.
        """
        xo, xi = self.split(x, factor=x_factor)
        yo, yi = self.split(y, factor=y_factor)
        self.reorder(xo, yo, xi, yi)
        return xo, yo, xi, yi

    def fuse(self, *axes: IterVar) -> IterVar:
        """Fuse consecutive loops (outermost first) into one.

        Before: ``for i in range(4): for j in range(8): body(i, j)``
        After ``fuse(i, j)``: ``for f in range(32): body(f // 8, f % 8)``

        Attachments: a stage computed at ``i`` or ``j`` moves to ``f`` (computed once per
        fused iteration), which is always legal.
        """
        self._check_not_inlined("fuse")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        if len(axes) < 2:
            if len(axes) == 1:
                return self._leaf(axes[0], "fuse")
            self.fail("fuse needs at least one axis")
        leaves = [self._leaf(a, "fuse") for a in axes]
        pos = [self.leaf_iter_vars.index(a) for a in leaves]
        if pos != list(range(pos[0], pos[0] + len(pos))):
            self.fail(f"fuse needs consecutive loops listed outermost first, got "
                      f"{', '.join(a.name for a in leaves)}")
        kinds = {a.kind for a in leaves}
        if len(kinds) > 1:
            self.fail("fuse cannot mix data and reduce loops")
        fused = leaves[0]
        for inner in leaves[1:]:
            new = self._new_iv(f"{fused.name}.{inner.name}.fused", fused.extent * inner.extent,
                               inner.kind)
            self.relations.append(Fuse(fused, inner, new))
            move_attachments(self.schedule, self, fused, self, new, "fuse")
            move_attachments(self.schedule, self, inner, self, new, "fuse")
            p = self.leaf_iter_vars.index(fused)
            self.leaf_iter_vars[p:p + 2] = [new]
            self.annotations.pop(fused, None)
            self.annotations.pop(inner, None)
            fused = new
        return fused

    def reorder(self, *axes: IterVar) -> None:
        """Put the given loops in this order (outermost first), in the slots they occupied.

        Before: ``for i: for j: for k: body``
        After ``reorder(k, i)``: ``for k: for j: for i: body``

        Attachments stay on their loop and move with it. A reorder that would take a reader
        of an attached stage out of that stage's attach loop (a stage computed at ``j`` read
        by one computed at ``i``, when ``i`` moves outside ``j``) raises ``ScheduleError``.
        """
        self._check_not_inlined("reorder")
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        leaves = [self._leaf(a, "reorder") for a in axes]
        if len(set(map(id, leaves))) != len(leaves):
            dup = [a.name for a in leaves if leaves.count(a) > 1]
            self.fail(f"reorder lists loop {dup[0]} more than once")
        slots = sorted(self.leaf_iter_vars.index(a) for a in leaves)
        new = list(self.leaf_iter_vars)
        for slot, iv in zip(slots, leaves):
            new[slot] = iv
        self._check_spatial_block(new, "reorder")
        self._check_attachments_kept({self: new}, "reorder")
        self.leaf_iter_vars = new

    def _check_attachments_kept(self, leaves_of: dict, what: str) -> None:
        """Fail if the new loop orders ``leaves_of`` break an attachment that holds now."""
        before = {(id(a), id(b)) for a, b in violations(self.schedule)}
        for st, reader in violations(self.schedule, leaves_of):
            if (id(st), id(reader)) in before:
                continue
            where = (f"is computed at loop {reader.attach_ivar.name}" if
                     reader.attach_type == "scope" else "is computed at the root")
            self.fail(f"{what} would break an attachment: stage {st.name} is computed at loop "
                      f"{st.attach_ivar.name} of {st.attach_stage.name}, and its reader "
                      f"{reader.name} {where}, which would then run outside loop "
                      f"{st.attach_ivar.name} (new order of {self.name}: "
                      f"{' '.join(iv.name for iv in leaves_of[self])}); compute "
                      f"{reader.name} at {st.attach_ivar.name} or a loop inside it first")

    def _annotate(self, iv: IterVar, kind: str) -> None:
        self._check_not_inlined(kind)
        iv = self._leaf(iv, kind)
        old = self.annotations.get(iv)
        if old and old != kind:
            self.fail(f"loop {iv.name} is already marked {old}; it cannot also be {kind}")
        self.annotations[iv] = kind

    def unroll(self, axis: IterVar) -> None:
        """Unroll a loop completely (its extent must be constant; the copies are real).

        Before: ``for j in range(4): body(j)``
        After: ``body(0); body(1); body(2); body(3)``

        Attachments: unchanged (a stage computed at ``j`` is copied into every unrolled body).
        The extent limit is checked here for an output stage and, for any other stage, at
        lowering on the extent after bound inference (a later ``compute_at`` shrinks it).
        """
        iv = self._leaf(axis, "unroll")
        if iv.extent > MAX_UNROLL and self._extent_is_final():
            self.fail(f"unroll of loop {iv.name} with extent {iv.extent} (> {MAX_UNROLL}) "
                      f"would blow up the code; split it first")
        self._annotate(iv, "unrolled")

    def _extent_is_final(self) -> bool:
        """Are the loop extents known now? Only for outputs: they are never attached, so
        bound inference cannot shrink their loops (any other stage may be attached later)."""
        return self.origin_op in self.schedule.output_ops

    def vectorize(self, axis: IterVar) -> None:
        """Execute a data loop as SIMD lanes (constant extent).

        Before: ``for j in range(16): C[i, j] = A[i, j] + 1``
        After: ``C[i, 0:16] = A[i, 0:16] + x16(1)``

        Attachments: unchanged (a stage computed at ``j`` is computed once per lane). The lane
        limit is checked here for an output stage and for other stages at lowering, on the
        extent after bound inference (``compute_at`` of a cache stage shrinks it to the tile).
        """
        iv = self._leaf(axis, "vectorize")
        if iv.kind == "reduce":
            self.fail(f"vectorize of reduce loop {iv.name}: lanes would race on the same "
                      f"output; vectorize a data loop and unroll the reduction instead")
        if not isinstance(iv.extent, int) or iv.extent < 1:
            self.fail(f"vectorize needs a constant extent, loop {iv.name} has {iv.extent}")
        if iv.extent > MAX_LANES and self._extent_is_final():
            self.fail(f"vectorize of loop {iv.name} with {iv.extent} lanes (> {MAX_LANES}); "
                      f"split it to the vector width first")
        self._annotate(iv, "vectorized")

    def parallel(self, axis: IterVar) -> None:
        """Run the iterations of a data loop on the thread pool.

        Before: ``for i in range(64): body(i)``
        After: ``for i in parallel(64): body(i)`` (chunks of i run on different cores)

        Attachments: unchanged (each iteration computes its own copy of an attached stage).
        """
        iv = self._leaf(axis, "parallel")
        if iv.kind == "reduce":
            self.fail(f"parallel on reduce loop {iv.name} would race on the accumulator")
        self._annotate(iv, "parallel")

    def spatial_for(self, axis: IterVar) -> None:
        """Mark a loop as spatial: its iterations run at once on parallel hardware units.

        Marked loops must form the innermost block, with constant extents. On LLVM the block
        becomes SIMD lanes (innermost vectorized, the others unrolled and jammed); on VTA it
        must match the GEMM unit.

        Before: ``for c in range(16): for k in range(16): acc[k] += x[c] * w[k, c]``
        After: ``spatial_for c in (16): spatial_for k in (16): ...`` (one GEMM-unit step)

        Attachments: unchanged.
        """
        iv = self._leaf(axis, "spatial_for")
        pos = self.leaf_iter_vars.index(iv)
        after = self.leaf_iter_vars[pos + 1:]
        for other in after:
            ann = self.annotations.get(other)
            if ann not in (None, "spatial"):
                self.fail(f"spatial_for {iv.name}: loop {other.name} inside it is marked "
                          f"{ann}; spatial loops must be the innermost block")
        self._annotate(iv, "spatial")

    def _check_spatial_block(self, leaves: list[IterVar], what: str) -> None:
        seen = False
        for iv in leaves:
            if self.annotations.get(iv) == "spatial":
                seen = True
            elif seen:
                self.fail(f"{what} would put loop {iv.name} inside the spatial block; spatial "
                          f"loops must stay innermost")

    def virtual_thread(self, axis: IterVar) -> None:
        """Run the iterations of a data loop as interleaved virtual threads.

        Each iteration (thread) gets its own copy of every buffer allocated inside the loop,
        and an accelerator backend interleaves the threads' instruction streams so that one
        thread's loads overlap another's compute (VTA supports 2 threads). On the CPU the
        loop simply runs serially.

        Before::

            for co.outer in range(8):
              inp = allocate(vta.inp); load(inp); gemm(acc, inp)
        After ``vt, co_o = s[out].split(co_outer, nparts=2); s[out].virtual_thread(vt)``::

            for vt in virtual_thread(2):        # thread 0 and thread 1, interleaved
              for co.outer.inner in range(4):
                inp = allocate(vta.inp)         # one copy per thread
                load(inp); gemm(acc, inp)

        Attachments: unchanged (each thread computes its own copy of an attached stage).
        """
        iv = self._leaf(axis, "virtual_thread")
        if iv.kind == "reduce":
            self.fail(f"virtual_thread on reduce loop {iv.name}: threads would race on the "
                      f"accumulator; use a data loop")
        if not isinstance(iv.extent, int) or not 1 <= iv.extent <= MAX_VIRTUAL_THREADS:
            self.fail(f"virtual_thread needs a constant extent in 1..{MAX_VIRTUAL_THREADS} (one "
                      f"buffer copy per thread), loop {iv.name} has {iv.extent}; split it first")
        self._annotate(iv, "virtual_thread")

    def set_scope(self, scope: str) -> None:
        """Keep this stage's buffer in memory ``scope`` (one of ``SCOPES``).

        "vta.inp", "vta.wgt" and "vta.acc" are the VTA accelerator's input, weight and
        accumulator SRAMs: a stage in such a scope must be computed at a loop of its
        consumer (``compute_at``) so that only a tile of it lives on chip.

        Before: ``pad = allocate(int8[1, 2, 10, 10, 1, 16], global)``
        After ``s[pad].set_scope("vta.inp")``: ``pad = allocate(int8[...], vta.inp)``

        Attachments: unchanged.
        """
        if scope not in SCOPES:
            self.fail(f"set_scope: unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        if self.attach_type == "inline":
            self.fail(f"set_scope: stage {self.name} is inlined and has no buffer")
        if self.origin_op in self.schedule.output_ops and scope != "global":
            self.fail(f"set_scope({scope!r}) of output {self.name}: outputs live in global "
                      f"memory; compute into a cache stage in {scope} instead")
        self.scope = scope

    # ------------------------------------------------------------------ placement
    def compute_at(self, parent: Stage, axis: IterVar) -> None:
        """Compute this stage inside loop ``axis`` of its consumer ``parent``.

        Only the region the consumer needs in one iteration of ``axis`` is computed there.
        Before::

            for i: P[i] = f(i)
            for io: for ii: C[io*8+ii] = P[io*8+ii] * 2
        After ``s[P].compute_at(s[C], io)``::

            for io:
              for p in range(8): P_local[p] = f(io*8 + p)
              for ii: C[io*8+ii] = P_local[ii] * 2

        Attachments: from now on the stage follows loop ``io`` through ``split``, ``tile``,
        ``fuse``, ``reorder`` and ``cache_write`` of ``C`` (see ``tiletune.ir.attach``);
        stages attached at this stage's own loops come along with it. Every reader of the
        stage must run inside ``io`` (checked at lowering, since the readers may be attached
        after this call). ``tt.lower`` marks the stage's buffer with where it landed.
        """
        if not isinstance(parent, Stage):
            self.fail(f"compute_at takes a stage (s[T]) as parent, got {parent!r}")
        if parent is self:
            self.fail("compute_at into its own loop")
        if parent.schedule is not self.schedule:
            self.fail("compute_at into a stage of another schedule")
        ivar = parent._leaf(axis, f"compute_at({self.name} -> {parent.name})")
        if self.origin_op in self.schedule.output_ops:
            self.fail(f"compute_at of output {self.name}: outputs must stay at the root")
        if not self.schedule._reaches(self, parent):
            names = ", ".join(c.name for c in self.schedule.consumers(self)) or "nothing"
            parent.fail(f"compute_at: stage {parent.name} does not read {self.name}, directly "
                        f"or through other stages (the readers of {self.name}: {names})")
        if self.schedule._inside(parent, self):
            self.fail(f"compute_at into {parent.name}: {parent.name} is itself computed inside "
                      f"{self.name} (cycle)")
        self.attach_type, self.attach_stage, self.attach_ivar = "scope", parent, ivar
        self.attach_history = []

    def compute_root(self) -> None:
        """Undo compute_at / compute_inline: compute the whole stage before its consumers.

        Attachments: this stage's own is dropped; stages attached at its loops stay there.
        """
        self.attach_type, self.attach_stage, self.attach_ivar = "root", None, None
        self.attach_history = []

    def compute_inline(self) -> None:
        """Substitute this stage's expression into every consumer (no buffer, no loops).

        Before: ``for i: P[i] = f(i)``; ``for i: C[i] = P[i] * 2``
        After: ``for i: C[i] = f(i) * 2``

        Attachments: this stage's own is dropped; a stage attached at its loops makes this
        raise ``ScheduleError`` (the loops disappear).
        """
        if self.op.reduce_axis:
            self.fail(f"compute_inline of {self.name}: a reduction cannot be inlined")
        if self.origin_op in self.schedule.output_ops:
            self.fail(f"compute_inline of output {self.name}")
        if self.relations or self.annotations:
            self.fail(f"compute_inline of {self.name} after it was split/fused/annotated")
        for st in self.schedule.stages:
            if st.attach_stage is self:
                self.fail(f"compute_inline of {self.name}: stage {st.name} is computed at "
                          f"one of its loops")
        self.attach_type, self.attach_stage, self.attach_ivar = "inline", None, None
        self.attach_history = []


class Schedule:
    """The stages of a computation, in topological order (producers first)."""

    def __init__(self, outputs: Iterable[Tensor | Operation]):
        self.outputs = [t.output(0) if isinstance(t, Operation) else t for t in outputs]
        for t in self.outputs:
            if not isinstance(t, Tensor):
                raise ScheduleError(f"create_schedule takes tensors or their ops (C or C.op), "
                                    f"got {t!r}")
            if isinstance(t.op, PlaceholderOp):
                raise ScheduleError(f"create_schedule: output {t.name} is a placeholder; "
                                    f"there is nothing to compute")
        self.output_ops = [t.op for t in self.outputs]
        self.stages: list[Stage] = []
        self.stage_map: dict[Operation, Stage] = {}
        for op in _topo_ops(self.output_ops):
            st = Stage(op, self)
            self.stages.append(st)
            self.stage_map[op] = st

    def __getitem__(self, t: Tensor | Operation) -> Stage:
        op = t.op if isinstance(t, Tensor) else t
        if op in self.stage_map:
            return self.stage_map[op]
        if isinstance(op, PlaceholderOp):
            raise ScheduleError(f"{op.name} is a placeholder (an input); it has no stage")
        raise ScheduleError(f"{getattr(op, 'name', op)} is not computed by this schedule")

    def _owner(self, iv: IterVar) -> Stage | None:
        for st in self.stages:
            if iv in st.all_iter_vars:
                return st
        return None

    def producers(self, stage: Stage) -> list[Stage]:
        out = []
        for t in stage.op.input_tensors:
            if t.op in self.stage_map:
                out.append(self.stage_map[t.op])
        return out

    def consumers(self, stage: Stage) -> list[Stage]:
        return [st for st in self.stages if stage in self.producers(st)]

    def _reaches(self, producer: Stage, consumer: Stage) -> bool:
        """Does ``consumer`` read ``producer``'s output, directly or through other stages?"""
        todo, seen = [producer], set()
        while todo:
            for c in self.consumers(todo.pop()):
                if c is consumer:
                    return True
                if id(c) not in seen:
                    seen.add(id(c))
                    todo.append(c)
        return False

    def check_attachments(self) -> None:
        """Every reader of a stage computed at a loop must run inside that loop (lowering)."""
        for st in self.stages:
            if st.attach_type == "scope" and index_of(st.attach_stage.leaf_iter_vars,
                                                      st.attach_ivar) < 0:
                st.attach_stage.fail(f"{st.name} is computed at loop {st.attach_ivar.name}, "
                                     f"which is no longer a loop of {st.attach_stage.name}")
        for st, c in violations(self):
            st.fail(f"{st.name} is computed at loop {st.attach_ivar.name} of "
                    f"{st.attach_stage.name}, but its reader {c.name} is not computed inside "
                    f"that loop; compute_at {c.name} there too (or at a loop inside it)")

    def _inside(self, stage: Stage, root: Stage) -> bool:
        """Is ``stage`` (transitively) computed at a loop of ``root``?"""
        cur = stage
        while cur.attach_type == "scope":
            cur = cur.attach_stage
            if cur is root:
                return True
        return False

    def cache_write(self, tensor: Tensor, scope: str = "local") -> Tensor:
        """Compute ``tensor`` into a cache stage; the original stage copies the cache out.

        Before: ``for i: for k: C[i] += A[i, k]``
        After ``CL = s.cache_write(C, "local")``::

            for i: for k: CL[i] += A[i, k]
            for i: C[i] = CL[i]
        Typically followed by ``s[CL].compute_at(s[C], axis)`` to keep an accumulator tile in
        registers. ``C``'s stage keeps its axes (``C.op.axis`` still names its loops).

        Attachments: the producers computed at a loop of ``C`` are read by ``CL`` now, so
        they move to the matching loop of ``CL`` (``i`` -> ``i.c``, ``k`` -> ``k``); their
        relative order is kept, so the move is always legal.
        """
        from tiletune.ir.dataflow import cache_write
        return cache_write(self, tensor, scope)


    def cache_read(self, tensor: Tensor, scope: str, readers: Iterable[Any]) -> Tensor:
        """Read ``tensor`` through a copy in ``scope``: the ``readers`` read the copy instead.

        The readers keep their loops (splits, reorders and annotations stay valid), so
        ``cache_read`` may come after other primitives.

        Before: ``for i: for k: C[i] += A[i, k] * B[k]``
        After ``AL = s.cache_read(A, "vta.inp", [C])``::

            for i: for k: A.vta.inp[i, k] = A[i, k]
            for i: for k: C[i] += A.vta.inp[i, k] * B[k]
        Typically followed by ``s[AL].compute_at(s[C], axis)`` to copy one tile at a time
        (on VTA, a DMA load into the on-chip buffer).

        Attachments: the readers' loops are unchanged, so stages attached to them stay. If
        ``tensor``'s own stage is computed at a loop, the copy is computed at that same loop
        (just after it), where all of its readers already run.
        """
        from tiletune.ir.dataflow import cache_read
        return cache_read(self, tensor, scope, readers)

    def rfactor(self, tensor: Tensor, axis: IterVar, factor_axis: int = 0) -> Tensor:
        """Factor a reduction: partial results over reduce loop ``axis`` go to a new stage.

        Before (``ko, ki = s[B].split(k, factor=16)``)::

            for i: for ko: for ki: B[i] += A[i, ko*16 + ki]
        After ``BF = s.rfactor(B, ki)``::

            for ki.v: for i: for ko: B.rf[ki.v, i] += A[i, ko*16 + ki.v]
            for i: for ki.v: B[i] += B.rf[ki.v, i]
        ``factor_axis`` is where the factored axis goes among ``B.rf``'s axes (first by
        default). ``B.rf``'s data loops (the factored one included) can then be parallelized
        or vectorized. Only splits of reduce loops may precede it (``B``'s loops are rebuilt).

        Attachments: stages computed at ``B``'s loops read ``B.rf`` now and move to its
        matching loops (``ki`` -> ``ki.v``, other reduce loops to their copies).
        """
        from tiletune.ir.dataflow import rfactor
        return rfactor(self, tensor, axis, factor_axis)


def _topo_ops(outputs: list[Operation]) -> list[Operation]:
    order: list[Operation] = []
    seen: set[int] = set()

    def visit(op: Operation) -> None:
        if id(op) in seen:
            return
        seen.add(id(op))
        for t in op.input_tensors:
            visit(t.op)
        if isinstance(op, ComputeOp):
            order.append(op)

    for op in outputs:
        visit(op)
    return order


def create_schedule(outputs: Tensor | Operation | Iterable[Tensor | Operation]) -> Schedule:
    """A default schedule (one loop per axis, stages at the root) for the given outputs.

    Takes a tensor, its operation (``C.op``, as TVM does) or a list of either.
    """
    if isinstance(outputs, (Tensor, Operation)):
        outputs = [outputs]
    return Schedule(outputs)
