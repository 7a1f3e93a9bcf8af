"""Recognising the statements of a VTA loop nest: GEMM, reset, ALU chains, DMA copies.

Each innermost nest of the lowered loop nest ends in one Store; its value says which
hardware operation it is (TVM's tensor intrinsics and ``InjectALUIntrin``)::

    acc[..] = 0                                              GEMM reset
    acc[..] = acc[..] + int32(inp[..]) * int32(wgt[..])      GEMM
    sram[..] = G[..]  |  select(c, G[..], 0)                 LOAD (zero padding where not c)
    acc2[..] = min(max(acc[..] // 256, 0), 127)              ALU chain: SHR 8, MAX 0, MIN 127
    out[..] = int8(acc[..])                                  STORE (keeps the low 8 bits)

An ALU chain applies one operation after the other to a *base* operand, each with an
immediate or another ACC operand: ``+ c`` / ``- c`` (ADD), ``* c`` (MUL), ``// 2**k`` (SHR k),
``min``/``max`` (MIN/MAX); ``+``, ``*``, ``min``, ``max`` with a second ACC tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

from tiletune.backends.vta.isa import AluOp
from tiletune.compiler.arith import const_int
from tiletune.errors import VTAError
from tiletune.ir import dtype as dt
from tiletune.ir.expr import Binary, Cast, Const, Expr, Load, Select, TensorRead


@dataclass(frozen=True)
class Gemm:
    acc: Load
    inp: Load
    wgt: Load


@dataclass(frozen=True)
class AluStep:
    op: AluOp
    imm: int | None = None
    src: Load | None = None


@dataclass(frozen=True)
class Copy:
    """A DMA-able copy: ``source`` (a global buffer) where ``cond`` holds, else zero."""

    source: Load
    cond: Expr | None


def _strip_cast(e: Expr) -> Expr:
    return e.a if isinstance(e, Cast) else e


def match_gemm(acc_buffer: object, value: Expr) -> Gemm | None:
    """``acc + int32(x) * int32(y)`` with ``acc`` a load of ``acc_buffer`` (any order)."""
    if not (isinstance(value, Binary) and value.op == "add"):
        return None
    for acc, prod in ((value.a, value.b), (value.b, value.a)):
        if not (isinstance(acc, Load) and acc.buffer is acc_buffer):
            continue
        if not (isinstance(prod, Binary) and prod.op == "mul"):
            return None
        x, y = _strip_cast(prod.a), _strip_cast(prod.b)
        if not (isinstance(x, Load) and isinstance(y, Load)):
            return None
        scopes = (x.buffer.scope, y.buffer.scope)
        if scopes == ("vta.wgt", "vta.inp"):
            x, y = y, x
        elif scopes != ("vta.inp", "vta.wgt"):
            raise VTAError(f"GEMM operands must come from vta.inp and vta.wgt buffers, got "
                           f"{x.buffer.name} ({x.buffer.scope}) and {y.buffer.name} "
                           f"({y.buffer.scope})")
        return Gemm(acc, x, y)
    return None


def is_reset(value: Expr) -> bool:
    return isinstance(value, Const) and value.value == 0


def match_copy(value: Expr) -> Copy | None:
    """``G[..]``, ``cast(G[..])`` or ``select(c, G[..], 0)`` with G a global buffer."""
    cond = None
    if isinstance(value, Select):
        if not (isinstance(value.b, Const) and value.b.value == 0):
            return None
        cond, value = value.cond, value.a
    value = _strip_cast(value)
    if isinstance(value, Load) and value.buffer.scope == "global":
        return Copy(value, cond)
    return None


_IMM_OPS = {"add": AluOp.ADD, "sub": AluOp.ADD, "mul": AluOp.MUL, "min": AluOp.MIN,
            "max": AluOp.MAX, "floordiv": AluOp.SHR}
_SRC_OPS = {"add": AluOp.ADD, "mul": AluOp.MUL, "min": AluOp.MIN, "max": AluOp.MAX}
_COMMUTATIVE = ("add", "mul", "min", "max")


def _imm_step(op: str, c: int, e: Expr) -> AluStep:
    if op == "sub":
        c = -c
    if op == "floordiv":
        if c <= 0 or c & (c - 1):
            raise VTAError(f"{e!r}: the ALU divides only by powers of two (SHR); {c} is not one")
        c = c.bit_length() - 1
    return AluStep(_IMM_OPS[op], imm=c)


def alu_chain(value: Expr) -> tuple[Load, list[AluStep]]:
    """The base operand and the ALU steps that compute ``value`` from it.

    Works on lowered loads and on the DSL's tensor reads alike (the schedule check uses it
    before lowering).
    """
    leaf = (Load, TensorRead)
    e = value
    if isinstance(e, Cast) and dt.is_int(e.dtype) and dt.is_int(e.a.dtype):
        if dt.element(e.a.dtype) != dt.element(e.dtype):
            raise VTAError(f"{value!r}: ACC holds int32; no cast to {e.dtype} inside the ACC "
                           "(the final cast to int8 happens in the STORE)")
        e = e.a
    if isinstance(e, leaf):
        return e, []  # type: ignore[return-value]
    if not isinstance(e, Binary):
        raise VTAError(f"{value!r} cannot be computed by the VTA ALU (it supports +, - const, "
                       "* , // 2**k, min and max on int32 ACC values)")
    if e.op not in _IMM_OPS and e.op not in _SRC_OPS:
        raise VTAError(f"{value!r}: '{e.op}' has no VTA ALU instruction (the ALU computes "
                       "+, - const, *, // 2**k, min and max)")
    ca, cb = const_int(e.b), const_int(e.a)
    if ca is not None and e.op in _IMM_OPS:
        base, steps = alu_chain(e.a)
        return base, steps + [_imm_step(e.op, ca, value)]
    if cb is not None and e.op in _COMMUTATIVE:
        base, steps = alu_chain(e.b)
        return base, steps + [_imm_step(e.op, cb, value)]
    if e.op in _SRC_OPS:
        if isinstance(e.b, leaf):
            base, steps = alu_chain(e.a)
            return base, steps + [AluStep(_SRC_OPS[e.op], src=e.b)]  # type: ignore[arg-type]
        if isinstance(e.a, leaf):
            base, steps = alu_chain(e.b)
            return base, steps + [AluStep(_SRC_OPS[e.op], src=e.a)]  # type: ignore[arg-type]
    raise VTAError(f"{value!r} cannot be computed by the VTA ALU: '{e.op}' needs one "
                   "operand to be a constant or an ACC tensor (no subtraction of tensors, "
                   "division only by powers of two)")
