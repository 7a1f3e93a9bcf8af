"""Tuned configs for a graph build: the fastest successful record of each workload key.

The graph sits below the tuner, so it reads the records' JSON lines itself (the format is
``tiletune.tuner.records``: ``{"workload": key, "config": {...}, "costs": [...],
"error": null, ...}``); unreadable lines are skipped and counted.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

from tiletune.errors import RecordsError


def workload_key(template: str, args: tuple, target: str = "llvm") -> str:
    """``template(arg,arg,...)@target`` - the tuner's task key (``tuner.task.workload_key``)."""
    inner = ",".join(json.dumps(a, separators=(",", ":")) for a in args)
    return f"{template}({inner})@{target}"


class TunedConfigs:
    """Best config per workload key from zero or more records files."""

    def __init__(self, paths: Any = None) -> None:
        self.best: dict[str, tuple[float, dict[str, Any]]] = {}
        self.skipped = 0
        self.used: set[str] = set()
        if paths is None:
            return
        for path in [paths] if isinstance(paths, str | os.PathLike) else list(paths):
            self._read(os.fspath(path))

    def _read(self, path: str) -> None:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError as e:
            raise RecordsError(f"cannot read records {path}: {e}") from None
        for line in lines:
            try:
                rec = json.loads(line)
                key, cfg = rec["workload"], rec["config"]
                costs = rec.get("costs") or []
                if rec.get("error") is not None or not costs:
                    continue
                cost = sum(costs) / len(costs)
            except (ValueError, KeyError, TypeError):
                self.skipped += 1
                continue
            if math.isfinite(cost) and (key not in self.best or cost < self.best[key][0]):
                self.best[key] = (cost, dict(cfg))

    def get(self, template: str, args: tuple, target: str = "llvm") -> dict[str, Any] | None:
        hit = self.get_with_cost(template, args, target)
        return None if hit is None else hit[1]

    def get_with_cost(self, template: str, args: tuple, target: str = "llvm"
                      ) -> tuple[float, dict[str, Any]] | None:
        """``(mean seconds, config)`` of the best record of this task (None if untuned)."""
        key = workload_key(template, args, target)
        hit = self.best.get(key)
        if hit is None:
            return None
        self.used.add(key)
        return hit[0], dict(hit[1])

    def __len__(self) -> int:
        return len(self.best)
