"""The graph executor: a precomputed call plan over preallocated buffers.

    y = m(x)                      # or m.run(input=x); returns the output(s), logical layout
    m.set_num_threads(2)
    print(m.profile(x))           # time per fused operator, and the time outside kernels
    m.export("net.tt"); m2 = tiletune.graph.load("net.tt")

At construction every kernel is bound once to its argument arrays (views of the planned
storages, or constants: packed weights, biases); a call copies the inputs in, runs the
bound kernels in order (no argument checks, no allocation) and copies the outputs out.

This module needs only the runtime: an exported file (one zip archive holding each kernel's
shared library, the plan as JSON and the constants as .npy) loads and runs without the
compiler or the tuner.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiletune.errors import ArgumentError, GraphError, TileTuneError
from tiletune.runtime.module import Module

FORMAT = "tiletune-graph"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Step:
    """One kernel call: ``kernel`` index, the node it computes, and its arguments in order:
    ``("buf", storage, shape)`` (an activation view) or ``("const", index)``."""

    node: str
    op: str
    kernel: int
    args: tuple[tuple, ...]


@dataclass(frozen=True)
class Binding:
    """A graph input or output: name, logical shape, dtype, storage."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    storage: int


class GraphModule:
    """A compiled network. Build with ``tiletune.graph.build``; load with ``graph.load``."""

    def __init__(self, kernels: list[Module], steps: list[Step], storage_sizes: list[int],
                 constants: list[np.ndarray], inputs: list[Binding], outputs: list[Binding],
                 meta: dict[str, Any] | None = None) -> None:
        self.kernels, self.steps = kernels, steps
        self.constants = [np.ascontiguousarray(c) for c in constants]
        self.inputs, self.outputs = inputs, outputs
        self.meta = dict(meta or {})
        self.storage_sizes = list(storage_sizes)
        # one 64-byte aligned block per storage
        self._storages = [_aligned(n) for n in storage_sizes]
        self._calls = [self.kernels[s.kernel].bind(*[self._array(a) for a in s.args])
                       for s in steps]
        self._in_views = [self._view(b.storage, b.shape, b.dtype) for b in inputs]
        self._out_views = [self._view(b.storage, b.shape, b.dtype) for b in outputs]
        self._threads = max((k.num_threads for k in kernels), default=1)

    # ------------------------------------------------------------------ buffers
    def _view(self, storage: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        buf = self._storages[storage]
        n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if n > buf.nbytes:
            raise GraphError(f"storage {storage} ({buf.nbytes} B) is too small for "
                             f"{dtype}{list(shape)}")
        return buf[:n].view(dtype).reshape(shape)

    def _array(self, arg: tuple) -> np.ndarray:
        if arg[0] == "buf":
            return self._view(arg[1], tuple(arg[2]), arg[3])
        return self.constants[arg[1]]

    @property
    def activation_bytes(self) -> int:
        """Bytes of the planned activation storages (inputs and outputs included)."""
        return sum(self.storage_sizes)

    # ------------------------------------------------------------------ running
    def _load_inputs(self, args: tuple, kwargs: dict) -> None:
        names = [b.name for b in self.inputs]
        if args and kwargs:
            raise ArgumentError("pass the inputs either by position or by name, not both")
        if kwargs:
            unknown = sorted(set(kwargs) - set(names))
            missing = [n for n in names if n not in kwargs]
            if unknown or missing:
                raise ArgumentError(f"graph inputs are {names}; got {sorted(kwargs)}")
            args = tuple(kwargs[n] for n in names)
        if len(args) != len(names):
            raise ArgumentError(f"the graph takes {len(names)} input(s) {names}, got {len(args)}")
        for b, view, x in zip(self.inputs, self._in_views, args):
            x = np.asarray(x)
            if x.shape != view.shape:
                raise ArgumentError(f"input {b.name!r}: expected shape {view.shape}, got "
                                    f"{x.shape}")
            if x.dtype != view.dtype:
                raise ArgumentError(f"input {b.name!r}: expected {view.dtype}, got {x.dtype}")
            np.copyto(view, x)

    def run(self, *args: Any, **inputs: Any) -> np.ndarray | list[np.ndarray]:
        """Run on the inputs (by position or by name); returns a copy of each output."""
        self._load_inputs(args, inputs)
        for call in self._calls:
            call()
        outs = [v.copy() for v in self._out_views]
        return outs[0] if len(outs) == 1 else outs

    __call__ = run

    def set_num_threads(self, n: int) -> None:
        """Threads of every kernel's parallel loops."""
        for k in self.kernels:
            k.set_num_threads(n)
        self._threads = n

    @property
    def num_threads(self) -> int:
        return self._threads

    def time(self, *args: Any, number: int = 10, repeat: int = 3, **inputs: Any) -> float:
        """Best mean seconds per whole-network call over ``repeat`` runs of ``number``."""
        self.run(*args, **inputs)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                for call in self._calls:
                    call()
            best = min(best, (time.perf_counter() - t0) / number)
        return best

    def profile(self, *args: Any, number: int = 10, **inputs: Any) -> Profile:
        """Time every kernel call (per fused operator), like TVM's debug executor."""
        self.run(*args, **inputs)
        times = np.zeros(len(self._calls))
        total = 0.0
        clock = time.perf_counter
        for _ in range(number):
            t_start = clock()
            for i, call in enumerate(self._calls):
                t0 = clock()
                call()
                times[i] += clock() - t0
            total += clock() - t_start
        return Profile([(s.node, s.op, t / number) for s, t in zip(self.steps, times)],
                       total / number)

    # ------------------------------------------------------------------ export / load
    def export(self, path: str | os.PathLike) -> None:
        """Write one file: every kernel's shared library, the plan and the constants."""
        path = os.fspath(path)
        plan = {
            "format": FORMAT, "version": FORMAT_VERSION, "meta": self.meta,
            "kernels": [f"kernels/k{i}.so" for i in range(len(self.kernels))],
            "steps": [{"node": s.node, "op": s.op, "kernel": s.kernel,
                       "args": [list(a) for a in s.args]} for s in self.steps],
            "storages": self.storage_sizes,
            "inputs": [b.__dict__ for b in self.inputs],
            "outputs": [b.__dict__ for b in self.outputs],
            "constants": len(self.constants),
        }
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            tmp_zip = os.path.join(tmp, "graph.tt")
            with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_STORED) as z:
                z.writestr("plan.json", json.dumps(plan, indent=1))
                for i, k in enumerate(self.kernels):
                    so = os.path.join(tmp, f"k{i}.so")
                    k.export_library(so)
                    z.write(so, f"kernels/k{i}.so")
                for i, c in enumerate(self.constants):
                    buf = io.BytesIO()
                    np.save(buf, c, allow_pickle=False)
                    z.writestr(f"constants/{i}.npy", buf.getvalue())
            os.replace(tmp_zip, path) if _same_fs(tmp, path) else _copy(tmp_zip, path)

    def __repr__(self) -> str:
        return (f"<tiletune.graph.GraphModule {self.meta.get('name', '')}: "
                f"{len(self.steps)} kernel calls, {len(self.kernels)} kernels, "
                f"{self.activation_bytes / 2**20:.1f} MiB activations>")


