"""A tuning session: tune a list of workloads under one budget (``tiletune tune``).

:mod:`.tune` (``tune_workloads``), :mod:`.run` (one workload's steps), :mod:`.results`
(what is reported), :mod:`.progress` (live reporting), :mod:`.workloads` (ops and presets).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["load_history", "transfer_history"], "..search.history"),
    **dict.fromkeys(["DEFAULT_TRIALS", "TUNERS", "TunerContext", "TunerEntry", "make_tuner",
                     "register_tuner", "xgb_plan"], "..search.registry"),
    **dict.fromkeys(["SessionSummary", "WorkloadResult"], ".results"),
    **dict.fromkeys(["CONFIRM_ROUNDS", "CONFIRM_TOP", "Job", "RunPlan", "WorkloadRun",
                     "default_index"], ".run"),
    **dict.fromkeys(["DEFAULT_RECORDS", "DEFAULT_TIME_BUDGET", "measurer_class",
                     "tune_workloads"], ".tune"),
}


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562): ``session.workloads`` alone
    (``tiletune tune --help``) need not import the records store and the search."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
