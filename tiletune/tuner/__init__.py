"""The autotuner core: config spaces, measurement records, cost models, search and tuners.

A template ``fn(cfg, *args)`` defines knobs on ``cfg``; :meth:`ConfigSpace.collect` runs it to
build the space. A tuner proposes config indices, a ``measure`` function (the harness)
times them, :class:`RecordWriter` appends the results to a JSON-lines file.

The public names below load their submodule on first use (PEP 562), so ``import
tiletune.tuner`` costs nothing until a name is used: the cost models pull in NumPy,
XGBoost and scikit-learn, which a measurement worker or ``tiletune --help`` never needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "LocalMeasurer": ".measure.local",
    "MeasureOption": ".measure.local",
    "ERROR_CLASSES": ".measure.result",
    "MeasureInput": ".measure.result",
    "MeasureResult": ".measure.result",
    "TuneSummary": ".measure.result",
    "CostModel": ".models.cost_model",
    "make_cost_model": ".models.cost_model",
    "xgboost_available": ".models.cost_model",
    "DeepKernelGP": ".models.deep_gp",
    "loop_features": ".models.features",
    "make_featurizer": ".models.features",
    "LassoCostModel": ".models.lasso",
    "NumpyCostModel": ".models.numpy_model",
    "ApplyHistoryBest": ".records.apply_best",
    "UntunedWarning": ".records.apply_best",
    "apply_history_best": ".records.apply_best",
    "RecordProblem": ".records.store",
    "RecordWriter": ".records.store",
    "best_records": ".records.store",
    "load_records": ".records.store",
    "make_record": ".records.store",
    "measured_configs": ".records.store",
    "merge": ".records.store",
    "record_result": ".records.store",
    "ActiveTuner": ".search.active",
    "BootstrapEnsemble": ".search.active",
    "bted_select": ".search.active",
    "GridSearchTuner": ".search.grid_tuner",
    "RandomTuner": ".search.random_tuner",
    "SimulatedAnnealing": ".search.sa",
    "sa_optimize": ".search.sa",
    "TransferTuner": ".search.transfer",
    "Tuner": ".search.tuner",
    "XGBTuner": ".search.xgb_tuner",
    "ConfigEntity": ".space.config_space",
    "ConfigSpace": ".space.config_space",
    "AnnotateEntity": ".space.knobs",
    "InstantiationError": ".space.knobs",
    "OtherOptionEntity": ".space.knobs",
    "ReorderEntity": ".space.knobs",
    "SplitEntity": ".space.knobs",
    "TEMPLATES": ".templates.registry",
    "get_template": ".templates.registry",
    "template": ".templates.registry",
    "Task": ".templates.task",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
