"""Where attached stages live: following their attach loop through loop transforms.

A stage computed at loop ``ivar`` of a consumer (``compute_at``, or the cache stage of
``cache_write``) is *attached* there. When that loop is split (by factor or nparts) or tiled
the attachment moves to the outer loop, when it is fused to the fused loop, and when
``cache_write`` replaces the consumer's computation to the matching loop of the cache stage.
Every move is recorded so that ``tt.lower`` can show where a stage landed and why.

An attachment is legal when every reader of the attached stage runs inside its attach loop:
the consumer itself, or a stage attached at the same consumer at that loop or one inside it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tiletune.ir.tensor import IterVar

if TYPE_CHECKING:
    from tiletune.ir.schedule import Schedule, Stage


def index_of(leaves: list[IterVar], iv: IterVar | None) -> int:
    """Position of ``iv`` among ``leaves`` by identity, or -1."""
    for k, x in enumerate(leaves):
        if x is iv:
            return k
    return -1


def attached_at(sch: Schedule, parent: Stage, ivars: tuple[IterVar, ...]) -> list[Stage]:
    """The stages computed at one of the loops ``ivars`` of ``parent``."""
    return [st for st in sch.stages if st.attach_type == "scope" and st.attach_stage is parent
            and any(st.attach_ivar is iv for iv in ivars)]


def move_attachments(sch: Schedule, parent: Stage, old: IterVar, new_parent: Stage,
                     new: IterVar, why: str) -> None:
    """Re-attach every stage computed at loop ``old`` of ``parent`` to loop ``new``."""
    for st in attached_at(sch, parent, (old,)):
        st.attach_stage, st.attach_ivar = new_parent, new
        where = new.name if new_parent is parent else f"{new_parent.name}.{new.name}"
        st.attach_history.append(f"{why} {old.name} -> {where}")


def effective_readers(sch: Schedule, stage: Stage) -> list[Stage]:
    """The stages that read ``stage``'s buffer: consumers, looking through inlined ones."""
    out: list[Stage] = []
    todo, seen = list(sch.consumers(stage)), set()
    while todo:
        c = todo.pop(0)
        if id(c) in seen:
            continue
        seen.add(id(c))
        if c.attach_type == "inline":
            todo.extend(sch.consumers(c))
        else:
            out.append(c)
    return out


def violations(sch: Schedule, leaves_of: dict | None = None) -> list[tuple[Stage, Stage]]:
    """(attached stage, reader) pairs where the reader does not run inside the attach loop.

    ``leaves_of`` overrides the loop order of some stages (to check a reorder before it is
    applied).
    """
    leaves_of = leaves_of or {}
    out = []
    for st in sch.stages:
        if st.attach_type != "scope":
            continue
        parent = st.attach_stage
        pleaves = leaves_of.get(parent, parent.leaf_iter_vars)
        ppos = index_of(pleaves, st.attach_ivar)
        for c in effective_readers(sch, st):
            if c is parent:
                continue
            inside = (c.attach_type == "scope" and c.attach_stage is parent
                      and index_of(pleaves, c.attach_ivar) >= ppos >= 0)
            if not inside:
                out.append((st, c))
    return out


def describe(st: Stage) -> str:
    """Where an attached stage is computed, and how it got there (for the printed IR)."""
    text = f"{st.name} computed at loop {st.attach_ivar.name} of {st.attach_stage.name}"
    if st.attach_history:
        text += f" (moved: {'; '.join(st.attach_history)})"
    return text
