"""VTA instructions and micro-ops: immutable dataclasses validated against a VTAConfig.

Every instruction carries the four dependency flags (``pop_prev``, ``pop_next``,
``push_prev``, ``push_next``) and the configuration it was built for (keyword-only, not part
of equality or repr).  Fields are checked when the instruction is constructed: a value that
does not fit its bit field raises ``VTAError`` naming the field and its range.

Routing (``insn.module``): LOAD of INP/WGT runs on the load module, STORE on the store
module, everything else (GEMM, ALU, FINISH, LOAD of UOP/ACC/ACC_8BIT) on the compute module.
The load module has no previous stage and the store module no next stage, so those flags
are rejected there.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import ClassVar, Union

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.errors import VTAError


class Opcode(IntEnum):
    LOAD = 0
    STORE = 1
    GEMM = 2
    FINISH = 3
    ALU = 4


class MemType(IntEnum):
    """Memory ids; ACC_8BIT loads int8 from DRAM and sign-extends it into ACC."""

    UOP = 0
    WGT = 1
    INP = 2
    ACC = 3
    OUT = 4
    ACC_8BIT = 5


class AluOp(IntEnum):
    """ALU opcodes: fsim's numbering (MUL=4) plus SHL=5.

    SHR with a negative shift amount shifts left (as in fsim and Chisel).
    """

    MIN = 0
    MAX = 1
    ADD = 2
    SHR = 3
    MUL = 4
    SHL = 5


class HardwareModule(IntEnum):
    """The three execution modules, in pipeline order (load -> compute -> store)."""

    LOAD = 0
    COMPUTE = 1
    STORE = 2

    @property
    def label(self) -> str:
        return self.name.lower()


FLAG_NAMES = ("pop_prev", "pop_next", "push_prev", "push_next")


def _check_range(what: str, name: str, value: object, width: int, signed: bool = False) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise VTAError(f"{what} field {name} must be an int, got {value!r}") from None
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if not lo <= v <= hi:
        kind = "signed " if signed else ""
        raise VTAError(f"{what} field {name}={v} does not fit its {width}-bit {kind}field "
                       f"(allowed {lo}..{hi})")
    return v


@dataclass(frozen=True, kw_only=True)
class _Insn:
    """Fields shared by every instruction: dependency flags and the configuration."""

    OPCODE: ClassVar[Opcode]
    LAYOUT: ClassVar[str]
    SIGNED: ClassVar[frozenset[str]] = frozenset()

    pop_prev: bool = False
    pop_next: bool = False
    push_prev: bool = False
    push_next: bool = False
    config: VTAConfig = field(default=DEFAULT_CONFIG, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.config, VTAConfig):
            raise VTAError(f"config must be a VTAConfig, got {type(self.config).__name__}")
        what = self.OPCODE.name
        for name, (_, width) in self.config.layout(self.LAYOUT).items():
            if hasattr(self, name):
                v = _check_range(what, name, getattr(self, name), width, name in self.SIGNED)
                is_flag = isinstance(getattr(type(self), name, None), bool)
                object.__setattr__(self, name, bool(v) if is_flag else v)
        self._check()
        module = self.module
        if module is HardwareModule.LOAD and (self.pop_prev or self.push_prev):
            raise VTAError(f"{self.head()} runs on the load module, which has no previous "
                           "stage: pop_prev/push_prev must be False")
        if module is HardwareModule.STORE and (self.pop_next or self.push_next):
            raise VTAError(f"{self.head()} runs on the store module, which has no next "
                           "stage: pop_next/push_next must be False")

    def _check(self) -> None:
        """Checks beyond field widths (overridden)."""

    @property
    def module(self) -> HardwareModule:
        return HardwareModule.COMPUTE

    def head(self) -> str:
        return self.OPCODE.name

    def with_flags(self, **flags: bool) -> Instruction:
        """A copy with some dependency flags changed."""
        bad = set(flags) - set(FLAG_NAMES)
        if bad:
            raise VTAError(f"unknown dependency flag(s) {sorted(bad)}; use {FLAG_NAMES}")
        return replace(self, **flags)  # type: ignore[return-value]

    def raw_fields(self) -> dict[str, int]:
        """Field values as ints keyed by layout name; fields the class lacks are absent (0)."""
        out = {"opcode": int(self.OPCODE)}
        for name in self.config.layout(self.LAYOUT):
            if name != "opcode" and hasattr(self, name):
                out[name] = int(getattr(self, name))
        return out

    @classmethod
    def from_raw(cls, raw: dict[str, int], config: VTAConfig) -> Instruction:
        """Build from decoded field values (the inverse of ``raw_fields``)."""
        names = {f.name for f in fields(cls) if f.init}
        kwargs = {k: v for k, v in raw.items() if k in names}
        return cls(config=config, **kwargs)  # type: ignore[return-value]

    def _flags_str(self) -> str:
        on = [n for n in FLAG_NAMES if getattr(self, n)]
        return f" [{' '.join(on)}]" if on else ""


@dataclass(frozen=True)
class VTALoad(_Insn):
    """2-D strided DMA from DRAM into an SRAM, with zero padding around the block.

    Reads ``y_size`` rows of ``x_size`` elements (row stride ``x_stride``) starting at DRAM
    element ``dram_base`` and writes a contiguous ``(y_pad_0 + y_size + y_pad_1) x (x_pad_0 +
    x_size + x_pad_1)`` block at ``sram_base``, padding with zeros.  ``x_size == 0`` is a no-op
    (a NOP that only carries dependency flags).
    """

    OPCODE: ClassVar[Opcode] = Opcode.LOAD
    LAYOUT: ClassVar[str] = "mem"

    mem: MemType
    sram_base: int
    dram_base: int
    y_size: int
    x_size: int
    x_stride: int
    y_pad_0: int = 0
    y_pad_1: int = 0
    x_pad_0: int = 0
    x_pad_1: int = 0

    def _check(self) -> None:
        object.__setattr__(self, "mem", _enum(MemType, self.mem, "LOAD field mem"))
        if self.mem is MemType.OUT:
            raise VTAError("LOAD cannot target OUT (OUT is only read by STORE)")

    @property
    def module(self) -> HardwareModule:
        if self.mem in (MemType.INP, MemType.WGT):
            return HardwareModule.LOAD
        return HardwareModule.COMPUTE

    @property
    def pad(self) -> tuple[int, int, int, int]:
        """(y_pad_0, y_pad_1, x_pad_0, x_pad_1)."""
        return (self.y_pad_0, self.y_pad_1, self.x_pad_0, self.x_pad_1)

    @property
    def sram_size(self) -> int:
        """SRAM entries written (0 for a NOP)."""
        if self.x_size == 0:
            return 0
        p = self.pad
        return (p[0] + self.y_size + p[1]) * (p[2] + self.x_size + p[3])

    def head(self) -> str:
        return f"LOAD {self.mem.name}"

    def __str__(self) -> str:
        if self.x_size == 0:
            return f"{self.head()} nop{self._flags_str()}"
        pad = f" pad=({','.join(map(str, self.pad))})" if any(self.pad) else ""
        return (f"LOAD {self.mem.name} sram={self.sram_base} dram={self.dram_base} "
                f"y={self.y_size} x={self.x_size} stride={self.x_stride}{pad}{self._flags_str()}")


@dataclass(frozen=True)
class VTAStore(_Insn):
    """2-D strided DMA of OUT (the ACC entries truncated to the output width) to DRAM.

    SRAM entries ``sram_base .. sram_base + y_size*x_size`` go to DRAM rows of ``x_size``
    elements at ``dram_base + y*x_stride``.  No padding.  ``x_size == 0`` is a no-op.
    """

    OPCODE: ClassVar[Opcode] = Opcode.STORE
    LAYOUT: ClassVar[str] = "mem"

    sram_base: int
    dram_base: int
    y_size: int
    x_size: int
    x_stride: int
    mem: MemType = MemType.OUT

    def _check(self) -> None:
        object.__setattr__(self, "mem", _enum(MemType, self.mem, "STORE field mem"))
        if self.mem is not MemType.OUT:
            raise VTAError(f"STORE only supports memory type OUT, got {self.mem.name}")

    @property
    def module(self) -> HardwareModule:
        return HardwareModule.STORE

    @property
    def sram_size(self) -> int:
        return self.y_size * self.x_size

    @classmethod
    def from_raw(cls, raw: dict[str, int], config: VTAConfig) -> Instruction:
        if any(raw[p] for p in ("y_pad_0", "y_pad_1", "x_pad_0", "x_pad_1")):
            raise VTAError("STORE does not support padding (pad fields must be 0)")
        return super().from_raw(raw, config)

    def head(self) -> str:
        return f"STORE {self.mem.name}"

    def __str__(self) -> str:
        if self.x_size == 0:
            return f"{self.head()} nop{self._flags_str()}"
        return (f"STORE {self.mem.name} sram={self.sram_base} dram={self.dram_base} "
                f"y={self.y_size} x={self.x_size} stride={self.x_stride}{self._flags_str()}")


@dataclass(frozen=True)
class _Loop(_Insn):
    """The micro-coded two-level loop shared by GEMM and ALU.

    ``for i < iter_out: for j < iter_in: for k in [uop_bgn, uop_end)``, with indices
    ``uop.dst + i*dst_factor_out + j*dst_factor_in`` (likewise src, wgt).
    """

    uop_bgn: int
    uop_end: int
    iter_out: int = 1
    iter_in: int = 1
    dst_factor_out: int = 0
    dst_factor_in: int = 0
    src_factor_out: int = 0
    src_factor_in: int = 0

    def _check(self) -> None:
        if self.uop_end < self.uop_bgn:
            raise VTAError(f"{self.OPCODE.name}: uop_end={self.uop_end} < "
                           f"uop_bgn={self.uop_bgn}")
        if self.uop_end > self.config.uop_depth:
            raise VTAError(f"{self.OPCODE.name}: uop_end={self.uop_end} exceeds the UOP "
                           f"buffer depth {self.config.uop_depth}")

    @property
    def iterations(self) -> int:
        """Uop-iterations: iter_out * iter_in * (uop_end - uop_bgn)."""
        return self.iter_out * self.iter_in * (self.uop_end - self.uop_bgn)

    def _loop_str(self) -> str:
        return (f"uop=[{self.uop_bgn},{self.uop_end}) iter=({self.iter_out},{self.iter_in}) "
                f"dst=({self.dst_factor_out},{self.dst_factor_in}) "
                f"src=({self.src_factor_out},{self.src_factor_in})")


@dataclass(frozen=True)
class Gemm(_Loop):
    """ACC[dst] += INP[src] @ WGT[wgt].T over the loop; ``reset`` zeroes ACC[dst] instead."""

    OPCODE: ClassVar[Opcode] = Opcode.GEMM
    LAYOUT: ClassVar[str] = "gemm"

    wgt_factor_out: int = 0
    wgt_factor_in: int = 0
    reset: bool = False

    def __str__(self) -> str:
        head = "GEMM reset" if self.reset else "GEMM"
        return (f"{head} {self._loop_str()} wgt=({self.wgt_factor_out},{self.wgt_factor_in})"
                f"{self._flags_str()}")


@dataclass(frozen=True)
class Alu(_Loop):
    """ACC[dst] = op(ACC[dst], imm if use_imm else ACC[src]) element-wise, over the loop."""

    OPCODE: ClassVar[Opcode] = Opcode.ALU
    LAYOUT: ClassVar[str] = "alu"
    SIGNED: ClassVar[frozenset[str]] = frozenset({"imm"})

    op: AluOp = AluOp.ADD
    use_imm: bool = False
    imm: int = 0

    def _check(self) -> None:
        object.__setattr__(self, "op", _enum(AluOp, self.op, "ALU field op"))
        super()._check()

    def head(self) -> str:
        return f"ALU {self.op.name}"

    def __str__(self) -> str:
        operand = f" imm={self.imm}" if self.use_imm else ""
        return f"ALU {self.op.name}{operand} {self._loop_str()}{self._flags_str()}"


@dataclass(frozen=True)
class Finish(_Insn):
    """Ends the run (sets the done flag)."""

    OPCODE: ClassVar[Opcode] = Opcode.FINISH
    LAYOUT: ClassVar[str] = "gemm"

    def __str__(self) -> str:
        return f"FINISH{self._flags_str()}"


Instruction = Union[VTALoad, VTAStore, Gemm, Alu, Finish]
INSTRUCTION_CLASSES: dict[Opcode, type] = {
    c.OPCODE: c for c in (VTALoad, VTAStore, Gemm, Alu, Finish)
}


@dataclass(frozen=True)
class Uop:
    """A micro-op: ACC index ``dst``, ``src`` (INP for GEMM, ACC for ALU), WGT index ``wgt``."""

    dst: int
    src: int
    wgt: int = 0
    config: VTAConfig = field(default=DEFAULT_CONFIG, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        for name, (_, width) in self.config.layout("uop").items():
            object.__setattr__(self, name, _check_range("UOP", name, getattr(self, name), width))

    def __str__(self) -> str:
        return f"uop(dst={self.dst}, src={self.src}, wgt={self.wgt})"


def _enum(cls: type[IntEnum], value: object, what: str) -> IntEnum:
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(f"{m.name}={m.value}" for m in cls)
        raise VTAError(f"{what}={value!r} is not one of {names}") from None
