"""Simulated DRAM: a byte address space holding numpy arrays registered as regions.

``alloc(array, kind)`` copies an array into a fresh region and returns its base address in
units of elements of ``kind`` (as VTA's ``dram_base`` fields are): an INP element is one
``BATCH x BLOCK_IN`` int8 vector (16 bytes by default), a WGT element a ``BLOCK_OUT x BLOCK_IN``
tile (256 bytes), ACC a ``BATCH x BLOCK_OUT`` int32 vector (64 bytes), ACC_8BIT and OUT an
int8 one (16 bytes).  Regions are aligned to 4 KiB (at least one element of every kind) and
the first one starts at 4 KiB, so address 0 is never valid.  A DMA must lie inside one
region; anything else raises ``VTAError``.

Micro-ops are not kept here: a LOAD of UOP reads the program's micro-op table (see
``Program``), so programs stay relocatable.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cache

import numpy as np

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.isa import MemType
from tiletune.errors import VTAError

PAGE = 4096


@cache
def element_spec(config: VTAConfig, kind: MemType) -> tuple[np.dtype, tuple[int, ...]]:
    """The scalar dtype and the shape of one DRAM element of a memory kind."""
    b, bi, bo = config.batch, config.block_in, config.block_out
    specs = {
        MemType.INP: (config.inp_dtype, (b, bi)),
        MemType.WGT: (config.wgt_dtype, (bo, bi)),
        MemType.ACC: (config.acc_dtype, (b, bo)),
        MemType.ACC_8BIT: (config.inp_dtype, (b, bo)),
        MemType.OUT: (config.out_dtype, (b, bo)),
    }
    if kind not in specs:
        raise VTAError(f"DRAM holds no {MemType(kind).name} data (micro-ops live in the "
                       "program's micro-op table)")
    return specs[kind]


@cache
def element_bytes(config: VTAConfig, kind: MemType) -> int:
    """Bytes per DRAM element of a memory kind (4 for UOP)."""
    if kind == MemType.UOP:
        return 4
    dtype, shape = element_spec(config, kind)
    return dtype.itemsize * int(np.prod(shape))


@dataclass
class _Region:
    start: int  # byte address
    data: np.ndarray  # the caller's array (a private copy), C-contiguous

    @property
    def end(self) -> int:
        return self.start + self.data.nbytes


class DRAM:
    """A DRAM made of typed regions; addresses are in elements of the accessing kind."""

    def __init__(self, config: VTAConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._regions: list[_Region] = []
        self._starts: list[int] = []
        self._align = max([PAGE] + [element_bytes(config, k) for k in MemType])
        self._top = self._align

    def alloc(self, data: np.ndarray, kind: MemType) -> int:
        """Copy ``data`` into a new region; return its base address in ``kind`` elements.

        ``data`` must have the kind's scalar dtype and end in its element shape, e.g.
        ``(..., BATCH, BLOCK_IN)`` int8 for INP; pass zeros to make an output buffer.
        """
        kind = MemType(kind)
        dtype, shape = element_spec(self.config, kind)
        data = np.asarray(data)
        if data.dtype != dtype:
            raise VTAError(f"DRAM {kind.name} data must be {dtype}, got {data.dtype}")
        if data.ndim < len(shape) or data.shape[data.ndim - len(shape):] != shape or not data.size:
            raise VTAError(f"DRAM {kind.name} data must have shape (..., "
                           f"{', '.join(map(str, shape))}) and be non-empty, got {data.shape}")
        region = _Region(self._top, np.array(data, order="C", copy=True))
        self._regions.append(region)
        self._starts.append(region.start)
        self._top = -(-region.end // self._align) * self._align
        return region.start // element_bytes(self.config, kind)

    def get(self, addr: int, kind: MemType) -> np.ndarray:
        """The live array of the region that starts at ``addr`` (in ``kind`` elements)."""
        start = addr * element_bytes(self.config, MemType(kind))
        i = bisect.bisect_left(self._starts, start)
        if i == len(self._starts) or self._starts[i] != start:
            raise VTAError(f"no DRAM region starts at {MemType(kind).name} address {addr}")
        return self._regions[i].data

    def check(self, kind: MemType, base: int, y_size: int, x_size: int, x_stride: int,
              what: str) -> _Region | None:
        """The region a 2-D DMA lies in (None for an empty one); VTAError if there is none."""
        if not (y_size and x_size):
            return None
        ebytes = element_bytes(self.config, kind)
        first = base * ebytes
        last = (base + (y_size - 1) * x_stride + x_size) * ebytes  # one past the last byte
        i = bisect.bisect_right(self._starts, first) - 1
        if i < 0 or first >= self._regions[i].end:
            raise VTAError(f"{what}: DRAM {kind.name} address {base} (byte {first:#x}) is not "
                           "inside any allocated region")
        region = self._regions[i]
        if last > region.end:
            raise VTAError(
                f"{what}: DMA of {y_size} rows x {x_size} elements (stride {x_stride}) from "
                f"{kind.name} address {base} overruns its DRAM region by "
                f"{(last - region.end + ebytes - 1) // ebytes} element(s)")
        return region

    def _rows(self, kind: MemType, base: int, y_size: int, x_size: int, x_stride: int,
              what: str) -> tuple[np.ndarray, np.ndarray]:
        """The elements view of the region a 2-D DMA touches and the (y, x) element indices."""
        region = self.check(kind, base, y_size, x_size, x_stride, what)
        assert region is not None
        ebytes = element_bytes(self.config, kind)
        dtype, shape = element_spec(self.config, kind)
        raw = region.data.reshape(-1).view(np.uint8)  # regions start element-aligned
        count = raw.size // ebytes
        elems = raw[:count * ebytes].view(dtype).reshape((count, *shape))
        off = (base * ebytes - region.start) // ebytes
        idx = off + np.arange(y_size)[:, None] * x_stride + np.arange(x_size)[None, :]
        return elems, idx

    def read(self, kind: MemType, base: int, y_size: int, x_size: int, x_stride: int,
             what: str = "LOAD") -> np.ndarray:
        """Rows of a 2-D DMA as an array of shape (y_size, x_size, *element shape)."""
        if not (y_size and x_size):
            dtype, shape = element_spec(self.config, kind)
            return np.zeros((y_size, x_size, *shape), dtype)
        elems, idx = self._rows(kind, base, y_size, x_size, x_stride, what)
        return elems[idx]

    def write(self, kind: MemType, base: int, x_stride: int, data: np.ndarray,
              what: str = "STORE") -> None:
        """Write ``data`` of shape (y_size, x_size, *element shape) as a 2-D DMA."""
        y_size, x_size = data.shape[:2]
        if y_size and x_size:
            elems, idx = self._rows(kind, base, y_size, x_size, x_stride, what)
            elems[idx] = data
