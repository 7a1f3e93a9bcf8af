"""The autotuner core: config spaces, measurement records, cost models, search and tuners."""

from .cost_model import CostModel, make_cost_model, xgboost_available
from .result import ERROR_CLASSES, MeasureInput, MeasureResult, TuneSummary
from .tuner import Tuner

__all__ = [
    "ERROR_CLASSES", "CostModel", "MeasureInput", "MeasureResult", "TuneSummary", "Tuner",
    "make_cost_model", "xgboost_available",
]
