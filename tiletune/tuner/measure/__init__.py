"""Measuring configs: result types, the worker-process harness (llvm), the in-process VTA
simulator measurer.

Names load their module on first use (PEP 562): a measurement worker imports
``measure.worker`` and pays neither for the parent's harness nor for the VTA simulator.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "LocalMeasurer": ".local", "MeasureOption": ".local", "ERROR_CLASSES": ".result",
    "MeasureInput": ".result", "MeasureResult": ".result", "TuneSummary": ".result",
    "VTAMeasurer": ".vta",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
