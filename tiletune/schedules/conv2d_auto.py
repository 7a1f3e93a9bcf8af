"""The conv2d algorithm as a choice: direct NCHWc, direct NCHW, Winograd or im2col + GEMM.

A config of this template is ``{"algorithm": name, "schedule": that algorithm's config}``;
its space is the disjoint union of the applicable algorithms' valid configs (the
``algorithm`` knob and the ``schedule`` knob must agree), so one search covers every
algorithm and a record says which one won::

    {"algorithm": "winograd", "schedule": {"tile": 4, "ic_bn": 8, "oc_bn": 16, ...}}

``choose(w)`` gives ``(module, config)``: the tuned pick inside ``apply_history_best``
(dispatch key :func:`key`), else a heuristic; ``build`` compiles it. Every algorithm's kernel
is called as ``f(data, module.pack_weight(weight, config), [bias], [residual], out)``.

A graph's conv node uses the ``fused_*`` functions: the same config format over the
algorithms that read NCHW or NCHW[ic_bn]c and write NCHW[oc_bn]c with the epilogue fused
(:data:`FUSED_ALGORITHMS`: direct NCHWc, Winograd, im2col), the blocks fixed by the graph's
layout plan; ``pack_weight`` (Winograd: the kernel transform) runs once at graph compile time.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Mapping

import numpy as np

from tiletune.errors import ScheduleError
from tiletune.schedules import conv2d, conv2d_nchw, dispatch, im2col, winograd
from tiletune.schedules.conv2d import Conv2dWorkload
from tiletune.schedules.epilogue import Epilogue

#: algorithm name -> schedule module (same interface: space, is_valid, default_config,
#: schedule, build, pack_weight).
ALGORITHMS: dict[str, ModuleType] = {
    "nchwc": conv2d,
    "nchw": conv2d_nchw,
    "winograd": winograd,
    "im2col": im2col,
}


@dataclass(frozen=True)
class AutoConv2dWorkload(Conv2dWorkload):
    """A conv2d workload whose dispatch key names the algorithm-choice template."""

    def key(self) -> str:
        return "conv2d_auto_" + Conv2dWorkload.key(self)


def key(w: Conv2dWorkload) -> str:
    return AutoConv2dWorkload.key(w)  # type: ignore[arg-type]


def _plain(w: Conv2dWorkload) -> Conv2dWorkload:
    return Conv2dWorkload(w.N, w.C, w.H, w.W, w.K, w.R, w.S, w.stride, w.pad, w.dtype)


def applicable(w: Conv2dWorkload) -> list[str]:
    """Names of the algorithms that can compute ``w``."""
    return [n for n in ALGORITHMS if n != "winograd" or winograd.applicable(w)]


@functools.lru_cache(maxsize=64)
def _valid_configs(name: str, w: Conv2dWorkload) -> tuple[tuple[tuple[str, Any], ...], ...]:
    module = ALGORITHMS[name]
    sp = module.space(w)
    out = []
    for values in itertools.product(*sp.values()):
        cfg = dict(zip(sp, values))
        if module.is_valid(w, cfg):
            out.append(tuple(cfg.items()))
    return tuple(out)


def algorithm_configs(w: Conv2dWorkload, name: str) -> list[dict[str, Any]]:
    """Every valid config of algorithm ``name`` for ``w`` (the module's space, enumerated)."""
    return [dict(c) for c in _valid_configs(name, _plain(w))]


def space(w: Conv2dWorkload) -> dict[str, list[Any]]:
    """``algorithm``: the applicable names; ``schedule``: all their valid configs."""
    names = applicable(w)
    return {"algorithm": names,
            "schedule": [c for n in names for c in algorithm_configs(w, n)]}


def algorithm_of(w: Conv2dWorkload, schedule_cfg: Mapping[str, Any]) -> str | None:
    """The applicable algorithm whose knobs ``schedule_cfg`` has (None if none)."""
    for name in applicable(w):
        if set(schedule_cfg) == set(ALGORITHMS[name].space(w)):
            return name
    return None


def is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any]) -> bool:
    name = cfg.get("algorithm")
    sched = cfg.get("schedule")
    if name not in applicable(w) or not isinstance(sched, Mapping):
        return False
    module = ALGORITHMS[name]
    sp = module.space(w)
    return (set(sched) == set(sp) and all(sched[k] in v for k, v in sp.items())
            and bool(module.is_valid(w, sched)))


