"""What the runtime knows about a compiled kernel: its arguments and entry points.

This is also the metadata saved inside an exported ``.so`` (as JSON in the NUL-terminated
byte array ``METADATA_SYMBOL``), so a library loads without the compiler.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METADATA_SYMBOL = "__tiletune_metadata"
METADATA_VERSION = 1


@dataclass(frozen=True)
class ArgSpec:
    """One kernel argument: a C-contiguous array of ``shape`` and ``dtype``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    output: bool = False  # written by the kernel

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.np_dtype.itemsize

    def describe(self) -> str:
        return f"{self.dtype} array of shape {self.shape}"


@dataclass(frozen=True)
class KernelInfo:
    """Signature and entry-point symbols of a compiled kernel."""

    name: str  # the kernel's name (PrimFunc name)
    symbol: str  # void symbol(ptr, ...)
    args: tuple[ArgSpec, ...]
    time_symbol: str | None = None  # double time_symbol(ptr, ..., i64 number)
    threads_symbol: str | None = None  # i32 global: threads per parallel region
    parallel: bool = False
    ir: str = ""  # the printed loop nest
    target: str = "llvm"
    extra: dict = field(default_factory=dict)  # e.g. {"cpu": "znver5"}

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.output)

    def to_dict(self) -> dict[str, Any]:
        return {"version": METADATA_VERSION, "name": self.name, "symbol": self.symbol,
                "args": [{"name": a.name, "dtype": a.dtype, "shape": list(a.shape),
                          "output": a.output} for a in self.args],
                "time_symbol": self.time_symbol, "threads_symbol": self.threads_symbol,
                "parallel": self.parallel, "ir": self.ir, "target": self.target,
                "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelInfo:
        args = tuple(ArgSpec(a["name"], a["dtype"], tuple(int(s) for s in a["shape"]),
                             bool(a["output"])) for a in d["args"])
        return cls(d["name"], d["symbol"], args, d.get("time_symbol"), d.get("threads_symbol"),
                   bool(d.get("parallel", False)), d.get("ir", ""), d.get("target", "llvm"),
                   dict(d.get("extra", {})))

    def to_json(self, **more: Any) -> str:
        return json.dumps({**self.to_dict(), **more})
