"""The target registry: per target, its templates (by operator), measurer and limits.

A target module (``targets/llvm.py``, ``targets/vta.py``) declares everything about its
target in one place, with real imports::

    LLVM = register_target("llvm", measurer=LocalMeasurer, dtype="float32")

    @LLVM.op("dense", aliases=("matmul",))
    @template("dense", inputs=..., reference=...)
    def dense_template(cfg, M, N, K, dtype="float32"): ...

``@TARGET.op(name)`` makes the template the one ``tiletune tune --op name`` uses on that
target; ``unsupported=fn`` gives ``fn(*template_args) -> str | None``, why a shape cannot run
there (e.g. VTA and a 3-channel convolution). ``targets/__init__.py`` imports every target
module, so the registry is complete once :func:`load_targets` ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import TuningError

Unsupported = Callable[..., "str | None"]


@dataclass(frozen=True)
class OpTemplate:
    """The template an operator uses on a target, and why a shape may not run there."""

    template: str
    unsupported: Unsupported | None = None

    def unsupported_reason(self, *args: Any) -> str | None:
        return None if self.unsupported is None else self.unsupported(*args)


@dataclass
class Target:
    """A compilation target as the tuner sees it.

    ``measurer(task, option, seed=...)`` is a context manager measuring config indices
    (``measure(indices) -> [MeasureResult]``); ``dtype`` is the operators' default dtype.
    """

    name: str
    measurer: type
    dtype: str = "float32"
    ops: dict[str, OpTemplate] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # short name -> template name

    def op(self, name: str, *, unsupported: Unsupported | None = None,
           aliases: tuple[str, ...] = ()) -> Callable[[Any], Any]:
        """Decorator (above ``@template``): the template implements op ``name`` here."""
        def register(fn: Any) -> Any:
            tname = getattr(fn, "template_name", None)
            if not isinstance(tname, str):
                raise TuningError(f"{self.name}.op({name!r}) must decorate a registered "
                                  f"template (put it above @template), got {fn!r}")
            self.ops[name] = OpTemplate(tname, unsupported)
            for alias in (name, *aliases):
                self.aliases.setdefault(alias, tname)
            return fn
        return register

    def template_of(self, op: str) -> OpTemplate:
        try:
            return self.ops[op]
        except KeyError:
            have = ", ".join(t for t, tg in TARGETS.items() if op in tg.ops) or "none"
            raise TuningError(f"op {op!r} has no template for target {self.name!r} "
                              f"(available for: {have})") from None


#: target name -> Target, filled by the target modules (see :func:`load_targets`).
TARGETS: dict[str, Target] = {}


def register_target(name: str, measurer: type, dtype: str = "float32") -> Target:
    """A new target ``name`` (its templates register with ``@target.op(...)``)."""
    if name in TARGETS:
        raise TuningError(f"target {name!r} is registered twice")
    TARGETS[name] = target = Target(name, measurer, dtype)
    return target


def load_targets() -> dict[str, Target]:
    """Every target of the library, registered (imports ``tiletune.tuner.targets``)."""
    from .. import targets  # noqa: F401  (imports every target module)

    return TARGETS


def get_target(name: str | None) -> Target:
    """The target named by ``name`` (its first word: ``"llvm -mcpu=..."`` is llvm)."""
    words = (name or "").split()
    base = words[0] if words else "llvm"
    target = load_targets().get(base)
    if target is None:
        raise TuningError(f"unknown target {name!r}; expected one of {', '.join(TARGETS)}")
    return target


def template_aliases() -> dict[str, str]:
    """Short names accepted for templates (``conv2d`` -> the llvm conv2d template): the
    default target's op names and declared aliases."""
    return dict(get_target("llvm").aliases)
