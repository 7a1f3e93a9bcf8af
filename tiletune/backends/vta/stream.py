"""InstructionStream: a builder for programs, modelled on VTA's runtime ``CommandQueue``.

Dependency tokens are declared between adjacent modules (load <-> compute <-> store):

* ``dep_pop(src, dst)`` records a pending pop that is folded into the next instruction
  emitted on module ``dst``.  A second pop in the same direction before that instruction
  first emits a NOP on ``dst`` carrying the pending one.
* ``dep_push(src, dst)`` first commits ``src``'s pending pops (as a NOP), then sets the push
  flag on ``src``'s last instruction, or emits a NOP on ``src`` if there is none or it
  already pushes that way.

NOPs are zero-size DMAs: LOAD INP on load, LOAD UOP on compute, STORE on store.
``kernel(uops)`` keeps the micro-op table: identical kernels are stored once, and a kernel is
loaded into the UOP buffer only when it is not already resident (bump allocation; when the
buffer is full every kernel is evicted).  ``finish()`` adds the final store->compute and
load->compute tokens (so FINISH comes after everything), the FINISH, and returns the Program.
"""

from __future__ import annotations

from collections.abc import Sequence

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.isa import (
    Alu,
    AluOp,
    Finish,
    Gemm,
    HardwareModule,
    Instruction,
    MemType,
    Uop,
    VTALoad,
    VTAStore,
)
from tiletune.backends.vta.program import Program
from tiletune.errors import VTAError