def default_config(w: Conv2dWorkload) -> dict[str, Any]:
    """Heuristic: Winograd F(4x4) (F(2x2) on small maps) for stride-1 3x3 layers with
    enough channels to amortise the transforms; else the direct pick of
    ``conv2d_nchw.choose``."""
    if winograd.applicable(w) and min(w.C, w.K) >= 16:
        return {"algorithm": "winograd", "schedule": winograd.default_config(w)}
    module, cfg = conv2d_nchw.choose(_plain(w))
    name = next(n for n, m in ALGORITHMS.items() if m is module)
    return {"algorithm": name, "schedule": dict(cfg)}


def choose(w: Conv2dWorkload) -> tuple[ModuleType, dict[str, Any]]:
    """``(module, config)`` of the algorithm to use: tuned if a dispatch context has a
    record for ``w``, else :func:`default_config`."""
    cfg = dispatch.lookup(key(w), default_config(w), w)
    return ALGORITHMS[cfg["algorithm"]], dict(cfg["schedule"])


def _resolve(w: Conv2dWorkload, cfg: Mapping[str, Any] | None) -> tuple[ModuleType, dict]:
    if cfg is None:
        return choose(w)
    if not is_valid(w, cfg):
        raise ScheduleError(f"conv2d_auto config {dict(cfg)} is not a valid config of "
                            f"{w.key()}: algorithm one of {applicable(w)} with a valid "
                            "schedule of that algorithm")
    return ALGORITHMS[cfg["algorithm"]], dict(cfg["schedule"])


def schedule(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None,
             epilogue: Epilogue | None = None):
    """The chosen algorithm's schedule and arguments ``[data, weight_packed, ..., out]``."""
    module, sched = _resolve(w, cfg)
    if epilogue:
        return module.schedule(_plain(w), sched, epilogue=epilogue)
    return module.schedule(_plain(w), sched)


def build(w: Conv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "conv2d_auto",
          epilogue: Epilogue | None = None):
    """Compile the chosen algorithm; call as ``f(data, pack_weight(weight, cfg), ..., out)``
    (with ``cfg=None``, pack with ``choose(w)``'s config)."""
    import tiletune as tt
    s, args = schedule(w, cfg, epilogue)
    return tt.build(s, args, name=name)


