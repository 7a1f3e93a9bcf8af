"""Config spaces: knobs (split, reorder, annotate, other) and the space they span."""

from .config_space import ENUMERATE_LIMIT, ConfigEntity, ConfigSpace
from .knobs import (
    AnnotateEntity,
    InstantiationError,
    OtherOptionEntity,
    ReorderEntity,
    SplitEntity,
)

__all__ = ["ENUMERATE_LIMIT", "AnnotateEntity", "ConfigEntity", "ConfigSpace",
           "InstantiationError", "OtherOptionEntity", "ReorderEntity", "SplitEntity"]