class InstructionStream:
    """Emit instructions in program order; ``finish()`` returns the Program."""

    def __init__(self, config: VTAConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._insns: list[Instruction] = []
        self._last: dict[HardwareModule, int] = {}  # module -> index of its last instruction
        self._pending: dict[HardwareModule, set[str]] = {m: set() for m in HardwareModule}
        self._uops: list[Uop] = []
        self._table: dict[tuple[Uop, ...], int] = {}  # kernel -> offset in the uop table
        self._resident: dict[tuple[Uop, ...], int] = {}  # kernel -> UOP buffer base
        self._uop_top = 0
        self._done = False

    def __len__(self) -> int:
        return len(self._insns)

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        return tuple(self._insns)

    @property
    def uops(self) -> tuple[Uop, ...]:
        """The micro-op table so far."""
        return tuple(self._uops)

    # -- instructions ---------------------------------------------------------------------
    def emit(self, insn: Instruction) -> Instruction:
        """Append an instruction, folding in the pending pops of its module."""
        if self._done:
            raise VTAError("the stream is finished; start a new InstructionStream")
        if insn.config != self.config:
            raise VTAError(f"{insn} was built for a different VTAConfig than this stream")
        module = insn.module
        pending = self._pending[module]
        if pending:
            flags = {f"pop_{d}": True for d in pending}
            if any(getattr(insn, f) for f in flags):
                self._commit(module)
            else:
                insn = insn.with_flags(**flags)
                pending.clear()
        self._last[module] = len(self._insns)
        self._insns.append(insn)
        return insn

    def load(self, mem: MemType, sram_base: int, dram_base: int, y_size: int, x_size: int,
             x_stride: int | None = None, pad: Sequence[int] = (0, 0, 0, 0)) -> Instruction:
        """LOAD ``y_size x x_size`` elements (row stride ``x_stride``, default ``x_size``).

        ``pad`` is (y_pad_0, y_pad_1, x_pad_0, x_pad_1).
        """
        y0, y1, x0, x1 = pad
        stride = x_size if x_stride is None else x_stride
        return self.emit(VTALoad(MemType(mem), sram_base, dram_base, y_size, x_size, stride,
                              y0, y1, x0, x1, config=self.config))

    def store(self, sram_base: int, dram_base: int, y_size: int, x_size: int,
              x_stride: int | None = None) -> Instruction:
        """STORE ``y_size x x_size`` OUT elements (row stride ``x_stride``, default x_size)."""
        stride = x_size if x_stride is None else x_stride
        return self.emit(VTAStore(sram_base, dram_base, y_size, x_size, stride, config=self.config))

    def gemm(self, uop_bgn: int, uop_end: int, *, iter_out: int = 1, iter_in: int = 1,
             dst_factor: tuple[int, int] = (0, 0), src_factor: tuple[int, int] = (0, 0),
             wgt_factor: tuple[int, int] = (0, 0), reset: bool = False) -> Instruction:
        """GEMM over uops [uop_bgn, uop_end); factors are (out, in) loop strides."""
        return self.emit(Gemm(uop_bgn, uop_end, iter_out, iter_in, *dst_factor, *src_factor,
                              *wgt_factor, reset, config=self.config))

    def alu(self, op: AluOp, uop_bgn: int, uop_end: int, *, imm: int | None = None,
            iter_out: int = 1, iter_in: int = 1, dst_factor: tuple[int, int] = (0, 0),
            src_factor: tuple[int, int] = (0, 0)) -> Instruction:
        """ALU ``op``; with ``imm`` the second operand is the immediate, else ACC[src]."""
        return self.emit(Alu(uop_bgn, uop_end, iter_out, iter_in, *dst_factor, *src_factor,
                             AluOp(op), imm is not None, imm or 0, config=self.config))

    def kernel(self, uops: Sequence[Uop]) -> tuple[int, int]:
        """Make a micro-op kernel resident in the UOP buffer; return its (uop_bgn, uop_end)."""
        key = tuple(uops)
        if not key:
            raise VTAError("a micro-op kernel needs at least one micro-op")
        if len(key) > self.config.uop_depth:
            raise VTAError(f"a kernel of {len(key)} micro-ops does not fit the UOP buffer "
                           f"({self.config.uop_depth} entries)")
        if key not in self._table:
            self._table[key] = len(self._uops)
            self._uops.extend(key)
        if key not in self._resident:
            if self._uop_top + len(key) > self.config.uop_depth:
                self._resident.clear()
                self._uop_top = 0
            self.load(MemType.UOP, self._uop_top, self._table[key], 1, len(key))
            self._resident[key] = self._uop_top
            self._uop_top += len(key)
        base = self._resident[key]
        return base, base + len(key)

    # -- dependencies ---------------------------------------------------------------------
    def dep_pop(self, src: HardwareModule, dst: HardwareModule) -> None:
        """The next instruction of ``dst`` waits for a token from ``src``."""
        src, dst = _adjacent(src, dst)
        direction = "prev" if src < dst else "next"
        if direction in self._pending[dst]:
            self._commit(dst)
        self._pending[dst].add(direction)

    def dep_push(self, src: HardwareModule, dst: HardwareModule) -> None:
        """Send a token from ``src`` to ``dst`` after ``src``'s instructions so far."""
        src, dst = _adjacent(src, dst)
        self._commit(src)
        flag = "push_next" if src < dst else "push_prev"
        last = self._last.get(src)
        if last is not None and not getattr(self._insns[last], flag):
            self._insns[last] = self._insns[last].with_flags(**{flag: True})
        else:
            self.emit(self._nop(src).with_flags(**{flag: True}))

    def finish(self) -> Program:
        """Order FINISH after every load and store, append it, and return the Program."""
        self.dep_push(HardwareModule.STORE, HardwareModule.COMPUTE)
        self.dep_push(HardwareModule.LOAD, HardwareModule.COMPUTE)
        self.dep_pop(HardwareModule.STORE, HardwareModule.COMPUTE)
        self.dep_pop(HardwareModule.LOAD, HardwareModule.COMPUTE)
        self._commit(HardwareModule.COMPUTE)
        self.emit(Finish(config=self.config))
        self._done = True
        return Program(tuple(self._insns), tuple(self._uops), self.config)

    def _commit(self, module: HardwareModule) -> None:
        """Emit a NOP on ``module`` carrying its pending pops, if any."""
        pending = self._pending[module]
        if pending:
            flags = {f"pop_{d}": True for d in pending}
            pending.clear()
            self.emit(self._nop(module).with_flags(**flags))

    def _nop(self, module: HardwareModule) -> Instruction:
        if module is HardwareModule.STORE:
            return VTAStore(0, 0, 0, 0, 0, config=self.config)
        mem = MemType.INP if module is HardwareModule.LOAD else MemType.UOP
        return VTALoad(mem, 0, 0, 0, 0, 0, config=self.config)


def _adjacent(src: HardwareModule, dst: HardwareModule) -> tuple[HardwareModule, HardwareModule]:
    src, dst = HardwareModule(src), HardwareModule(dst)
    if abs(src - dst) != 1:
        raise VTAError(f"dependency tokens only flow between adjacent modules "
                       f"(load<->compute<->store), not {src.label}->{dst.label}")
    return src, dst
