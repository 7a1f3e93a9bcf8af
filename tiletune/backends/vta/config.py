"""The VTA hardware configuration: data widths, buffer sizes, derived depths and ISA layouts.

Everything the ISA depends on is derived here from the log sizes, as in VTA's
``hw_spec_const.h``: change ``log_acc_buff_size`` and the ACC depth, the GEMM/ALU factor
fields and the micro-op ``dst`` field all change with it.  Instruction layouts pack fields
from bit 0 upward the way C bit-fields of ``uint64_t`` do: a field that does not fit in what
is left of the current 64-bit word starts at the next one (fields never straddle the
boundary); a configuration whose fields do not fit in 128 bits is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tiletune.errors import VTAError

INSN_BITS = 128
INSN_BYTES = INSN_BITS // 8
WORD_BITS = 64
UOP_BITS = 32
OPCODE_BITS = 3
MEM_ID_BITS = 3
ALU_OP_BITS = 3
SRAM_ADDR_BITS = 16
DRAM_ADDR_BITS = 32
SIZE_BITS = 16
STRIDE_BITS = 16
PAD_BITS = 4

Field = tuple[str, int]
Layout = dict[str, tuple[int, int]]  # field name -> (lsb, width); names starting "_" are padding

_HEADER: tuple[Field, ...] = (
    ("opcode", OPCODE_BITS), ("pop_prev", 1), ("pop_next", 1), ("push_prev", 1), ("push_next", 1),
)


def pack_fields(fields: tuple[Field, ...], what: str, total: int = INSN_BITS) -> Layout:
    """Place ``fields`` from bit 0 upward; a field never straddles a 64-bit word boundary."""
    layout: Layout = {}
    pos = 0
    for name, width in fields:
        if width > WORD_BITS:
            raise VTAError(f"{what}: field {name} is {width} bits, wider than a 64-bit word")
        if pos // WORD_BITS != (pos + width - 1) // WORD_BITS:
            pos = (pos // WORD_BITS + 1) * WORD_BITS
        layout[name] = (pos, width)
        pos += width
    if pos > total:
        raise VTAError(f"{what} needs {pos} bits with this configuration; the limit is {total}")
    return layout


@dataclass(frozen=True)
class VTAConfig:
    """A VTA configuration (defaults: the ``vta_config.json`` of apache/tvm-vta, Pynq timing).

    Data widths and buffer sizes are logs base 2 (widths in bits, sizes in bytes).  Timing:
    ``bus_width`` bytes per cycle on the DRAM bus, ``dram_latency`` cycles per DMA transfer,
    ``queue_depth`` entries per command queue, ``token_queue_depth`` per dependency queue,
    GEMM/ALU initiation intervals and pipeline fill latencies in cycles.
    """

    log_inp_width: int = 3
    log_wgt_width: int = 3
    log_acc_width: int = 5
    log_batch: int = 0
    log_block_in: int = 4
    log_block_out: int = 4
    log_uop_buff_size: int = 15
    log_inp_buff_size: int = 15
    log_wgt_buff_size: int = 18
    log_acc_buff_size: int = 17
    loop_iter_width: int = 14
    alu_imm_width: int = 16
    bus_width: int = 8
    dram_latency: int = 64
    queue_depth: int = 8
    token_queue_depth: int = 8
    gemm_ii: int = 1
    alu_ii: int = 2
    gemm_fill: int = 4
    alu_fill: int = 4

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise VTAError(f"VTAConfig.{name} must be a non-negative int, got {value!r}")
        for name in ("bus_width", "queue_depth", "token_queue_depth", "gemm_ii", "alu_ii",
                     "loop_iter_width", "alu_imm_width"):
            if getattr(self, name) < 1:
                raise VTAError(f"VTAConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_inp_width", "log_wgt_width"):
            if getattr(self, name) not in (3, 4):
                raise VTAError(f"VTAConfig.{name} must be 3 (int8) or 4 (int16)")
        if self.log_acc_width not in (5, 6):
            raise VTAError("VTAConfig.log_acc_width must be 5 (int32) or 6 (int64)")
        for buf in ("inp", "wgt", "acc", "uop"):
            log_depth = getattr(self, f"log_{buf}_depth")
            if not 0 <= log_depth <= SRAM_ADDR_BITS:
                raise VTAError(f"{buf.upper()} buffer depth 2^{log_depth} is not addressable "
                               f"with a {SRAM_ADDR_BITS}-bit sram_base")
        pack_fields(self.uop_fields, "a micro-op", UOP_BITS)
        for kind in ("mem", "gemm", "alu"):
            self.layout(kind)

    # -- data shapes ---------------------------------------------------------------------
    @property
    def batch(self) -> int:
        return 1 << self.log_batch

    @property
    def block_in(self) -> int:
        return 1 << self.log_block_in

    @property
    def block_out(self) -> int:
        return 1 << self.log_block_out

    @property
    def inp_dtype(self) -> np.dtype:
        return np.dtype(f"int{1 << self.log_inp_width}")

    @property
    def wgt_dtype(self) -> np.dtype:
        return np.dtype(f"int{1 << self.log_wgt_width}")

    @property
    def acc_dtype(self) -> np.dtype:
        return np.dtype(f"int{1 << self.log_acc_width}")

    @property
    def out_dtype(self) -> np.dtype:
        """OUT has the input width (int8 by default)."""
        return self.inp_dtype

    @property
    def inp_elem_bytes(self) -> int:
        return self.batch * self.block_in * self.inp_dtype.itemsize

    @property
    def wgt_elem_bytes(self) -> int:
        return self.block_out * self.block_in * self.wgt_dtype.itemsize

    @property
    def acc_elem_bytes(self) -> int:
        return self.batch * self.block_out * self.acc_dtype.itemsize

    # -- buffer depths ---------------------------------------------------------------------
    @property
    def log_inp_depth(self) -> int:
        return self.log_inp_buff_size - _log2(self.inp_elem_bytes)

    @property
    def log_wgt_depth(self) -> int:
        return self.log_wgt_buff_size - _log2(self.wgt_elem_bytes)

    @property
    def log_acc_depth(self) -> int:
        return self.log_acc_buff_size - _log2(self.acc_elem_bytes)

    @property
    def log_uop_depth(self) -> int:
        return self.log_uop_buff_size - _log2(UOP_BITS // 8)

    @property
    def inp_depth(self) -> int:
        return 1 << self.log_inp_depth

    @property
    def wgt_depth(self) -> int:
        return 1 << self.log_wgt_depth

    @property
    def acc_depth(self) -> int:
        return 1 << self.log_acc_depth

    @property
    def out_depth(self) -> int:
        """OUT holds one int8 element per ACC element (2^(acc_buff + out_w - acc_w) bytes)."""
        return self.acc_depth

    @property
    def uop_depth(self) -> int:
        return 1 << self.log_uop_depth

    # -- ISA layouts ---------------------------------------------------------------------
    @property
    def uop_fields(self) -> tuple[Field, ...]:
        """Micro-op fields: dst (ACC), src (INP for GEMM, ACC for ALU), wgt (WGT)."""
        src = max(self.log_inp_depth, self.log_acc_depth)
        return (("dst", self.log_acc_depth), ("src", src), ("wgt", self.log_wgt_depth))

    def fields(self, kind: str) -> tuple[Field, ...]:
        """The ordered (name, width) fields of a layout kind: mem, gemm, alu or uop."""
        if kind == "uop":
            return self.uop_fields
        if kind == "mem":
            return _HEADER + (
                ("mem", MEM_ID_BITS), ("sram_base", SRAM_ADDR_BITS),
                ("dram_base", DRAM_ADDR_BITS), ("y_size", SIZE_BITS), ("x_size", SIZE_BITS),
                ("x_stride", STRIDE_BITS), ("y_pad_0", PAD_BITS), ("y_pad_1", PAD_BITS),
                ("x_pad_0", PAD_BITS), ("x_pad_1", PAD_BITS))
        uop_bits, it = self.log_uop_depth, self.loop_iter_width
        acc, inp, wgt = self.log_acc_depth, self.log_inp_depth, self.log_wgt_depth
        loop = (("uop_bgn", uop_bits), ("uop_end", uop_bits + 1),
                ("iter_out", it), ("iter_in", it), ("dst_factor_out", acc), ("dst_factor_in", acc))
        if kind == "gemm":
            return _HEADER + (("reset", 1),) + loop + (
                ("src_factor_out", inp), ("src_factor_in", inp),
                ("wgt_factor_out", wgt), ("wgt_factor_in", wgt))
        if kind == "alu":
            return _HEADER + (("_reset", 1),) + loop + (
                ("src_factor_out", acc), ("src_factor_in", acc),
                ("op", ALU_OP_BITS), ("use_imm", 1), ("imm", self.alu_imm_width))
        raise VTAError(f"unknown layout kind {kind!r} (mem, gemm, alu, uop)")

    def layout(self, kind: str) -> Layout:
        """Bit positions of a layout kind's fields; see the module docstring."""
        cache: dict[str, Layout] = self._layouts
        if kind not in cache:
            total = UOP_BITS if kind == "uop" else INSN_BITS
            what = "a micro-op" if kind == "uop" else f"a {kind.upper()} instruction"
            cache[kind] = pack_fields(self.fields(kind), what, total)
        return cache[kind]

    def width(self, kind: str, name: str) -> int:
        """The bit width of one field."""
        return self.layout(kind)[name][1]

    @cached_property
    def _layouts(self) -> dict[str, Layout]:
        return {}


def _log2(n: int) -> int:
    if n <= 0 or n & (n - 1):
        raise VTAError(f"element size {n} bytes is not a power of two")
    return n.bit_length() - 1


DEFAULT_CONFIG = VTAConfig()
