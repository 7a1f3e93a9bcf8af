"""A compiled network's per-operator time profile, read from JSON (``tiletune report
--profile FILE``).

The format (what ``tiletune run MODEL.tt --profile --profile-json FILE`` is to write; a
compiled network's ``m.profile(x)`` gives the same numbers)::

    {
      "model": "resnet18.tt",                 # optional: a name for the page
      "threads": 2,                           # optional
      "operators": [                          # one entry per fused operator, any order
        {"name": "conv2d_3", "op": "conv2d", "time_ms": 1.234},
        {"name": "dense_0", "op": "dense", "time_ms": 0.051, "calls": 1},
        ...
      ]
    }

``name`` and ``time_ms`` (mean time per run of the network, >= 0) are required; ``op``
(the operator kind, used to group) and ``calls`` are optional. The report shows each
operator's share of the total and the share per operator kind.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiletune.errors import TileTuneError


class ProfileError(TileTuneError):
    """A profile file that cannot be read or does not follow the documented format."""


@dataclass(frozen=True)
class OperatorTime:
    name: str
    op: str
    time_ms: float


@dataclass(frozen=True)
class NetworkProfile:
    """Per-operator times of one compiled network."""

    source: str
    model: str
    operators: tuple[OperatorTime, ...]
    threads: int | None = None

    @property
    def total_ms(self) -> float:
        return sum(o.time_ms for o in self.operators)

    def shares(self) -> list[tuple[str, float]]:
        """(operator name, fraction of the total), largest first."""
        total = self.total_ms or 1.0
        return sorted(((o.name, o.time_ms / total) for o in self.operators),
                      key=lambda x: -x[1])

    def by_kind(self) -> list[tuple[str, float]]:
        """(operator kind, fraction of the total), largest first."""
        total = self.total_ms or 1.0
        acc: dict[str, float] = defaultdict(float)
        for o in self.operators:
            acc[o.op] += o.time_ms
        return sorted(((k, v / total) for k, v in acc.items()), key=lambda x: -x[1])

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "model": self.model, "threads": self.threads,
                "total_ms": float(f"{self.total_ms:.6g}"),
                "shares": [[n, float(f"{s:.6g}")] for n, s in self.shares()]}


def load_profile(path: str | Path) -> NetworkProfile:
    """Read and check a profile file (see the module docstring for the format)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProfileError(f"cannot read profile {path}: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"profile {path} is not JSON: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("operators"), list):
        raise ProfileError(f"profile {path} must be a JSON object with an 'operators' list "
                           "(see tiletune/report/profile.py for the format)")
    ops = []
    for i, o in enumerate(data["operators"]):
        where = f"profile {path}: operators[{i}]"
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise ProfileError(f"{where} needs a string 'name'")
        t = o.get("time_ms")
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise ProfileError(f"{where} ({o['name']}) needs a finite 'time_ms' >= 0, got {t!r}")
        ops.append(OperatorTime(o["name"], str(o.get("op") or o["name"]), float(t)))
    if not ops:
        raise ProfileError(f"profile {path} lists no operators")
    threads = data.get("threads")
    return NetworkProfile(str(path), str(data.get("model") or path.stem), tuple(ops),
                          int(threads) if isinstance(threads, int) else None)
