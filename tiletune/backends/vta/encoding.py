"""Binary encoding: instructions <-> 128-bit words, micro-ops <-> 32-bit words.

Layouts come from ``VTAConfig.layout`` (derived from the configuration, see config.py).  A
128-bit word is a Python int or 16 bytes little endian; a program is the concatenation of
its instruction words.  Decoding is strict: unknown opcodes or enum values, bits set outside
every field, and padding on STORE raise ``VTAError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tiletune.backends.vta.config import (
    DEFAULT_CONFIG,
    INSN_BITS,
    INSN_BYTES,
    OPCODE_BITS,
    UOP_BITS,
    Layout,
    VTAConfig,
)
from tiletune.backends.vta.isa import FLAG_NAMES, INSTRUCTION_CLASSES, Instruction, Opcode, Uop
from tiletune.errors import VTAError


def _pack(raw: dict[str, int], layout: Layout) -> int:
    word = 0
    for name, (lsb, width) in layout.items():
        word |= (raw.get(name, 0) & ((1 << width) - 1)) << lsb
    return word


def _unpack(word: int, layout: Layout, bits: int, what: str) -> dict[str, int]:
    used = 0
    raw = {}
    for name, (lsb, width) in layout.items():
        mask = (1 << width) - 1
        raw[name] = (word >> lsb) & mask
        if not name.startswith("_"):
            used |= mask << lsb
    stray = word & ~used & ((1 << bits) - 1)
    if stray:
        raise VTAError(f"{what}: bits {_bit_list(stray)} are set but belong to no field")
    return raw


def _bit_list(mask: int) -> str:
    bits = [i for i in range(mask.bit_length()) if mask >> i & 1]
    return ", ".join(map(str, bits[:8])) + (" ..." if len(bits) > 8 else "")


def encode(insn: Instruction) -> int:
    """The 128-bit word of an instruction, as an int."""
    raw = insn.raw_fields()
    layout = insn.config.layout(insn.LAYOUT)
    if "imm" in raw:
        raw["imm"] &= (1 << layout["imm"][1]) - 1
    return _pack(raw, layout)


def encode_bytes(insn: Instruction) -> bytes:
    """The instruction as 16 bytes, little endian."""
    return encode(insn).to_bytes(INSN_BYTES, "little")


def decode(word: int | bytes, config: VTAConfig = DEFAULT_CONFIG) -> Instruction:
    """The instruction encoded by a 128-bit word (int or 16 little-endian bytes)."""
    if isinstance(word, (bytes, bytearray, memoryview)):
        if len(word) != INSN_BYTES:
            raise VTAError(f"an instruction is {INSN_BYTES} bytes, got {len(word)}")
        word = int.from_bytes(word, "little")
    if not 0 <= word < 1 << INSN_BITS:
        raise VTAError(f"instruction word {word:#x} is not a 128-bit unsigned value")
    opcode = word & ((1 << OPCODE_BITS) - 1)
    if opcode not in INSTRUCTION_CLASSES:
        raise VTAError(f"unknown opcode {opcode} in word {word:#034x}")
    cls = INSTRUCTION_CLASSES[Opcode(opcode)]
    layout = config.layout(cls.LAYOUT)
    if cls.OPCODE is Opcode.FINISH:  # only the header is meaningful
        layout = {k: v for k, v in layout.items() if k == "opcode" or k in FLAG_NAMES}
    raw = _unpack(word, layout, INSN_BITS, f"{cls.OPCODE.name} word {word:#034x}")
    if "imm" in raw:
        width = layout["imm"][1]
        if raw["imm"] >> (width - 1):
            raw["imm"] -= 1 << width
    return cls.from_raw(raw, config)


def encode_program(instructions: Iterable[Instruction]) -> bytes:
    """The instruction stream as bytes (16 per instruction, little endian)."""
    return b"".join(encode_bytes(i) for i in instructions)


def decode_program(data: bytes, config: VTAConfig = DEFAULT_CONFIG) -> list[Instruction]:
    """The instructions of an encoded stream."""
    if len(data) % INSN_BYTES:
        raise VTAError(f"stream length {len(data)} is not a multiple of {INSN_BYTES} bytes")
    return [decode(data[i:i + INSN_BYTES], config) for i in range(0, len(data), INSN_BYTES)]


def encode_uop(uop: Uop) -> int:
    """The 32-bit word of a micro-op."""
    return _pack({"dst": uop.dst, "src": uop.src, "wgt": uop.wgt}, uop.config.layout("uop"))


def decode_uop(word: int, config: VTAConfig = DEFAULT_CONFIG) -> Uop:
    """The micro-op encoded by a 32-bit word."""
    if not 0 <= int(word) < 1 << UOP_BITS:
        raise VTAError(f"micro-op word {int(word):#x} is not a 32-bit unsigned value")
    raw = _unpack(int(word), config.layout("uop"), UOP_BITS, f"micro-op {int(word):#010x}")
    return Uop(raw["dst"], raw["src"], raw["wgt"], config=config)


def encode_uops(uops: Sequence[Uop]) -> np.ndarray:
    """Micro-ops as a uint32 array."""
    return np.array([encode_uop(u) for u in uops], dtype=np.uint32)


def decode_uops(words: Iterable[int], config: VTAConfig = DEFAULT_CONFIG) -> list[Uop]:
    """Micro-ops from 32-bit words."""
    return [decode_uop(int(w), config) for w in words]
