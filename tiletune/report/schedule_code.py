"""A record's workload, display name and winning schedule as pasteable Python.

Shared by ``tiletune records best`` and ``tiletune report`` (the report package sits below
the CLI, so the CLI imports these from here).
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

from tiletune.errors import RecordsError

if TYPE_CHECKING:
    from tiletune.tuner.records.store import Record

_TASKS: dict[str, Any] = {}


def kernel_name(name: str) -> str:
    """A symbol-safe kernel name from a workload name (``resnet18:3`` -> ``resnet18_3``)."""
    return re.sub(r"\W+", "_", name).strip("_") or "kernel"


def task_of(rec: Record) -> Any | None:
    """The harness Task a record was measured for (None if its template is unknown here)."""
    key = rec["workload"]
    if key not in _TASKS:
        from tiletune.tuner.targets.registry import load_targets
        from tiletune.tuner.templates.task import Task, parse_workload_key

        try:
            name, targs, target = parse_workload_key(key)
            load_targets()
            _TASKS[key] = Task(name, targs, target)
        except Exception:  # noqa: BLE001 - an unknown template: show what we can
            _TASKS[key] = None
    return _TASKS[key]


def display_name(rec: Record) -> str:
    """``resnet18:3`` / ``dense:64,64,64`` when the task is known, else the key."""
    from tiletune.tuner.session.workloads import find_by_template

    task = task_of(rec)
    if task is None:
        return rec["workload"]
    wl = find_by_template(task.name, tuple(task.args), getattr(task, "target", "llvm"))
    return wl.name if wl else rec["workload"]



def when(ts: float) -> str:
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")



CALLS = {  # how to call the built kernel, per template (shown as a comment)
    "conv2d_nchwc": "f(data, {mod}.pack_weight(weight_oihw, {cfg}), out)  # data NCHW -> "
                    "out NCHW",
    "dense": "f(A, B, C)  # C = A @ B",
    "depthwise_conv2d": "f(data, weight, out)  # weight C x R x R",
}


def python_for(rec: Record, suffix: str = "") -> tuple[set[str], list[str]]:
    """Imports and code lines that rebuild the record's schedule and kernel."""
    import dataclasses

    from tiletune.tuner.records.store import record_cost
    from tiletune.tuner.targets.llvm import LIBRARY

    task = task_of(rec)
    if task is None:
        raise RecordsError(f"cannot rebuild workload {rec['workload']!r}: its template is "
                              "unknown to this tiletune")
    name, cost, flop = display_name(rec), record_cost(rec), float(task.flop)
    w, cfg, f = f"w{suffix}", f"config{suffix}", f"f{suffix}"
    target = getattr(task, "target", "llvm")
    build = f"{f} = tt.build(s, args, target={target!r}, name={kernel_name(name)!r})"
    head = [f"# {name}: {rec['workload']}",
            f"# best of the records: {cost * 1e3:.4f} ms"
            + (f", {flop / cost / 1e9:.1f} GFLOP/s" if flop else "")
            + f", config index {rec.get('index')}, {rec.get('tuner') or '?'} "
              f"(seed {rec.get('seed')}), {when(rec.get('timestamp') or 0)}"]
    if task.name in LIBRARY:
        module, cls = LIBRARY[task.name]
        mod = module.__name__.rsplit(".", 1)[-1]
        fields = [fl.name for fl in dataclasses.fields(cls)]
        argtext = ", ".join(f"{k}={v!r}" for k, v in zip(fields, task.args))
        imports = {"import tiletune as tt", f"from tiletune.schedules import {mod}"}
        body = [f"{w} = {mod}.{cls.__name__}({argtext})",
                f"{cfg} = {dict(rec['config'])!r}",
                f"s, args = {mod}.schedule({w}, {cfg})  # tt.placeholder/compute + the "
                "schedule primitives",
                "print(tt.lower(s, args))  # the loop nest", build]
        call = CALLS.get(task.name)
        if call:
            body.append("# call: " + call.replace("f(", f"{f}(", 1).format(mod=mod, cfg=cfg))
    else:  # any other registered template: rebuild through its Task
        imports = {"import tiletune as tt", "from tiletune.tuner.templates.task import Task"}
        body = [f"task{suffix} = Task({task.name!r}, {tuple(task.args)!r}, target={target!r})",
                f"s, args = task{suffix}.instantiate({dict(rec['config'])!r})",
                "print(tt.lower(s, args))  # the loop nest", build]
    return imports, head + body


