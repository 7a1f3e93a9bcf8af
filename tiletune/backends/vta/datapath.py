"""The SRAMs and the bit-exact semantics of each instruction (fsim's, vectorised with numpy).

``Datapath.execute(insn, where)`` checks every SRAM index and DRAM range the instruction
touches, performs it unless the datapath was made with ``compute=False`` (cycles-only mode),
and returns the SRAM accesses (buffer, entries read, entries written) for the hazard checker.

Semantics decided here:

* OUT is not separate storage: a STORE reads ACC entries and truncates them to the output
  width, keeping the low bits (fsim's ``TruncStore``).  ``Datapath.out`` shows that view.
* GEMM: ``ACC[dst] += INP[src] @ WGT[wgt].T`` per uop-iteration, wrapping modulo 2^acc_bits;
  ``reset`` writes zeros instead.  Accumulation is exact (sums are done in a float format
  wide enough for every partial dot product, then added as integers).
* ALU: ``ACC[dst] = op(ACC[dst], imm or ACC[src])`` in loop order, wrapping.  SHR shifts
  arithmetically right, a negative amount shifts left; SHL shifts left, a negative amount
  right; amounts at or past the width give the sign (right) or 0 (left).  Iterations that
  depend on an earlier iteration of the same instruction run in order (batched in waves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tiletune.backends.vta.config import VTAConfig
from tiletune.backends.vta.dram import DRAM
from tiletune.backends.vta.isa import (
    Alu,
    AluOp,
    Finish,
    Gemm,
    Instruction,
    MemType,
    VTALoad,
    VTAStore,
)
from tiletune.errors import VTAError

Index = slice | np.ndarray


@dataclass(frozen=True)
class Access:
    """SRAM entries an instruction reads and writes in one buffer (INP, WGT, ACC or UOP)."""

    buffer: str
    reads: Index | None = None
    writes: Index | None = None


class Datapath:
    """SRAM state plus instruction semantics; one instance per run."""

    def __init__(self, config: VTAConfig, dram: DRAM, uop_table: Sequence,
                 compute: bool = True) -> None:
        c = config
        self.config, self.dram, self.compute = c, dram, compute
        self.inp = np.zeros((c.inp_depth, c.batch, c.block_in), c.inp_dtype)
        self.wgt = np.zeros((c.wgt_depth, c.block_out, c.block_in), c.wgt_dtype)
        self.acc = np.zeros((c.acc_depth, c.batch, c.block_out), c.acc_dtype)
        self.uop = np.zeros((c.uop_depth, 3), np.int64)  # columns: dst, src, wgt
        self.uop_table = np.array([(u.dst, u.src, u.wgt) for u in uop_table],
                                  np.int64).reshape(-1, 3)
        self._depth = {"INP": c.inp_depth, "WGT": c.wgt_depth, "ACC": c.acc_depth,
                       "UOP": c.uop_depth}
        bound = c.block_in * (1 << (c.inp_dtype.itemsize * 8 - 1)) * (
            1 << (c.wgt_dtype.itemsize * 8 - 1))
        self._float = np.float32 if bound < 1 << 24 else np.float64

    @property
    def out(self) -> np.ndarray:
        """The OUT view: ACC truncated to the output width."""
        return self.acc.astype(self.config.out_dtype)

    def execute(self, insn: Instruction, where: str) -> list[Access]:
        """Check and (unless cycles-only) run one instruction; ``where`` names it in errors."""
        if isinstance(insn, VTALoad):
            return self._load(insn, where)
        if isinstance(insn, VTAStore):
            return self._store(insn, where)
        if isinstance(insn, Gemm):
            return self._gemm(insn, where)
        if isinstance(insn, Alu):
            return self._alu(insn, where)
        if isinstance(insn, Finish):
            return []
        raise VTAError(f"{where}: not an instruction: {insn!r}")

    # -- DMA ----------------------------------------------------------------------------
    def _sram_range(self, buffer: str, base: int, size: int, where: str) -> slice:
        depth = self._depth[buffer]
        if base + size > depth:
            raise VTAError(f"{where}: {buffer} index {base + size - 1} out of range: the "
                           f"transfer covers entries {base}..{base + size - 1} but the {buffer} "
                           f"buffer has {depth} entries")
        return slice(base, base + size)

    def _load(self, insn: VTALoad, where: str) -> list[Access]:
        if insn.x_size == 0:
            return []
        mem = insn.mem
        buffer = {MemType.INP: "INP", MemType.WGT: "WGT", MemType.UOP: "UOP"}.get(mem, "ACC")
        dst = self._sram_range(buffer, insn.sram_base, insn.sram_size, where)
        if mem is MemType.UOP:
            data = self._read_uops(insn, where)
        elif self.compute:
            data = self.dram.read(mem, insn.dram_base, insn.y_size, insn.x_size, insn.x_stride,
                                  where)
        else:
            self.dram.check(mem, insn.dram_base, insn.y_size, insn.x_size, insn.x_stride, where)
            return [Access(buffer, writes=dst)]
        y0, y1, x0, x1 = insn.pad
        target = {"INP": self.inp, "WGT": self.wgt, "ACC": self.acc, "UOP": self.uop}[buffer]
        block = np.zeros((y0 + insn.y_size + y1, x0 + insn.x_size + x1, *target.shape[1:]),
                         target.dtype)
        block[y0:y0 + insn.y_size, x0:x0 + insn.x_size] = data  # ACC_8BIT sign-extends here
        target[dst] = block.reshape(-1, *target.shape[1:])
        return [Access(buffer, writes=dst)]

    def _read_uops(self, insn: VTALoad, where: str) -> np.ndarray:
        n = len(self.uop_table)
        last = insn.dram_base + (insn.y_size - 1) * insn.x_stride + insn.x_size
        if insn.y_size and last > n:
            raise VTAError(f"{where}: micro-op table index {last - 1} out of range: the "
                           f"program's micro-op table has {n} entries")
        idx = insn.dram_base + np.arange(insn.y_size)[:, None] * insn.x_stride + np.arange(
            insn.x_size)
        return self.uop_table[idx]

    def _store(self, insn: VTAStore, where: str) -> list[Access]:
        if insn.x_size == 0:
            return []
        src = self._sram_range("ACC", insn.sram_base, insn.sram_size, where)
        if self.compute:
            data = self.acc[src].astype(self.config.out_dtype)  # keeps the low bits
            data = data.reshape(insn.y_size, insn.x_size, *data.shape[1:])
            self.dram.write(MemType.OUT, insn.dram_base, insn.x_stride, data, where)
        else:
            self.dram.check(MemType.OUT, insn.dram_base, insn.y_size, insn.x_size,
                            insn.x_stride, where)
        return [Access("ACC", reads=src)]

    # -- micro-coded loops ----------------------------------------------------------------
    def _loop_indices(self, insn: Gemm | Alu) -> dict[str, np.ndarray]:
        """Flat index arrays (loop order i, j, k) for the dst, src and wgt operands."""
        uops = self.uop[insn.uop_bgn:insn.uop_end]
        i = np.arange(insn.iter_out)[:, None, None]
        j = np.arange(insn.iter_in)[None, :, None]
        out = {}
        for col, name in enumerate(("dst", "src", "wgt")):
            f_out = getattr(insn, f"{name}_factor_out", 0)
            f_in = getattr(insn, f"{name}_factor_in", 0)
            out[name] = (uops[None, None, :, col] + i * f_out + j * f_in).reshape(-1)
        return out

    def _check_index(self, insn: Gemm | Alu, idx: np.ndarray, buffer: str, operand: str,
                     where: str) -> None:
        depth = self._depth[buffer]
        if idx.size and idx.max() >= depth:
            n = int(np.argmax(idx >= depth))
            per_i = insn.iter_in * (insn.uop_end - insn.uop_bgn)
            nk = insn.uop_end - insn.uop_bgn
            i, rest = divmod(n, per_i)
            j, k = divmod(rest, nk)
            raise VTAError(f"{where}: {buffer} index {int(idx[n])} out of range (the {buffer} "
                           f"buffer has {depth} entries), {operand} operand at iteration "
                           f"i={i}, j={j}, uop={insn.uop_bgn + k}")

    def _gemm(self, insn: Gemm, where: str) -> list[Access]:
        ix = self._loop_indices(insn)
        uops = Access("UOP", reads=slice(insn.uop_bgn, insn.uop_end))
        self._check_index(insn, ix["dst"], "ACC", "dst", where)
        if insn.reset:
            if self.compute:
                self.acc[ix["dst"]] = 0
            return [uops, Access("ACC", writes=ix["dst"])]
        self._check_index(insn, ix["src"], "INP", "src", where)
        self._check_index(insn, ix["wgt"], "WGT", "wgt", where)
        if self.compute and ix["dst"].size:
            self._accumulate(ix["dst"], ix["src"], ix["wgt"])
        return [uops, Access("INP", reads=ix["src"]), Access("WGT", reads=ix["wgt"]),
                Access("ACC", reads=ix["dst"], writes=ix["dst"])]

    def _accumulate(self, acc_i: np.ndarray, inp_i: np.ndarray, wgt_i: np.ndarray) -> None:
        """ACC[acc_i[n]] += INP[inp_i[n]] @ WGT[wgt_i[n]].T for all n, modulo 2^acc_bits."""
        f = self._float
        n = len(acc_i)
        contrib = np.empty((n, self.config.batch, self.config.block_out), f)
        wgt_ids, group = np.unique(wgt_i, return_inverse=True)
        if len(wgt_ids) * 8 <= n:  # few distinct weight tiles: one matmul per tile
            order = np.argsort(group, kind="stable")
            bounds = np.concatenate(([0], np.cumsum(np.bincount(group))))
            for g, w in enumerate(wgt_ids):
                sel = order[bounds[g]:bounds[g + 1]]
                contrib[sel] = self.inp[inp_i[sel]].astype(f) @ self.wgt[w].T.astype(f)
        else:  # batched matmul in chunks
            for s in range(0, n, 8192):
                e = min(n, s + 8192)
                x = self.inp[inp_i[s:e]].astype(f)
                w = self.wgt[wgt_i[s:e]].astype(f)
                contrib[s:e] = x @ w.transpose(0, 2, 1)
        np.add.at(self.acc, acc_i, contrib.astype(np.int64).astype(self.acc.dtype))

    def _alu(self, insn: Alu, where: str) -> list[Access]:
        ix = self._loop_indices(insn)
        uops = Access("UOP", reads=slice(insn.uop_bgn, insn.uop_end))
        dst, src = ix["dst"], ix["src"]
        self._check_index(insn, dst, "ACC", "dst", where)
        if insn.use_imm:
            reads = dst
        else:
            self._check_index(insn, src, "ACC", "src", where)
            reads = np.concatenate([dst, src])
        if self.compute and dst.size:
            for s, e in _waves(dst, None if insn.use_imm else src):
                a = self.acc[dst[s:e]]
                b = self.acc.dtype.type(insn.imm) if insn.use_imm else self.acc[src[s:e]]
                self.acc[dst[s:e]] = _alu_op(insn.op, a, b)
        return [uops, Access("ACC", reads=reads, writes=dst)]


def _alu_op(op: AluOp, a: np.ndarray, b: np.ndarray | np.integer) -> np.ndarray:
    """One ALU operation on ACC values with wrap-around integer semantics."""
    if op is AluOp.MIN:
        return np.minimum(a, b)
    if op is AluOp.MAX:
        return np.maximum(a, b)
    if op is AluOp.ADD:
        return np.add(a, b, dtype=a.dtype)
    if op is AluOp.MUL:
        return np.multiply(a, b, dtype=a.dtype)
    amount = np.broadcast_to(np.asarray(b, np.int64), a.shape)
    if op is AluOp.SHL:
        amount = -amount
    return _shift_right(a, amount)


def _shift_right(a: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Arithmetic shift right by ``amount`` (negative: left, wrapping) per element."""
    bits = a.dtype.itemsize * 8
    unsigned = np.dtype(f"uint{bits}")
    right = np.right_shift(a, np.clip(amount, 0, bits - 1).astype(a.dtype))
    left_by = np.clip(-amount, 0, bits - 1).astype(unsigned)
    left = np.left_shift(a.view(unsigned), left_by).view(a.dtype)
    left = np.where(-amount >= bits, 0, left)
    return np.where(amount >= 0, right, left).astype(a.dtype)


