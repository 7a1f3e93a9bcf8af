"""Operators and network presets behind ``tiletune --op/--workload``.

A :class:`Workload` is a named (op, shape, target): ``resnet18:3`` or ``conv2d 1,64,...``.
It knows its template name and arguments and makes the tuning :class:`Task` on demand.

Everything is table driven: a new op is one :data:`OPS` entry (its shape fields), its
template on a target one ``@TARGET.op(name)`` line in ``tiletune/tuner/targets/<target>.py``,
a new network one :data:`PRESETS` entry.

    >>> [w.name for w in parse_workloads("resnet18:2-3")]
    ['resnet18:2', 'resnet18:3']
    >>> parse_op_shape("dense", "64,64,64").args
    (64, 64, 64, 'float32')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import TuningError
from ..targets.registry import get_target, load_targets

if TYPE_CHECKING:
    from ..templates.task import Task


@dataclass(frozen=True)
class OpSpec:
    """An operator as the CLI sees it: shape fields, optional trailing defaults.

    Its template on each target comes from the target registry (``@TARGET.op(name)`` in
    ``tiletune/tuner/targets/<target>.py``)."""

    name: str
    dims: tuple[str, ...]
    defaults: dict[str, int] = field(default_factory=dict)  # trailing dims that may be left out
    short: str = ""  # compact format of a shape, e.g. "{M}x{N}x{K}"

    @property
    def templates(self) -> dict[str, str]:
        """target -> template name, for the targets that implement this op."""
        return {t: tg.ops[self.name].template for t, tg in load_targets().items()
                if self.name in tg.ops}

    def template(self, target: str) -> str:
        return get_target(target).template_of(self.name).template

    def describe(self, shape: tuple[int, ...]) -> str:
        """``conv2d N=1,C=64,...``."""
        return f"{self.name} " + ",".join(f"{d}={v}" for d, v in zip(self.dims, shape))

    def compact(self, shape: tuple[int, ...]) -> str:
        """``1x64x56x56 k64 3x3 s1 p1`` (for tables)."""
        if not self.short:
            return ",".join(map(str, shape))
        return self.short.format(**dict(zip(self.dims, shape)))


OPS: dict[str, OpSpec] = {
    "conv2d": OpSpec(
        "conv2d", ("N", "C", "H", "W", "K", "R", "S", "stride", "pad"),
        defaults={"stride": 1, "pad": 0}, short="{N}x{C}x{H}x{W} k{K} {R}x{S} s{stride} p{pad}"),
    "dense": OpSpec("dense", ("M", "N", "K"), short="{M}x{N}x{K}"),
    "depthwise": OpSpec(
        "depthwise", ("N", "C", "H", "W", "R", "stride", "pad"),
        defaults={"stride": 1, "pad": 0},
        short="{N}x{C}x{H}x{W} {R}x{R} s{stride} p{pad}"),
}
_CONV_DIMS = ("N", "C", "H", "W", "K", "R", "S", "stride", "pad")
_CONV_SHORT = "{N}x{C}x{H}x{W} k{K} {R}x{S} s{stride} p{pad}"
OPS.update({  # the conv2d algorithms: the choice among them, or one of them alone
    "conv2d_auto": OpSpec("conv2d_auto", _CONV_DIMS, defaults={"stride": 1, "pad": 0},
                          short=_CONV_SHORT),
    "winograd": OpSpec("winograd", _CONV_DIMS, defaults={"stride": 1, "pad": 0},
                       short=_CONV_SHORT),
    "im2col": OpSpec("im2col", _CONV_DIMS, defaults={"stride": 1, "pad": 0},
                     short=_CONV_SHORT),
    "grouped": OpSpec(
        "grouped", (*_CONV_DIMS, "groups", "dilation"),
        defaults={"stride": 1, "pad": 0, "groups": 1, "dilation": 1},
        short=_CONV_SHORT + " g{groups} d{dilation}"),
})

#: ResNet-18's 12 distinct conv layers, (C, H, W, K, R, S, stride, pad), batch 1.
RESNET18 = (
    (3, 224, 224, 64, 7, 7, 2, 3), (64, 56, 56, 64, 3, 3, 1, 1),
    (64, 56, 56, 64, 1, 1, 1, 0), (64, 56, 56, 128, 3, 3, 2, 1),
    (64, 56, 56, 128, 1, 1, 2, 0), (128, 28, 28, 128, 3, 3, 1, 1),
    (128, 28, 28, 256, 3, 3, 2, 1), (128, 28, 28, 256, 1, 1, 2, 0),
    (256, 14, 14, 256, 3, 3, 1, 1), (256, 14, 14, 512, 3, 3, 2, 1),
    (256, 14, 14, 512, 1, 1, 2, 0), (512, 7, 7, 512, 3, 3, 1, 1),
)


@dataclass(frozen=True)
class Preset:
    """A network's layers: each a full shape of ``op``."""

    op: str
    layers: tuple[tuple[int, ...], ...]
    description: str = ""


