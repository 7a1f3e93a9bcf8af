"""A VTA program: an instruction stream plus its micro-op table.

The micro-op table is the program's own DRAM segment: a LOAD of UOP reads table entries
``dram_base + y*x_stride + x``.  Keeping it inside the program makes programs relocatable
(data addresses are the only thing tied to a DRAM).  A program ends with its only FINISH.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.encoding import decode_program, decode_uops, encode_program, encode_uops
from tiletune.backends.vta.isa import Finish, Instruction, Uop
from tiletune.errors import VTAError


@dataclass(frozen=True)
class Program:
    """Instructions and micro-op table for one configuration; validated on construction."""

    instructions: tuple[Instruction, ...]
    uops: tuple[Uop, ...] = ()
    config: VTAConfig = DEFAULT_CONFIG

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", tuple(self.instructions))
        object.__setattr__(self, "uops", tuple(self.uops))
        for what, items in (("instruction", self.instructions), ("micro-op", self.uops)):
            for n, item in enumerate(items):
                if item.config != self.config:
                    raise VTAError(f"{what} #{n} ({item}) was built for a different VTAConfig")
        finishes = [n for n, i in enumerate(self.instructions) if isinstance(i, Finish)]
        if not self.instructions or finishes != [len(self.instructions) - 1]:
            where = f"FINISH at {finishes}" if finishes else "no FINISH"
            raise VTAError(f"a program must end with its only FINISH; this one has {where} "
                           f"in {len(self.instructions)} instructions")

    def __len__(self) -> int:
        return len(self.instructions)

    def asm(self) -> str:
        """Readable listing: numbered instructions, then the micro-op table."""
        width = len(str(max(len(self.instructions), len(self.uops)) - 1))
        lines = [f"{n:>{width}}: {insn}" for n, insn in enumerate(self.instructions)]
        if self.uops:
            lines.append("micro-ops:")
            lines += [f"{n:>{width}}: {u}" for n, u in enumerate(self.uops)]
        return "\n".join(lines)

    def encode(self) -> tuple[bytes, np.ndarray]:
        """(instruction bytes, micro-op words as uint32)."""
        return encode_program(self.instructions), encode_uops(self.uops)

    @classmethod
    def decode(cls, data: bytes, uop_words: Sequence[int] = (),
               config: VTAConfig = DEFAULT_CONFIG) -> Program:
        """The inverse of ``encode``."""
        return cls(tuple(decode_program(data, config)), tuple(decode_uops(uop_words, config)),
                   config)
