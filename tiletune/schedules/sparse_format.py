"""Sparse weight formats of a conv/dense weight's matrix view ``W.reshape(K, C*R*S)``.

    CSR  row_ptr[K+1], cols[nnz], vals[nnz]                 one output channel per row
    BSR  row_ptr[K/bo+1], cols[nblocks], vals[nblocks, bo]  blocks of ``bo`` output channels
                                                            x 1 input element (zeros kept
                                                            inside a block)

Columns are input elements ``(c, r, s)`` in that order. ``offsets`` turns columns into flat
offsets into a padded input image, the index the direct sparse convolution adds to the
output position (Park et al., "Faster CNNs with direct sparse convolutions").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tiletune.errors import ScheduleError


@dataclass(frozen=True)
class CSR:
    shape: tuple[int, int]
    row_ptr: np.ndarray  # int32 [rows + 1]
    cols: np.ndarray  # int32 [nnz]
    vals: np.ndarray  # float32 [nnz]

    @property
    def nnz(self) -> int:
        return int(self.row_ptr[-1])

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, self.vals.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr))
        out[rows, self.cols] = self.vals
        return out


@dataclass(frozen=True)
class BSR:
    shape: tuple[int, int]
    block: int  # output channels per block
    row_ptr: np.ndarray  # int32 [rows / block + 1]
    cols: np.ndarray  # int32 [nblocks]
    vals: np.ndarray  # float32 [nblocks, block]

    @property
    def nblocks(self) -> int:
        return int(self.row_ptr[-1])

    @property
    def density(self) -> float:
        """Stored values (zeros inside blocks included) over the dense size."""
        return self.nblocks * self.block / (self.shape[0] * self.shape[1])

    def to_dense(self) -> np.ndarray:
        K, E = self.shape
        out = np.zeros((K // self.block, E, self.block), self.vals.dtype)
        rows = np.repeat(np.arange(K // self.block), np.diff(self.row_ptr))
        out[rows, self.cols] = self.vals
        return out.transpose(0, 2, 1).reshape(K, E)


def matrix(weight: np.ndarray) -> np.ndarray:
    return np.asarray(weight).reshape(weight.shape[0], -1)


def to_csr(weight: np.ndarray) -> CSR:
    m = matrix(weight).astype(np.float32)
    rows, cols = np.nonzero(m)
    row_ptr = np.zeros(m.shape[0] + 1, np.int64)
    np.add.at(row_ptr, rows + 1, 1)
    return CSR(m.shape, np.cumsum(row_ptr).astype(np.int32), cols.astype(np.int32),
               m[rows, cols].astype(np.float32))


def to_bsr(weight: np.ndarray, block: int) -> BSR:
    m = matrix(weight).astype(np.float32)
    K, E = m.shape
    if block < 1 or K % block:
        raise ScheduleError(f"BSR block of {block} output channels does not divide {K}")
    tiles = m.reshape(K // block, block, E).transpose(0, 2, 1)  # [K/bo, E, bo]
    present = np.any(tiles != 0, axis=2)
    rows, cols = np.nonzero(present)
    row_ptr = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    return BSR((K, E), block, row_ptr, cols.astype(np.int32),
               np.ascontiguousarray(tiles[rows, cols], np.float32))


def offsets(cols: np.ndarray, R: int, S: int, plane: int, row: int) -> np.ndarray:
    """Flat input offsets ``c*plane + r*row + s`` of matrix columns ``(c, r, s)``."""
    c, rs = np.divmod(cols.astype(np.int64), R * S)
    r, s = np.divmod(rs, S)
    off = c * plane + r * row + s
    if off.size and off.max() >= 2 ** 31:
        raise ScheduleError("input too large for 32-bit sparse offsets")
    return off.astype(np.int32)
