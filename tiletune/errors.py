"""The exception hierarchy. Every error tiletune raises on bad input is a TileTuneError."""


class TileTuneError(Exception):
    """Base class of every error tiletune raises deliberately."""


class DSLError(TileTuneError):
    """An ill-formed tensor expression (dtype mix, wrong index count, truth value of an expr)."""


class ScheduleError(TileTuneError):
    """An illegal schedule primitive; raised when the primitive is called."""


class LoweringError(TileTuneError):
    """The schedule could not be lowered to a loop nest."""


class BuildError(TileTuneError):
    """Code generation or native compilation failed."""


class ArgumentError(TileTuneError):
    """A kernel was called with arguments of the wrong shape, dtype, layout or aliasing."""


class TuningError(TileTuneError):
    """The autotuner could not run (bad space, no valid configs, every trial failed...)."""


class RecordsError(TileTuneError):
    """A tuning-records file is unreadable or does not match the request."""


class VTAError(TileTuneError):
    """An instruction stream or schedule does not fit the VTA accelerator."""


class GraphError(TileTuneError):
    """An ill-formed network graph (unknown node, shape mismatch, cycle, bad attribute)."""


class FrontendError(GraphError):
    """A model file could not be imported (unreadable, malformed, unsupported)."""


class UnsupportedOperatorError(FrontendError):
    """The model uses an operator the frontend does not support (nothing was built)."""


class CompressError(TileTuneError):
    """Quantization, calibration or pruning got unusable input (no calibration data, a
    sparsity outside [0, 1), a granularity that does not divide the weight...)."""