PRESETS: dict[str, Preset] = {
    "resnet18": Preset("conv2d", tuple((1, *layer) for layer in RESNET18),
                       "ResNet-18 conv layers, batch 1, NCHW"),
    "resnet18-auto": Preset("conv2d_auto", tuple((1, *layer) for layer in RESNET18),
                            "ResNet-18 conv layers, every applicable algorithm in one space"),
}


@dataclass(frozen=True)
class Workload:
    """One thing to tune: an op at a shape on a target, with a display name."""

    name: str
    op: str
    shape: tuple[int, ...]
    target: str = "llvm"
    dtype: str | None = None

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    @property
    def template(self) -> str:
        return self.spec.template(self.target)

    @property
    def args(self) -> tuple[Any, ...]:
        """The template's arguments: the shape, then the dtype."""
        return (*self.shape, self.dtype or get_target(self.target).dtype)

    def describe(self) -> str:
        return self.spec.describe(self.shape)

    def compact(self) -> str:
        return self.spec.compact(self.shape)

    def unsupported_reason(self) -> str | None:
        """Why this shape cannot run on its target (None: it can; the target's ``op``
        registration says)."""
        return get_target(self.target).template_of(self.op).unsupported_reason(*self.args)

    def task(self) -> Task:
        """The tuning task (imports the measurement harness lazily)."""
        from ..templates.task import Task

        return Task(self.template, self.args, target=self.target)


def _ints(text: str, what: str) -> list[int]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise TuningError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in vals):
        raise TuningError(f"{what}: negative value in {text!r}")
    return vals


def parse_op_shape(op: str, shape: str, target: str = "llvm", dtype: str | None = None
                   ) -> Workload:
    """``--op conv2d --shape 1,64,56,56,64,3,3,1,1`` -> a Workload (stride, pad optional)."""
    if op not in OPS:
        raise TuningError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    spec = OPS[op]
    vals = _ints(shape, f"--shape for {op}")
    n_required = len(spec.dims) - len(spec.defaults)
    if not n_required <= len(vals) <= len(spec.dims):
        need = ",".join(spec.dims)
        opt = f" (the last {len(spec.defaults)} optional)" if spec.defaults else ""
        raise TuningError(f"--shape for {op} takes {need}{opt}; got {len(vals)} values "
                          f"{shape!r}")
    vals += [spec.defaults[d] for d in spec.dims[len(vals):]]
    named = dict(zip(spec.dims, vals))
    zero = [d for d, v in named.items() if v == 0 and d != "pad"]
    if zero:
        raise TuningError(f"--shape for {op}: {', '.join(zero)} must be positive")
    wl = Workload(f"{op}:{','.join(map(str, vals))}", op, tuple(vals), target, dtype)
    spec.template(target)  # unknown target for this op: fail now, with the options
    return wl


def parse_layers(text: str, n: int, preset: str) -> list[int]:
    """``"3"``, ``"2-5"``, ``"1,3,5-7"`` -> 1-based layer numbers, each in 1..n."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise TuningError(f"bad layer selection {text!r} for {preset}: use N, N-M or "
                              f"a comma list, e.g. {preset}:3 or {preset}:2-5")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if not 1 <= lo <= hi <= n:
            raise TuningError(f"{preset} has layers 1-{n}; {part.strip()!r} is out of range")
        out += [i for i in range(lo, hi + 1) if i not in out]
    return out


def parse_workloads(text: str, target: str = "llvm", dtype: str | None = None
                    ) -> list[Workload]:
    """``resnet18``, ``resnet18:3``, ``resnet18:2-5`` -> the selected layers as Workloads."""
    name, _, sel = text.partition(":")
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise TuningError(f"unknown workload {name!r}; presets: {', '.join(PRESETS)} "
                          "(or use --op OP --shape ...)")
    layers = parse_layers(sel, len(preset.layers), name) if sel else range(
        1, len(preset.layers) + 1)
    out = [Workload(f"{name}:{i}", preset.op, preset.layers[i - 1], target, dtype)
           for i in layers]
    OPS[preset.op].template(target)
    return out


def find_by_template(template: str, args: tuple[Any, ...], target: str = "llvm"
                     ) -> Workload | None:
    """The Workload (preset name if it is a preset layer) of a template + args, if any."""
    for op, spec in OPS.items():
        if spec.templates.get(target) != template:
            continue
        shape = tuple(int(a) for a in args[:len(spec.dims)])
        dtype = args[len(spec.dims)] if len(args) > len(spec.dims) else None
        for pname, preset in PRESETS.items():
            if preset.op == op and shape in preset.layers:
                return Workload(f"{pname}:{preset.layers.index(shape) + 1}", op, shape, target,
                                dtype)
        return Workload(f"{op}:{','.join(map(str, shape))}", op, shape, target, dtype)
    return None