class Profile:
    """Per-node times of one profiled run (seconds); ``str()`` is a table."""

    def __init__(self, rows: list[tuple[str, str, float]], total: float) -> None:
        self.rows, self.total = rows, total

    @property
    def kernel_time(self) -> float:
        return sum(t for _, _, t in self.rows)

    @property
    def overhead(self) -> float:
        """Fraction of the wall time spent outside the kernels."""
        return max(0.0, 1.0 - self.kernel_time / self.total) if self.total else 0.0

    def by_op(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for _, op, t in self.rows:
            out[op] = out.get(op, 0.0) + t
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def __str__(self) -> str:
        width = max([len(n) for n, _, _ in self.rows] + [4])
        lines = [f"{'node':<{width}}  {'op':<16} {'ms':>9} {'%':>6}"]
        for n, op, t in self.rows:
            lines.append(f"{n:<{width}}  {op:<16} {t * 1e3:9.3f} {100 * t / self.total:6.1f}")
        lines.append(f"{'total (wall)':<{width}}  {'':<16} {self.total * 1e3:9.3f} "
                     f"{100.0:6.1f}")
        lines.append(f"outside kernels: {self.overhead:.2%}")
        lines.append("by op: " + ", ".join(f"{op} {t * 1e3:.2f} ms" for op, t in
                                           self.by_op().items()))
        return "\n".join(lines)


def load(path: str | os.PathLike) -> GraphModule:
    """Load a file written by ``GraphModule.export`` (runtime only: no compiler, no tuner)."""
    from tiletune.runtime.load import load_module
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TileTuneError(f"no compiled network at {path}")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise TileTuneError(f"{path} is not a tiletune compiled network (.tt): {e}") from None
    with z, tempfile.TemporaryDirectory() as tmp:
        try:
            plan = json.loads(z.read("plan.json"))
            if plan.get("format") != FORMAT or plan.get("version") != FORMAT_VERSION:
                raise TileTuneError(f"{path}: format {plan.get('format')} version "
                                    f"{plan.get('version')}; this runtime reads {FORMAT} "
                                    f"version {FORMAT_VERSION}")
            kernels = []
            for i, name in enumerate(plan["kernels"]):
                so = os.path.join(tmp, f"k{i}.so")
                with open(so, "wb") as f:
                    f.write(z.read(name))
                kernels.append(load_module(so))  # dlopen'd: the file may go away
            constants = [np.load(io.BytesIO(z.read(f"constants/{i}.npy")), allow_pickle=False)
                         for i in range(plan["constants"])]
        except (KeyError, ValueError, zipfile.BadZipFile) as e:
            raise TileTuneError(f"{path} is damaged: {type(e).__name__}: {e}") from None
    steps = [Step(s["node"], s["op"], s["kernel"], tuple(_arg(a) for a in s["args"]))
             for s in plan["steps"]]
    inputs = [_binding(b) for b in plan["inputs"]]
    outputs = [_binding(b) for b in plan["outputs"]]
    return GraphModule(kernels, steps, plan["storages"], constants, inputs, outputs,
                       plan.get("meta"))


def _arg(a: list) -> tuple:
    return ("buf", a[1], tuple(a[2]), a[3]) if a[0] == "buf" else ("const", a[1])


def _binding(b: dict) -> Binding:
    return Binding(b["name"], tuple(b["shape"]), b["dtype"], b["storage"])


def _aligned(nbytes: int, align: int = 64) -> np.ndarray:
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + nbytes]


def _same_fs(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(os.path.dirname(os.path.abspath(b))).st_dev
    except OSError:
        return False


def _copy(src: str, dst: str) -> None:
    import shutil
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
