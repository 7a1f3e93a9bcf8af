"""The autotuner core: config spaces, measurement records, cost models, search and tuners.

A template ``fn(cfg, *args)`` defines knobs on ``cfg``; :meth:`ConfigSpace.collect` runs it to
build the space. A tuner proposes config indices, a ``measure`` function (the harness)
times them, :class:`RecordWriter` appends the results to a JSON-lines file.
"""

from .active import ActiveTuner, BootstrapEnsemble, bted_select
from .apply_best import ApplyHistoryBest, UntunedWarning, apply_history_best
from .cost_model import CostModel, make_cost_model, xgboost_available
from .deep_gp import DeepKernelGP
from .features import loop_features, make_featurizer
from .grid_tuner import GridSearchTuner
from .knobs import (
    AnnotateEntity,
    InstantiationError,
    OtherOptionEntity,
    ReorderEntity,
    SplitEntity,
)
from .lasso import LassoCostModel
from .measure import LocalMeasurer, MeasureOption
from .numpy_model import NumpyCostModel
from .random_tuner import RandomTuner
from .records import (
    RecordProblem,
    RecordWriter,
    best_records,
    load_records,
    make_record,
    measured_configs,
    merge,
    record_result,
)
from .result import ERROR_CLASSES, MeasureInput, MeasureResult, TuneSummary
from .sa import SimulatedAnnealing, sa_optimize
from .space import ConfigEntity, ConfigSpace
from .task import Task
from .template import TEMPLATES, get_template, template
from .transfer import TransferTuner
from .tuner import Tuner
from .xgb_tuner import XGBTuner

__all__ = [
    "ERROR_CLASSES", "AnnotateEntity", "ConfigEntity", "ConfigSpace", "CostModel",
    "GridSearchTuner", "InstantiationError", "MeasureInput", "MeasureResult", "NumpyCostModel",
    "OtherOptionEntity", "RandomTuner", "RecordProblem", "RecordWriter", "ReorderEntity",
    "SimulatedAnnealing", "SplitEntity", "TuneSummary", "Tuner", "XGBTuner", "best_records",
    "load_records", "make_cost_model", "make_record", "measured_configs", "merge",
    "record_result", "sa_optimize", "xgboost_available",
]
__all__ += ["TEMPLATES", "ApplyHistoryBest", "LocalMeasurer", "MeasureOption", "Task",
            "UntunedWarning", "apply_history_best", "get_template", "loop_features",
            "make_featurizer", "template"]
__all__ += ["ActiveTuner", "BootstrapEnsemble", "DeepKernelGP", "LassoCostModel", "TransferTuner",
            "bted_select"]
