"""The template registry: ``@template(name)`` and the optional per-template hooks.

A template is ``fn(cfg, *args) -> (schedule, tensors)``: it defines knobs on ``cfg`` and,
in apply mode, builds the schedule for the chosen config (AutoTVM's style, with ``cfg``
passed explicitly)::

    @tt.tuner.template("matmul")
    def matmul(cfg, N, L, M, dtype="float32"):
        A = tt.placeholder((N, L), dtype, name="A"); ...
        s = tt.create_schedule(C)
        y, x = s[C].axis
        cfg.define_split("tile_y", y, num_outputs=2)
        yo, yi = cfg["tile_y"].apply(s[C], y)
        return s, [A, B, C]

Hooks (keyword arguments of :func:`template`, all optional) tell the measurement harness how
to feed and check the kernel. Inputs are *logical* arrays (e.g. NCHW data and OIHW weights);
a per-config ``prepare`` step turns them into the kernel's arguments (e.g. packs the weight
for this config's channel blocks), so one set of inputs and one reference serve every config:

* ``inputs(rng, *args) -> list[ndarray]``: the logical inputs (default: random arrays shaped
  like the kernel's placeholders);
* ``reference(inputs, *args) -> list[ndarray]``: the expected outputs (default: the same
  compute built with a naive schedule);
* ``prepare(config, inputs, *args) -> list[ndarray]``: kernel inputs for ``config`` (a
  knob -> value dict), one per placeholder argument (default: the logical inputs);
* ``default_config(*args) -> dict``: a heuristic config (knob -> value).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import TuningError

Template = Callable[..., Any]

#: name -> template function.
TEMPLATES: dict[str, Template] = {}


@dataclass(frozen=True)
class TemplateHooks:
    """Optional helpers of a template (see the module docstring)."""

    inputs: Callable[..., list[np.ndarray]] | None = None
    reference: Callable[..., list[np.ndarray]] | None = None
    prepare: Callable[..., list[np.ndarray]] | None = None
    default_config: Callable[..., Mapping[str, Any]] | None = None


_HOOKS: dict[str, TemplateHooks] = {}

def template(name: str, *, inputs: Callable[..., list[np.ndarray]] | None = None,
             reference: Callable[..., list[np.ndarray]] | None = None,
             prepare: Callable[..., list[np.ndarray]] | None = None,
             default_config: Callable[..., Mapping[str, Any]] | None = None
             ) -> Callable[[Template], Template]:
    """Decorator registering ``fn(cfg, *args)`` as the tuning template ``name``."""
    if not isinstance(name, str) or not name or "(" in name or "@" in name:
        raise TuningError(f"template name must be a non-empty string without '(' or '@', "
                          f"got {name!r}")

    def register(fn: Template) -> Template:
        old = TEMPLATES.get(name)
        if old is not None and old is not fn and _origin(old)[1] != _origin(fn)[1]:
            warnings.warn(f"template {name!r} ({_origin(old)[0]}.{_origin(old)[1]}) is "
                          f"replaced by {_origin(fn)[0]}.{_origin(fn)[1]}", stacklevel=2)
        TEMPLATES[name] = fn
        _HOOKS[name] = TemplateHooks(inputs, reference, prepare, default_config)
        fn.template_name = name  # type: ignore[attr-defined]
        return fn

    return register


def _origin(fn: Template) -> tuple[str, str]:
    return getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", repr(fn))


def _load_library() -> dict[str, str]:
    """Register every target's templates; the short names (aliases) of templates."""
    from ..targets.registry import template_aliases

    return template_aliases()


def get_template(name: str) -> Template:
    """The template registered as ``name`` (or an alias such as ``conv2d``)."""
    aliases = _load_library()
    fn = TEMPLATES.get(aliases.get(name, name)) if isinstance(name, str) else None
    if fn is None:
        known = ", ".join(sorted(TEMPLATES)) or "-"
        shown = ", ".join(f"{a}={t}" for a, t in aliases.items() if a != t)
        raise TuningError(f"unknown template {name!r}; known templates: {known} "
                          f"(aliases: {shown})")
    return fn


def template_name(fn: Template) -> str:
    """The registered name of ``fn``, else its ``__name__``."""
    name = getattr(fn, "template_name", None)
    if isinstance(name, str) and TEMPLATES.get(name) is fn:
        return name
    for n, f in TEMPLATES.items():
        if f is fn:
            return n
    return getattr(fn, "__name__", "template")


def get_hooks(name: str) -> TemplateHooks:
    """The hooks registered with template ``name`` (all None when there are none)."""
    aliases = _load_library()
    return _HOOKS.get(aliases.get(name, name), TemplateHooks())
