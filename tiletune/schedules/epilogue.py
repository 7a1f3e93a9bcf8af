"""Fused epilogues: the element-wise chain a conv/dense kernel applies before it stores.

A graph pass folds ``conv -> [+bias] -> [+residual] -> [relu | clip]`` (in any legal order)
into one kernel; the template calls ``Epilogue.apply`` on every output element in its final
stage, so the chain costs no extra pass over memory::

    out[n, k, h, w] = conv[...]                      # before: conv, then 3 more kernels
    out[n, k, h, w] = relu(conv[...] + b[k] + r[n, k, h, w])   # after: one store

Steps are applied left to right: ``("bias",)``, ``("residual",)``, ``("relu",)``,
``("clip", lo, hi)`` (ReLU6 is ``("clip", 0.0, 6.0)``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tiletune.errors import ScheduleError
from tiletune.ir.tensor import Tensor, const
from tiletune.ir.tensor import max as tmax
from tiletune.ir.tensor import min as tmin

STEP_KINDS = ("bias", "residual", "relu", "clip")


@dataclass(frozen=True)
class Epilogue:
    """An ordered chain of element-wise steps (hashable: part of a tuning task's key)."""

    steps: tuple[tuple, ...] = ()

    def __post_init__(self) -> None:
        for step in self.steps:
            if not step or step[0] not in STEP_KINDS:
                raise ScheduleError(f"unknown epilogue step {step!r}; known: {STEP_KINDS}")
            if step[0] == "clip" and (len(step) != 3 or not step[1] <= step[2]):
                raise ScheduleError(f"clip step needs (\"clip\", lo, hi) with lo <= hi: {step!r}")
        for kind in ("bias", "residual"):
            if sum(s[0] == kind for s in self.steps) > 1:
                raise ScheduleError(f"epilogue has two {kind} steps: {self.steps!r}")

    @property
    def has_bias(self) -> bool:
        return any(s[0] == "bias" for s in self.steps)

    @property
    def has_residual(self) -> bool:
        return any(s[0] == "residual" for s in self.steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def key(self) -> str:
        """A short stable name for records and task keys, e.g. ``bias_residual_relu``."""
        return "_".join(s[0] if s[0] != "clip" else f"clip{s[1]:g}to{s[2]:g}" for s in self.steps)

    @classmethod
    def from_key(cls, key: str) -> Epilogue:
        """Inverse of :meth:`key` (``""`` is the empty epilogue)."""
        steps: list[tuple] = []
        for part in filter(None, key.split("_")):
            if part.startswith("clip"):
                lo, _, hi = part[4:].partition("to")
                try:
                    steps.append(("clip", float(lo), float(hi)))
                except ValueError:
                    raise ScheduleError(f"bad clip step {part!r} in epilogue key {key!r}"
                                        ) from None
            else:
                steps.append((part,))
        return cls(tuple(steps))

    def apply(self, value, channel, bias: Tensor | None = None,
              residual: Callable[[], object] | None = None):
        """``value`` after every step; ``channel`` indexes ``bias``; ``residual()`` reads the
        residual element at the same output position (a thunk: templates know the layout)."""
        dtype = value.dtype
        for step in self.steps:
            kind = step[0]
            if kind == "bias":
                if bias is None:
                    raise ScheduleError("epilogue has a bias step but no bias tensor was given")
                value = value + bias[channel]
            elif kind == "residual":
                if residual is None:
                    raise ScheduleError("epilogue has a residual step but no residual was given")
                value = value + residual()
            elif kind == "relu":
                value = tmax(value, const(0, dtype))
            else:
                value = tmin(tmax(value, const(step[1], dtype)), const(step[2], dtype))
        return value
