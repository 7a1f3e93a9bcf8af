"""The autotuner core: config spaces, measurement records, cost models, search and tuners.

A template ``fn(cfg, *args)`` defines knobs on ``cfg``; :meth:`ConfigSpace.collect` runs it to
build the space. A tuner proposes config indices, a ``measure`` function (the harness)
times them, :class:`RecordWriter` appends the results to a JSON-lines file.
"""

from .measure.local import LocalMeasurer, MeasureOption
from .measure.result import ERROR_CLASSES, MeasureInput, MeasureResult, TuneSummary
from .models.cost_model import CostModel, make_cost_model, xgboost_available
from .models.deep_gp import DeepKernelGP
from .models.features import loop_features, make_featurizer
from .models.lasso import LassoCostModel
from .models.numpy_model import NumpyCostModel
from .records.apply_best import ApplyHistoryBest, UntunedWarning, apply_history_best
from .records.store import (
    RecordProblem,
    RecordWriter,
    best_records,
    load_records,
    make_record,
    measured_configs,
    merge,
    record_result,
)
from .search.active import ActiveTuner, BootstrapEnsemble, bted_select
from .search.grid_tuner import GridSearchTuner
from .search.random_tuner import RandomTuner
from .search.sa import SimulatedAnnealing, sa_optimize
from .search.transfer import TransferTuner
from .search.tuner import Tuner
from .search.xgb_tuner import XGBTuner
from .space.config_space import ConfigEntity, ConfigSpace
from .space.knobs import (
    AnnotateEntity,
    InstantiationError,
    OtherOptionEntity,
    ReorderEntity,
    SplitEntity,
)
from .templates.registry import TEMPLATES, get_template, template
from .templates.task import Task

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
