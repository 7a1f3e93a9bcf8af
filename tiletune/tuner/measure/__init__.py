"""Measuring configs: result types, the worker-process harness (llvm), the in-process VTA
simulator measurer."""

from .local import LocalMeasurer, MeasureOption
from .result import ERROR_CLASSES, MeasureInput, MeasureResult, TuneSummary
from .vta import VTAMeasurer

__all__ = ["ERROR_CLASSES", "LocalMeasurer", "MeasureInput", "MeasureOption", "MeasureResult",
           "TuneSummary", "VTAMeasurer"]
