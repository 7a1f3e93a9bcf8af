"""Task: a template applied to concrete arguments for a target — what a tuner tunes.

    task = Task("conv2d_nchwc", (1, 64, 56, 56, 64, 3, 3, 1, 1, "float32"))
    task.workload_key   # 'conv2d_nchwc(1,64,56,56,64,3,3,1,1,"float32")@llvm'
    task.space          # the ConfigSpace collected from the template
    s, tensors = task.instantiate(123)          # index, ConfigEntity or knob -> value mapping

Inputs and checking (used by the measurement harness, see ``template.py`` for the hooks):
``make_inputs(seed)`` gives the logical inputs, ``reference(inputs)`` the expected outputs,
``prepare(config, inputs)`` the kernel's arguments for one config (outputs pre-filled with
NaN, so an element the kernel never writes is caught) and ``check`` compares.

The workload key is ``name(args as JSON)@target`` with the template's default arguments
filled in, so it is the same in every process and run.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import TuningError
from ..space.config_space import ConfigEntity, ConfigSpace
from .registry import Template, TemplateHooks, get_hooks, get_template, template_name

Config = ConfigEntity | int | Mapping[str, Any]

_KEY = re.compile(r"^(?P<name>[^(]+)\((?P<args>.*)\)@(?P<target>.*)$")


def _plain(x: Any) -> Any:
    """JSON-ready form of an argument (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, bool | int | float | str):
        return x
    raise TuningError(f"task argument {x!r} is not JSON-serialisable (use numbers, strings, "
                      "tuples)")


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def workload_key(name: str, args: Sequence[Any], target: str = "llvm") -> str:
    """``name(arg,arg,...)@target`` with each argument as compact JSON."""
    inner = ",".join(json.dumps(_plain(a), separators=(",", ":")) for a in args)
    return f"{name}({inner})@{target}"


def parse_workload_key(key: str) -> tuple[str, tuple[Any, ...], str]:
    """Inverse of :func:`workload_key`: ``(name, args, target)``."""
    m = _KEY.match(key)
    if m is None:
        raise TuningError(f"not a workload key: {key!r} (expected name(args)@target)")
    try:
        args = json.loads(f"[{m['args']}]")
    except json.JSONDecodeError as e:
        raise TuningError(f"workload key {key!r} has malformed arguments: {e}") from None
    return m["name"], _tuples(args), m["target"]


