"""tiletune: a TVM-style tensor compiler with an autotuner.

Write an operator as a tensor expression, schedule it, lower it to a loop nest and build it
through LLVM (or for the VTA-like accelerator), then call it on NumPy arrays.
"""
from tiletune import errors
from tiletune.errors import (
    ArgumentError,
    BuildError,
    DSLError,
    FrontendError,
    GraphError,
    LoweringError,
    RecordsError,
    ScheduleError,
    TileTuneError,
    TuningError,
    UnsupportedOperatorError,
)
from tiletune.ir.schedule import Schedule, Stage, create_schedule
from tiletune.ir.tensor import (
    Tensor,
    abs,
    all,
    any,
    compute,
    const,
    exp,
    floordiv,
    floormod,
    if_then_else,
    indexdiv,
    indexmod,
    log,
    max,
    max_value,
    min,
    min_value,
    placeholder,
    reduce_axis,
    sqrt,
    sum,
    tanh,
)

__version__ = "0.1.0"


def lower(sch, args, name: str = "main", **kwargs):
    """The loop nest of a schedule (print it to read it); see ``compiler.lower.lower``."""
    from tiletune.compiler.lower import lower as _lower
    return _lower(sch, args, name, **kwargs)


def build(sch, args, target: str = "llvm", name: str = "main", **kwargs):
    """Compile a schedule to a callable Module; see ``compiler.build.build``."""
    from tiletune.compiler.build import build as _build
    return _build(sch, args, target, name, **kwargs)


def __getattr__(name: str):
    import importlib
    if name in ("runtime", "tuner", "schedules", "compiler", "backends", "graph", "frontend"):
        return importlib.import_module(f"tiletune.{name}")
    raise AttributeError(f"module 'tiletune' has no attribute {name!r}")


__all__ = ["ArgumentError", "BuildError", "DSLError", "FrontendError", "GraphError",
           "UnsupportedOperatorError", "LoweringError", "RecordsError",
           "ScheduleError", "TileTuneError", "TuningError", "Schedule", "Stage", "Tensor",
           "abs", "all", "any", "build", "compute", "const", "create_schedule", "errors", "exp",
           "floordiv", "floormod", "if_then_else", "indexdiv", "indexmod", "log", "lower", "max",
           "max_value", "min", "min_value",
           "placeholder", "reduce_axis", "sqrt", "sum", "tanh", "__version__"]