def _waves(dst: np.ndarray, src: np.ndarray | None) -> list[tuple[int, int]]:
    """Split loop order into maximal runs whose iterations do not depend on each other.

    Within a run, no dst repeats and no src reads an entry written earlier in the run, so
    gather-compute-scatter over the run equals the sequential loop.
    """
    n = len(dst)
    conflict = _previous_equal(dst, dst)
    if src is not None:
        conflict = np.maximum(conflict, _previous_equal(dst, src))
    if conflict.max() < 0:
        return [(0, n)]
    waves, start = [], 0
    for pos in np.flatnonzero(conflict >= 0):
        if conflict[pos] >= start:
            waves.append((start, int(pos)))
            start = int(pos)
    waves.append((start, n))
    return waves


def _previous_equal(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each n, the largest m < n with keys[m] == queries[n], or -1."""
    n = len(keys)
    order = np.lexsort((np.arange(n), keys))  # by key, then position
    sorted_keys, sorted_pos = keys[order], order
    # rightmost m with (key, pos) < (query, n)
    composite = sorted_keys * n + sorted_pos
    target = queries * n + np.arange(n)
    at = np.searchsorted(composite, target, side="left") - 1
    ok = at >= 0
    at = np.maximum(at, 0)
    found = ok & (sorted_keys[at] == queries)
    return np.where(found, sorted_pos[at], -1)
