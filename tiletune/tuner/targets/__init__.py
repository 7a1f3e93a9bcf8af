"""Targets: each module declares one target's templates, measurer and limits.

Every target is imported here, so this is the one list of targets (see :mod:`.registry`).
"""

from . import llvm, vta  # noqa: F401  (register the llvm and vta targets)
from .registry import TARGETS, Target, get_target, load_targets, register_target

__all__ = ["TARGETS", "Target", "get_target", "load_targets", "register_target"]
