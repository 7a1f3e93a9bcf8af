"""Data types: names, lanes and the promotion rules of the DSL.

A dtype is a plain string: a scalar name ("float32", "int8", "bool", ...) optionally followed
by ``x<lanes>`` for a vector ("float32x16"). Scalars never mix silently: the DSL raises when
two operands disagree, and a Python number adopts the dtype of the expression it meets.
"""
from __future__ import annotations

import functools

from tiletune.errors import DSLError

SCALARS = ("bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64")
INDEX = "int64"  # dtype of loop and axis variables

_BITS = {"bool": 1, "int8": 8, "uint8": 8, "int16": 16, "int32": 32, "int64": 64,
         "float32": 32, "float64": 64}


@functools.cache
def split_lanes(dtype: str) -> tuple[str, int]:
    """``"float32x16" -> ("float32", 16)``; ``"int8" -> ("int8", 1)``."""
    if "x" in dtype:
        base, lanes = dtype.rsplit("x", 1)
        return base, int(lanes)
    return dtype, 1


@functools.cache
def element(dtype: str) -> str:
    return split_lanes(dtype)[0]


@functools.cache
def lanes(dtype: str) -> int:
    return split_lanes(dtype)[1]


@functools.cache
def with_lanes(dtype: str, n: int) -> str:
    base = element(dtype)
    return base if n == 1 else f"{base}x{n}"


def check(dtype: str) -> str:
    """Validate and normalise a dtype name given by a user (numpy dtypes accepted)."""
    name = str(getattr(dtype, "name", dtype))
    if name not in SCALARS:
        raise DSLError(f"unsupported dtype {name!r}; use one of {', '.join(SCALARS)}")
    return name


@functools.cache
def is_float(dtype: str) -> bool:
    return element(dtype).startswith("float")


@functools.cache
def is_int(dtype: str) -> bool:
    base = element(dtype)
    return base.startswith("int") or base.startswith("uint")


@functools.cache
def is_signed(dtype: str) -> bool:
    return element(dtype).startswith("int")


@functools.cache
def is_bool(dtype: str) -> bool:
    return element(dtype) == "bool"


@functools.cache
def bits(dtype: str) -> int:
    return _BITS[element(dtype)]


@functools.cache
def nbytes(dtype: str) -> int:
    return max(1, _BITS[element(dtype)] // 8) * lanes(dtype)


@functools.cache
def int_range(dtype: str) -> tuple[int, int]:
    b = bits(dtype)
    if is_bool(dtype):
        return 0, 1
    if is_signed(dtype):
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return 0, (1 << b) - 1