def pack_weight(weight: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """OIHW weights -> the layout of ``cfg``'s algorithm (Winograd: transformed)."""
    return ALGORITHMS[cfg["algorithm"]].pack_weight(weight, cfg["schedule"])


# ---------------------------------------------------------------------------- graph kernels
#: Algorithms of a graph's conv node: each reads NCHW or NCHW[ic_bn]c and writes
#: NCHW[oc_bn]c with the epilogue fused, the blocks fixed by the graph's layout plan.
FUSED_ALGORITHMS = ("nchwc", "winograd", "im2col")


@functools.lru_cache(maxsize=64)
def _fused_configs(name: str, w: Conv2dWorkload, ic_bn: int, oc_bn: int
                   ) -> tuple[tuple[tuple[str, Any], ...], ...]:
    if name == "winograd" and not winograd.applicable(w):
        return ()
    configs = _valid_configs(name, w)
    if name == "im2col":
        return tuple(c for c in configs if oc_bn % dict(c)["mr"] == 0)
    return tuple(c for c in configs if dict(c)["ic_bn"] == ic_bn and dict(c)["oc_bn"] == oc_bn)


def fused_configs(w: Conv2dWorkload, name: str, ic_bn: int, oc_bn: int) -> list[dict[str, Any]]:
    """Valid configs of algorithm ``name`` with the graph's channel blocks."""
    return [dict(c) for c in _fused_configs(name, _plain(w), ic_bn, oc_bn)]


def fused_applicable(w: Conv2dWorkload, ic_bn: int, oc_bn: int) -> list[str]:
    """The graph algorithms that can compute ``w`` with these blocks."""
    return [n for n in FUSED_ALGORITHMS if _fused_configs(n, _plain(w), ic_bn, oc_bn)]


def fused_is_valid(w: Conv2dWorkload, cfg: Mapping[str, Any], ic_bn: int, oc_bn: int) -> bool:
    name, sched = cfg.get("algorithm"), cfg.get("schedule")
    if name not in FUSED_ALGORITHMS or not isinstance(sched, Mapping):
        return False
    return dict(sched) in fused_configs(w, name, ic_bn, oc_bn)


def fused_algorithm_default(w: Conv2dWorkload, name: str, ic_bn: int, oc_bn: int
                            ) -> dict[str, Any] | None:
    """The heuristic config of one algorithm with the graph's blocks (None if it cannot)."""
    valid = fused_configs(w, name, ic_bn, oc_bn)
    if not valid:
        return None
    if name == "im2col":
        d = im2col.default_config(_plain(w))
        mr = max(c["mr"] for c in valid if c["nr"] == d["nr"])
        cand = {**d, "mr": mr}
    else:
        cand = {**ALGORITHMS[name].default_config(_plain(w)), "ic_bn": ic_bn, "oc_bn": oc_bn}
        if name == "winograd":
            cand["reg_p"] = winograd.default_reg_p(w, cand["tile"], oc_bn)
    if cand in valid:
        return cand
    if name == "nchwc":  # the default width tile with these blocks may not fit: the widest
        fits = [c for c in valid if all(c[k] == cand[k] for k in cand if k != "reg_n")]
        if fits:
            return max(fits, key=lambda c: c["reg_n"])
    return valid[0]


def fused_default(w: Conv2dWorkload, ic_bn: int, oc_bn: int) -> dict[str, Any]:
    """Heuristic for a graph's conv node: Winograd where the measurements on AVX2 show it
    wins (stride-1 3x3 with at least 32 channels in and out), else direct NCHWc."""
    if winograd.applicable(w) and min(w.C, w.K) >= 32:
        cfg = fused_algorithm_default(w, "winograd", ic_bn, oc_bn)
        if cfg is not None:
            return {"algorithm": "winograd", "schedule": cfg}
    return {"algorithm": "nchwc", "schedule": fused_algorithm_default(w, "nchwc", ic_bn, oc_bn)}


def fused_schedule(w: Conv2dWorkload, cfg: Mapping[str, Any], epilogue: Epilogue,
                   layout_in: str, ic_bn: int, oc_bn: int):
    """Schedule and arguments ``[data, weight_packed, (bias), (residual), out]`` of a graph
    conv node: data in ``layout_in`` (NCHW or NCHW[ic_bn]c), output NCHW[oc_bn]c."""
    if not fused_is_valid(w, cfg, ic_bn, oc_bn):
        raise ScheduleError(f"conv2d_auto_fused config {dict(cfg)} is not valid for "
                            f"{w.key()} with blocks ({ic_bn}, {oc_bn}): algorithm one of "
                            f"{fused_applicable(w, ic_bn, oc_bn)} with a valid schedule")
    name, sched, pw = cfg["algorithm"], dict(cfg["schedule"]), _plain(w)
    if name == "nchwc":
        return conv2d.schedule(pw, sched, epilogue, layout_in, "NCHWc")
    if name == "winograd":
        return winograd.schedule(pw, sched, epilogue, layout_in, "NCHWc")
    return im2col.schedule(pw, sched, epilogue, layout_in, "NCHWc", ic_bn, oc_bn)
