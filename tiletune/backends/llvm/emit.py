"""LLVM IR as text: types, constants, intrinsic names and a small function builder.

Text is an order of magnitude faster to produce than ``llvmlite.ir``'s object builder, which
matters for big unrolled kernel bodies. SSA values are plain strings (``"%v12"``, ``"3"``).
"""
from __future__ import annotations

import math
import re
import struct
from typing import Any

import numpy as np

from tiletune.ir import dtype as dt

_SCALAR = {"bool": "i1", "int8": "i8", "uint8": "i8", "int16": "i16", "int32": "i32",
           "int64": "i64", "float32": "float", "float64": "double"}
_MANGLE = {"i1": "i1", "i8": "i8", "i16": "i16", "i32": "i32", "i64": "i64",
           "float": "f32", "double": "f64", "ptr": "p0"}


_NAME_RE = re.compile(r"[^A-Za-z0-9_]")


def value_name(name: str) -> str:
    """A readable LLVM value-name fragment for an IR name."""
    return _NAME_RE.sub("_", name)[:24] or "v"


def param_decl(buf: Any, name: str) -> str:
    """A kernel pointer parameter: noalias, nocapture, dereferenceable for its whole size."""
    nbytes = buf.size * elem_bytes(buf.dtype)
    deref = f" dereferenceable({nbytes})" if nbytes > 0 else ""
    return f"ptr noalias nocapture noundef{deref} {name}"


def ll_type(dtype: str) -> str:
    """Register type of a dtype: ``"float32x16" -> "<16 x float>"``, bool -> i1."""
    base, n = dt.split_lanes(dtype)
    t = _SCALAR[base]
    return t if n == 1 else f"<{n} x {t}>"


def mem_elem(dtype: str) -> str:
    """Element type of a dtype in memory (bool is stored as i8)."""
    t = _SCALAR[dt.element(dtype)]
    return "i8" if t == "i1" else t


def vec(t: str, n: int) -> str:
    return t if n == 1 else f"<{n} x {t}>"


def elem_bytes(dtype: str) -> int:
    return max(1, dt.bits(dtype) // 8)


def mangle(t: str) -> str:
    """Intrinsic overload suffix of an LLVM type: ``<16 x float>`` -> ``v16f32``."""
    if t.startswith("<"):
        n, _, e = t[1:-1].partition(" x ")
        return f"v{n}{_MANGLE[e]}"
    return _MANGLE[t]


def float_lit(v: float, f32: bool) -> str:
    if f32:
        v = float(np.float32(v)) if math.isfinite(v) else v
    return f"0x{struct.unpack('<Q', struct.pack('<d', v))[0]:016X}"


def scalar_lit(value: object, dtype: str) -> str:
    """A scalar constant literal (no type prefix) of ``dtype``."""
    base = dt.element(dtype)
    if base == "bool":
        return "true" if value else "false"
    if base.startswith("float"):
        return float_lit(float(value), base == "float32")
    b = dt.bits(base)
    v = int(value) & ((1 << b) - 1)
    return str(v - (1 << b) if v >> (b - 1) else v)


def const_lit(value: object, dtype: str) -> str:
    """A constant of ``dtype`` (a splat when ``dtype`` is a vector), without its type."""
    lit = scalar_lit(value, dtype)
    n = dt.lanes(dtype)
    if n == 1:
        return lit
    if lit in ("0", "false") or lit == "0x0000000000000000":
        return "zeroinitializer"
    return f"splat ({_SCALAR[dt.element(dtype)]} {lit})"


def vector_lit(values: list, elem_dtype: str) -> str:
    t = _SCALAR[dt.element(elem_dtype)]
    return "<" + ", ".join(f"{t} {scalar_lit(v, elem_dtype)}" for v in values) + ">"


def string_lit(data: bytes) -> str:
    """``c"..."`` initializer for a byte string (NUL-terminated by the caller)."""
    return 'c"' + data.decode("latin-1").translate(_ESCAPE) + '"'


_ESCAPE = {i: (chr(i) if 32 <= i < 127 and chr(i) not in '"\\' else f"\\{i:02X}")
           for i in range(256)}


class ModuleText:
    """Accumulates declarations, globals and functions of one LLVM module."""

    def __init__(self) -> None:
        self.decls: dict[str, str] = {}
        self.globals: list[str] = []
        self.functions: list[str] = []
        self.libs: set[str] = set()  # native libraries to link: "gomp", "mvec"

    def declare(self, name: str, line: str) -> str:
        """Register ``declare ...`` for ``@name`` once; returns ``@name``."""
        if name not in self.decls:
            self.decls[name] = line
        return "@" + name

    def intrinsic(self, base: str, ret: str, args: list[str], overloads: list[str]) -> str:
        """Declare ``llvm.<base>.<mangled overloads>`` and return its ``@name``."""
        name = ".".join([f"llvm.{base}"] + [mangle(t) for t in overloads])
        return self.declare(name, f"declare {ret} @{name}({', '.join(args)})")

    def text(self) -> str:
        parts = list(self.decls.values()) + self.globals + self.functions
        return "\n".join(parts) + "\n"


class FunctionText:
    """Instructions of one function; fresh names, basic blocks, entry-block allocas."""

    def __init__(self, prefix: str = "v") -> None:
        self.body: list[str] = []
        self.allocas: list[str] = []
        self.block = "entry"
        self.memo: dict[int, tuple[object, str]] = {}
        # structural CSE of pure index arithmetic, valid in the scope that computed it and
        # every scope nested in it (those blocks are dominated by the computing block)
        self.pure: dict[object, str] = {}
        self._pure_scopes: list[list[object]] = [[]]
        self._n = 0
        self._prefix = prefix

    def push_scope(self) -> None:
        self._pure_scopes.append([])

    def pop_scope(self) -> None:
        for key in self._pure_scopes.pop():
            self.pure.pop(key, None)
        self.memo.clear()

    def remember(self, key: object, value: str) -> None:
        self.pure[key] = value
        self._pure_scopes[-1].append(key)

    def fresh(self, hint: str = "") -> str:
        self._n += 1
        return f"%{hint or self._prefix}{self._n}"

    def label(self, hint: str = "L") -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def op(self, text: str, hint: str = "") -> str:
        """Append ``%new = text``; returns ``%new``."""
        self._n += 1
        name = f"%{hint or self._prefix}{self._n}"
        self.body.append(f"  {name} = {text}")
        return name

    def emit(self, text: str) -> None:
        self.body.append("  " + text)

    def start_block(self, label: str) -> None:
        self.body.append(f"{label}:")
        self.block = label
        self.memo.clear()

    def alloca(self, ty: str, align: int, hint: str = "buf") -> str:
        name = self.fresh(hint)
        self.allocas.append(f"  {name} = alloca {ty}, align {align}")
        return name

    def define(self, header: str) -> str:
        """The whole ``define`` with entry allocas first; ``header`` excludes the brace."""
        return "\n".join([header + " {", "entry:", *self.allocas, *self.body, "}\n"])
