"""Measurement records: the append-only JSON-lines store and ``apply_history_best``."""

from .apply_best import ApplyHistoryBest, UntunedWarning, apply_history_best
from .store import (
    Record,
    RecordProblem,
    RecordWriter,
    best_records,
    load_records,
    make_record,
    measured_configs,
    merge,
    record_cost,
    record_result,
    usable_cost,
)

__all__ = ["ApplyHistoryBest", "Record", "RecordProblem", "RecordWriter", "UntunedWarning",
           "apply_history_best", "best_records", "load_records", "make_record",
           "measured_configs", "merge", "record_cost", "record_result", "usable_cost"]
