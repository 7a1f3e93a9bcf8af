"""Targets: each module declares one target's templates, measurer and limits.

Every target is imported here, so this is the one list of targets (see :mod:`.registry`).
"""

from . import (  # noqa: F401  (the targets and their templates)
    llvm,
    llvm_conv_algorithms,
    llvm_graph,
    llvm_int8,
    vta,
)
from .registry import TARGETS, Target, get_target, load_targets, register_target

__all__ = ["TARGETS", "Target", "get_target", "load_targets", "register_target"]
