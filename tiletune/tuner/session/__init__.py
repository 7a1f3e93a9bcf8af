"""A tuning session: tune a list of workloads under one budget (``tiletune tune``).

:mod:`.tune` (``tune_workloads``), :mod:`.run` (one workload's steps), :mod:`.results`
(what is reported), :mod:`.progress` (live reporting), :mod:`.workloads` (ops and presets).
"""

from ..search.history import load_history, transfer_history
from ..search.registry import (
    DEFAULT_TRIALS,
    TUNERS,
    TunerContext,
    TunerEntry,
    make_tuner,
    register_tuner,
    xgb_plan,
)
from .results import SessionSummary, WorkloadResult
from .run import CONFIRM_ROUNDS, CONFIRM_TOP, Job, RunPlan, WorkloadRun, default_index
from .tune import DEFAULT_RECORDS, DEFAULT_TIME_BUDGET, measurer_class, tune_workloads

__all__ = ["CONFIRM_ROUNDS", "CONFIRM_TOP", "DEFAULT_RECORDS", "DEFAULT_TIME_BUDGET",
           "DEFAULT_TRIALS", "TUNERS", "Job", "RunPlan", "SessionSummary", "TunerContext",
           "TunerEntry", "WorkloadResult", "WorkloadRun", "default_index", "load_history",
           "make_tuner", "measurer_class", "register_tuner", "transfer_history",
           "tune_workloads", "xgb_plan"]
