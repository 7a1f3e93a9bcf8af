"""``target="llvm -mcpu=NAME -mattr=+f,-g"``: which x86-64 CPU the LLVM backend compiles for.

``parse_target("llvm")`` is the host (its CPU name and every feature it has). ``-mcpu=NAME``
names another CPU (``haswell``, ``skylake-avx512``, ``x86-64-v3``, ``znver4``...; ``native``
and ``host`` mean this one) and ``-mattr`` adds or removes features. Names LLVM does not
know are rejected (LLVM itself would only warn and fall back to a generic CPU). Code for a
CPU other than the host is built ahead of time: ``export_library`` writes a ``.so``/``.o``
for that machine; it runs here only when the host has every feature the code may use
(:func:`missing_on_host`), otherwise calling it raises a clear error instead of SIGILL.

Which of the checked features (AVX, AVX2, FMA, BMI2, AVX-512 F/BW/DQ/VL/CD) a named CPU
has is read from LLVM by compiling a few probe functions and looking for the instructions
each feature enables; ``-mattr`` features are taken as given. AVX-512 VNNI/BF16 are not
probed (our code generator never asks for them): a named CPU has them only through
``-mattr``.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import llvmlite.binding as llvm

from tiletune.errors import BuildError

T = TypeVar("T")

OPTIONS = ("-mcpu", "-mattr")


@dataclass(frozen=True)
class CpuTarget:
    """An x86-64 CPU to compile for: LLVM CPU name and feature string (``+a,-b``)."""

    cpu: str
    features: str
    text: str = "llvm"

    @property
    def is_host(self) -> bool:
        from tiletune.backends.llvm.target import host

        return (self.cpu, self.features) == host()[1:]


def _stderr_of(fn: Callable[[], T]) -> tuple[T, str]:
    """``fn()`` and what it wrote to file descriptor 2 (LLVM warns there, unbuffered)."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode("utf-8", "replace")


def _check_with_llvm(cpu: str, features: str, text: str) -> None:
    from tiletune.backends.llvm.target import host, init

    init()
    target = llvm.Target.from_triple(host()[0])
    tm, err = _stderr_of(lambda: target.create_target_machine(cpu=cpu, features=features))
    tm.close()
    bad_cpu = re.findall(r"'([^']*)' is not a recognized processor", err)
    bad_feats = sorted(set(re.findall(r"'([^']*)' is not a recognized feature", err)))
    if bad_cpu:
        raise BuildError(f"target {text!r}: LLVM does not know the CPU {bad_cpu[0]!r}; use an "
                         "LLVM x86-64 CPU name such as haswell, skylake-avx512, znver3, "
                         "x86-64-v3 (or -mcpu=native)")
    if bad_feats:
        raise BuildError(f"target {text!r}: LLVM does not know the feature(s) "
                         f"{', '.join(bad_feats)}; use LLVM names such as +avx2,+fma,-avx512f")


@functools.cache
def parse_target(text: str) -> CpuTarget:
    """The CPU of an LLVM target string (see the module docstring); BuildError if bad."""
    from tiletune.backends.llvm.target import host

    parts = str(text).split()
    if not parts or parts[0] != "llvm":
        raise BuildError(f"target {text!r} is not an LLVM target (it must start with 'llvm')")
    opts: dict[str, str] = {}
    for p in parts[1:]:
        key, eq, value = p.partition("=")
        if key not in OPTIONS or not eq or not value:
            what = f"option {key!r}" if key not in OPTIONS else f"{key} without a value"
            raise BuildError(f"target {text!r}: unsupported {what}; the LLVM target takes "
                             "-mcpu=NAME and -mattr=+feature,-feature (e.g. 'llvm "
                             "-mcpu=haswell')")
        if key in opts:
            raise BuildError(f"target {text!r} gives {key} twice")
        opts[key] = value
    _, host_cpu, host_features = host()
    cpu = opts.get("-mcpu", "native")
    attrs = [a for a in opts.get("-mattr", "").split(",") if a]
    for a in attrs:
        if a[0] not in "+-" or len(a) == 1:
            raise BuildError(f"target {text!r}: feature {a!r} must start with + or - "
                             "(e.g. -mattr=+avx2,-avx512f)")
    if cpu in ("native", "host"):
        cpu, base = host_cpu, host_features.split(",")
    else:
        base = []
    names = [f[1:] for f in base]
    for a in attrs:  # -mattr overrides the CPU's own setting of a feature
        if a[1:] in names:
            base[names.index(a[1:])] = a
        else:
            base.append(a)
            names.append(a[1:])
    features = ",".join(base)
    _check_with_llvm(cpu, features, text)
    return CpuTarget(cpu, features, " ".join(parts))