class Task:
    """A tuning task: template + arguments + target. Picklable through :meth:`to_json`."""

    def __init__(self, template: str | Template, args: Sequence[Any] = (),
                 target: str = "llvm") -> None:
        if isinstance(template, str):
            self.func = get_template(template)
        elif callable(template):
            self.func = template
        else:
            raise TuningError(f"template must be a name or a function, got {template!r}")
        self.name: str = template_name(self.func)
        self.args: tuple[Any, ...] = self._bind(tuple(_tuples(_plain(list(args)))))
        self.target: str = " ".join(str(target).split())
        registered = getattr(self.func, "template_name", None) == self.name
        self.hooks: TemplateHooks = get_hooks(self.name) if registered else TemplateHooks()
        self.workload_key: str = workload_key(self.name, self.args, self.target)
        self.space: ConfigSpace = self._collect()
        self._flop: float | None = self.space.flop if self.space.flop > 0 else None

    def _bind(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Fill in the template's default arguments (so the key does not depend on them)."""
        try:
            sig = inspect.signature(self.func)
        except (TypeError, ValueError):
            return args
        try:
            bound = sig.bind(None, *args)
        except TypeError as e:
            raise TuningError(f"template {self.name!r}{sig} cannot take arguments {args}: {e}"
                              ) from None
        bound.apply_defaults()
        out = list(bound.arguments.values())[1:]
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
            return args
        return tuple(_tuples(_plain(out)))

    def _collect(self) -> ConfigSpace:
        space = ConfigSpace()
        try:
            self.func(space, *self.args)
        except Exception as e:  # noqa: BLE001 - say which template broke
            raise TuningError(f"template {self.name!r} failed while collecting its config space "
                              f"for {self.workload_key}: {type(e).__name__}: {e}") from e
        return space

    # -- configs ----------------------------------------------------------------------------
    def config(self, config: Config) -> ConfigEntity:
        """A ConfigEntity from an index, a ConfigEntity or a knob -> value mapping."""
        if isinstance(config, ConfigEntity):
            return config if config.space is self.space else self.space.get(config.index)
        if isinstance(config, Mapping):
            return self.space.from_json(config)
        if isinstance(config, int | np.integer) and not isinstance(config, bool):
            return self.space.get(int(config))
        raise TuningError(f"a config is an index, a ConfigEntity or a mapping, got {config!r}")

    def instantiate(self, config: Config | None = None) -> tuple[Any, list[Any]]:
        """``(schedule, tensors)`` for ``config``; None: the tuned config of an active
        ``apply_history_best`` block, else :meth:`default_config`."""
        if config is None:
            config = self.best_or_default()
        cfg = self.config(config)
        out = self.func(cfg, *self.args)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TuningError(f"template {self.name!r} must return (schedule, tensors), got "
                              f"{type(out).__name__}")
        s, tensors = out
        return s, list(tensors)

    def best_or_default(self) -> ConfigEntity:
        """The config an active ``apply_history_best`` holds for this task, else the
        default config, else index 0."""
        from ...schedules import dispatch
        tuned = dispatch.query(self.workload_key)
        if tuned is not None:
            try:
                return self.space.from_json(tuned)
            except TuningError:
                pass
        return self.default_config() or self.space.get(self._first_valid())

    def default_config(self) -> ConfigEntity | None:
        """The template's heuristic config, if it registered one that fits the space."""
        if self.hooks.default_config is None:
            return None
        try:
            return self.space.from_json(self.hooks.default_config(*self.args))
        except TuningError:
            return None

    def _first_valid(self) -> int:
        n = min(len(self.space), 10_000)
        return next((i for i in range(n) if self.space.is_valid(i)), 0)

    # -- flop -------------------------------------------------------------------------------
    @property
    def flop(self) -> float:
        """From ``cfg.add_flop`` in the template, else counted from the compute (float
        arithmetic per element x elements x reduction extents: 2 per multiply-add)."""
        if self._flop is None:
            try:
                _, tensors = self.instantiate(self.best_or_default())
                self._flop = count_flop(tensors)
            except Exception:  # noqa: BLE001 - an unknown count is 0 (throughput = 1/cost)
                self._flop = 0.0
        return self._flop

    # -- inputs and checking ----------------------------------------------------------------
    def make_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """The logical inputs, random but fixed by ``seed``."""
        rng = np.random.default_rng(seed)
        if self.hooks.inputs is not None:
            return [np.ascontiguousarray(a) for a in self.hooks.inputs(rng, *self.args)]
        _, tensors = self.instantiate(self.best_or_default())
        return [random_array(rng, t.shape, t.dtype) for t in tensors if _is_input(t)]

    def reference(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """Expected outputs: the registered NumPy reference, else the template's compute
        built with a naive schedule (for the default config); None if neither works."""
        if self.hooks.reference is not None:
            return [np.asarray(a) for a in self.hooks.reference(list(inputs), *self.args)]
        import tiletune as tt
        try:
            cfg = self.best_or_default()
            _, tensors = self.instantiate(cfg)
            outs = [t for t in tensors if not _is_input(t)]
            f = tt.build(tt.create_schedule(outs), tensors, target=self.target, name="reference")
            f.set_num_threads(1)
            arrays, out_pos = self.prepare(cfg, inputs, tensors)
            f(*arrays)
            return [arrays[i] for i in out_pos]
        except Exception:  # noqa: BLE001 - no reference: correctness is not checked
            return None

    def prepare(self, config: Config, inputs: Sequence[np.ndarray],
                tensors: Sequence[Any] | None = None) -> tuple[list[np.ndarray], list[int]]:
        """The kernel's arguments for ``config`` and the positions of its outputs.

        Inputs come from the ``prepare`` hook (or are the logical inputs), in placeholder
        order; outputs are fresh arrays filled with NaN (floats) or a marker value.
        """
        cfg = self.config(config)
        if tensors is None:
            _, tensors = self.instantiate(cfg)
        ins = list(inputs) if self.hooks.prepare is None else list(
            self.hooks.prepare(cfg.to_json(), list(inputs), *self.args))
        n_in = sum(1 for t in tensors if _is_input(t))
        if len(ins) != n_in:
            raise TuningError(f"template {self.name!r}: {len(ins)} input arrays for {n_in} "
                              "placeholder arguments")
        arrays: list[np.ndarray] = []
        out_pos: list[int] = []
        it = iter(ins)
        for k, t in enumerate(tensors):
            if _is_input(t):
                arrays.append(np.ascontiguousarray(next(it), dtype=t.dtype))
            else:
                out_pos.append(k)
                arrays.append(np.full(t.shape, np.nan if "float" in t.dtype else 0x5A,
                                      dtype=t.dtype))
        return arrays, out_pos

    @staticmethod
    def check(outputs: Sequence[np.ndarray], expected: Sequence[np.ndarray],
              rtol: float = 1e-3) -> str | None:
        """None when every output matches, else a one-line reason (see :class:`OutputCheck`)."""
        return OutputCheck(expected, rtol)(outputs)

    # -- serialisation ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """What a worker process needs to rebuild the task (importable module + name)."""
        return {"template": self.name, "args": _plain(list(self.args)), "target": self.target,
                "module": getattr(self.func, "__module__", None),
                "qualname": getattr(self.func, "__qualname__", None)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Task:
        """Rebuild a task; imports the template's module if the name is not registered."""
        return cls(_find_template(d), tuple(_tuples(d.get("args", []))),
                   d.get("target", "llvm"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Task.from_json, (self.to_json(),))

    def __repr__(self) -> str:
        return f"Task({self.workload_key}, {len(self.space)} configs)"


class OutputCheck:
    """Compares outputs with expected ones; the tolerance is precomputed, so a check costs
    about two array passes.

    Per element: ``|out - expected| <= rtol * (|expected| + max|expected|)`` (relative, with
    an absolute floor scaled to the output, so sums of mixed signs pass), plus 0.5 for
    integer references. NaN (an element the kernel never wrote) always fails.
    """

    def __init__(self, expected: Sequence[np.ndarray], rtol: float = 1e-3) -> None:
        self.expected = [np.asarray(e, dtype=np.float64) for e in expected]
        self.scale = [float(np.max(np.abs(e))) if e.size else 0.0 for e in self.expected]
        self.bound = [rtol * (np.abs(e) + sc) + (0.0 if "float" in str(np.asarray(x).dtype)
                                                   else 0.5)
                      for e, sc, x in zip(self.expected, self.scale, expected)]

    def __call__(self, outputs: Sequence[np.ndarray]) -> str | None:
        if len(outputs) != len(self.expected):
            return f"{len(outputs)} outputs, expected {len(self.expected)}"
        for k, (o, e, bound) in enumerate(zip(outputs, self.expected, self.bound)):
            o = np.asarray(o)
            if o.shape != e.shape:
                return f"output {k} has shape {o.shape}, expected {e.shape}"
            err = np.abs(o - e)
            if np.all(err <= bound):
                continue
            bad = ~(err <= bound)
            worst = float(np.nanmax(err)) if not np.isnan(err).all() else math.nan
            first = np.unravel_index(int(np.argmax(bad)), bad.shape)
            return (f"output {k}: {int(bad.sum())}/{bad.size} elements differ, max abs error "
                    f"{worst:.3g} (max |expected| {self.scale[k]:.3g}); first at "
                    f"{tuple(int(x) for x in first)}: got {float(o[first]):.6g}, expected "
                    f"{float(e[first]):.6g}")
        return None


def _find_template(d: Mapping[str, Any]) -> Template:
    name, module, qualname = d.get("template"), d.get("module"), d.get("qualname")
    from .registry import TEMPLATES, _load_library
    _load_library()
    if module and module not in ("__main__", "__mp_main__"):
        try:
            importlib.import_module(module)  # registers templates defined there
        except ImportError as e:
            raise TuningError(f"cannot import module {module!r} of template {name!r}: {e}"
                              ) from e
    fn = TEMPLATES.get(name) if isinstance(name, str) else None
    if fn is not None and (not qualname or getattr(fn, "__qualname__", None) == qualname):
        return fn
    if module and qualname and "<locals>" not in qualname:
        import sys
        obj: Any = sys.modules.get(module) or sys.modules.get("__main__")
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if callable(obj):
            return obj
    if fn is not None:
        return fn
    raise TuningError(f"template {name!r} ({module}.{qualname}) is not available in this process;"
                      " define templates at module level so worker processes can import them")


def _is_input(t: Any) -> bool:
    from ...ir.tensor import PlaceholderOp
    return isinstance(t.op, PlaceholderOp)


def random_array(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Uniform [-1, 1) floats, small integers in [-4, 4] (or [0, 4] unsigned), random bools."""
    if "float" in dtype:
        return rng.uniform(-1.0, 1.0, size=tuple(shape)).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, size=tuple(shape)).astype(bool)
    lo = 0 if dtype.startswith("uint") else -4
    return rng.integers(lo, 5, size=tuple(shape)).astype(dtype)


def count_flop(tensors: Sequence[Any]) -> float:
    """Arithmetic operations of the compute stages reachable from ``tensors``."""
    from ...ir import dtype as dt
    from ...ir.expr import Binary, Call, Reduce
    from ...ir.functor import collect
    from ...ir.tensor import ComputeOp

    seen: set[int] = set()
    total = 0.0
    stack = [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if id(op) in seen or not isinstance(op, ComputeOp):
            continue
        seen.add(id(op))
        stack.extend(t.op for t in op.input_tensors)
        body = op.body
        n = math.prod(op.shape)
        arith = collect(body, lambda e: isinstance(e, Binary | Call) and e.dtype != dt.INDEX
                        and not dt.is_bool(e.dtype))
        ops = len(arith)
        if isinstance(body, Reduce):
            n *= math.prod(a.extent for a in body.axes)
            ops += 1  # the combine
        total += ops * n
    return float(total)

