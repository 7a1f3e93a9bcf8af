"""Tuning templates: the ``@template`` registry and :class:`Task` (template + args +
target). The templates themselves live with their target in ``tuner/targets/``."""

from .registry import TEMPLATES, get_template, template
from .task import Task

__all__ = ["TEMPLATES", "Task", "get_template", "template"]