# Probe functions: with the feature, LLVM selects the instruction matched by the pattern.
_PROBES: dict[str, tuple[str, str]] = {
    "avx": ("fadd <8 x float> %a, %a", r"\bvaddps\s+%ymm"),
    "avx2": ("add <8 x i32> %ai, %ai", r"\bvpaddd\s+%ymm"),
    "fma": ("call <4 x float> @llvm.fma.v4f32(<4 x float> %q, <4 x float> %q, <4 x float> %q)",
            r"\bvfmadd"),
    "bmi2": ("shl i64 %s, %t", r"\bshlx"),
    "avx512f": ("fadd <16 x float> %z, %z", r"%zmm"),
    "avx512bw": ("add <32 x i16> %w, %w", r"\bvpaddw\s+%zmm"),
    "avx512dq": ("mul <8 x i64> %l, %l", r"\bvpmullq"),
    "avx512vl": ("call <4 x i64> @llvm.abs.v4i64(<4 x i64> %y, i1 false)",
                 r"\bvpabsq\s+%ymm"),
    "avx512cd": ("call <16 x i32> @llvm.ctlz.v16i32(<16 x i32> %c, i1 false)", r"\bvplzcntd"),
}
_ARGS = {"%a": "<8 x float>", "%ai": "<8 x i32>", "%q": "<4 x float>", "%s": "i64",
         "%t": "i64", "%z": "<16 x float>", "%w": "<32 x i16>", "%l": "<8 x i64>",
         "%y": "<4 x i64>", "%c": "<16 x i32>"}


def _probe_module() -> str:
    out = ["declare <4 x float> @llvm.fma.v4f32(<4 x float>, <4 x float>, <4 x float>)",
           "declare <4 x i64> @llvm.abs.v4i64(<4 x i64>, i1)",
           "declare <16 x i32> @llvm.ctlz.v16i32(<16 x i32>, i1)"]
    for name, (expr, _) in _PROBES.items():
        used = [a for a in _ARGS if re.search(re.escape(a) + r"\b", expr)]
        params = ", ".join(f"{_ARGS[a]} {a}" for a in used)
        ret = _ARGS[used[0]]
        out.append(f'define {ret} @probe_{name}({params}) "min-legal-vector-width"="512" {{\n'
                   f"  %r = {expr}\n  ret {ret} %r\n}}")
    return "\n".join(out)


@functools.cache
def probed_features(cpu_target: CpuTarget) -> tuple[str, ...]:
    """The checked features code compiled for ``cpu_target`` may use (read from LLVM)."""
    from tiletune.backends.llvm.target import create_target_machine

    tm = create_target_machine(2, jit=False, cpu_target=cpu_target)
    mod = llvm.parse_assembly(_probe_module())
    asm = tm.emit_assembly(mod)
    found = []
    for name, (_, pattern) in _PROBES.items():
        body = asm.split(f"probe_{name}:", 1)[1].split(".Lfunc_end", 1)[0]
        if re.search(pattern, body):
            found.append(name)
    explicit = {a[1:] for a in cpu_target.features.split(",") if a.startswith("+")}
    from tiletune.backends.llvm.target import _CHECKED

    return tuple(f for f in _CHECKED if f in found or f in explicit)


def missing_on_host(cpu_target: CpuTarget) -> list[str]:
    """Checked features the code may use that this CPU lacks (empty: it runs here)."""
    from tiletune.backends.llvm.target import required_features

    if cpu_target.is_host:
        return []
    have = set(required_features())
    return [f for f in probed_features(cpu_target) if f not in have]


def describe(cpu_target: CpuTarget | None) -> dict[str, Any]:
    """``{"cpu", "features"}`` for a kernel's metadata (the SIGILL guard of load_module)."""
    from tiletune.backends.llvm.target import host, required_features

    if cpu_target is None or cpu_target.is_host:
        return {"cpu": host()[1], "features": required_features()}
    return {"cpu": cpu_target.cpu, "features": list(probed_features(cpu_target))}
