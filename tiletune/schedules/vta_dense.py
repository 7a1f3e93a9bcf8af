"""int8 dense (matmul) on the VTA accelerator, in VTA's packed layout.

    data    [M/B, K/BI, B, BI]     int8
    weight  [N/BO, K/BI, BO, BI]   int8        (one 16 x 16 WGT entry per block)
    out     [M/B, N/BO, B, BO]     int8  = clip((data @ weight.T) >> shift, lo, hi)

Schedule (the same recipe as ``vta_conv2d``)::

    for vt in virtual_thread(nthread):            # over the output-column tiles
      for m0, n0:                                 # output tiles; store point n0
        acc = 0                                   # GEMM reset
        for k.outer:                              # tile_k blocks per step
          data.vta.inp <- DMA; weight.vta.wgt <- DMA
          for k.inner, m, n: spatial(b, o, ki): acc += inp * wgt         # GEMM
        res = clip(acc // 2**shift)               # ALU
        out[tile] = int8(res)                     # STORE

Knobs: ``tile_m``, ``tile_n``, ``tile_k`` (in blocks) and ``nthread`` (1 or 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

import tiletune as tt
from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.errors import ScheduleError
from tiletune.schedules.machine import divisors


@dataclass(frozen=True)
class VTADenseWorkload:
    M: int
    N: int
    K: int
    shift: int = 8
    clip: tuple[int, int] = (-128, 127)

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K

    @property
    def flop(self) -> int:
        return 2 * self.macs

    def key(self) -> str:
        return f"vta_dense_{self.M}x{self.N}x{self.K}_shr{self.shift}"

    def blocks(self, config: VTAConfig = DEFAULT_CONFIG) -> tuple[int, int, int]:
        """(M, N, K) in blocks; ScheduleError unless they divide."""
        for name, n, b in (("M", self.M, config.batch), ("N", self.N, config.block_out),
                           ("K", self.K, config.block_in)):
            if n % b:
                raise ScheduleError(f"vta_dense: {name}={n} is not a multiple of the VTA "
                                    f"block {b}")
        return self.M // config.batch, self.N // config.block_out, self.K // config.block_in


def space(w: VTADenseWorkload, config: VTAConfig = DEFAULT_CONFIG) -> dict[str, list[Any]]:
    m, n, k = w.blocks(config)
    return {"tile_m": divisors(m), "tile_n": divisors(n), "tile_k": divisors(k),
            "nthread": [1, 2]}


def invalid_reason(w: VTADenseWorkload, cfg: Mapping[str, Any],
                   config: VTAConfig = DEFAULT_CONFIG) -> str | None:
    _, n, _ = w.blocks(config)
    t = cfg["nthread"]
    if (n // cfg["tile_n"]) % t:
        return "nthread must divide the number of column tiles"
    need = {"INP": (cfg["tile_m"] * cfg["tile_k"] * t, config.inp_depth),
            "WGT": (cfg["tile_n"] * cfg["tile_k"] * t, config.wgt_depth),
            "ACC": (cfg["tile_m"] * cfg["tile_n"] * t, config.acc_depth)}
    for name, (used, depth) in need.items():
        if used > depth:
            return f"{name} overflow: {used} entries > {depth}"
    return None


def is_valid(w: VTADenseWorkload, cfg: Mapping[str, Any],
             config: VTAConfig = DEFAULT_CONFIG) -> bool:
    return invalid_reason(w, cfg, config) is None


def default_config(w: VTADenseWorkload, config: VTAConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Largest tiles that fit, two threads when the column tiles allow it."""
    sp = space(w, config)
    best = None
    for t in (2, 1):
        for tm in sp["tile_m"]:
            for tn in sp["tile_n"]:
                for tk in sp["tile_k"]:
                    cfg = {"tile_m": tm, "tile_n": tn, "tile_k": tk, "nthread": t}
                    if is_valid(w, cfg, config):
                        score = (tm * tn, tk)
                        if best is None or score > best[0]:
                            best = (score, cfg)
        if best is not None:
            return best[1]
    return {"tile_m": 1, "tile_n": 1, "tile_k": 1, "nthread": 1}


def compute(w: VTADenseWorkload, config: VTAConfig = DEFAULT_CONFIG):
    m, n, k = w.blocks(config)
    B, BI, BO = config.batch, config.block_in, config.block_out
    data = tt.placeholder((m, k, B, BI), "int8", name="data")
    weight = tt.placeholder((n, k, BO, BI), "int8", name="weight")
    ko, ki = tt.reduce_axis(k, "ko"), tt.reduce_axis(BI, "ki")
    acc = tt.compute((m, n, B, BO), lambda i, j, b, o: tt.sum(
        data[i, ko, b, ki].astype("int32") * weight[j, ko, o, ki].astype("int32"),
        axis=[ko, ki]), name="acc")
    lo, hi = w.clip
    res = tt.compute(acc.shape, lambda i, j, b, o: tt.min(tt.max(
        acc[i, j, b, o] // (1 << w.shift), lo), hi), name="res")
    out = tt.compute(acc.shape, lambda i, j, b, o: res[i, j, b, o].astype("int8"), name="out")
    return data, weight, acc, res, out


def schedule(w: VTADenseWorkload, cfg: Mapping[str, Any] | None = None,
             config: VTAConfig = DEFAULT_CONFIG, validate: bool = True):
    """The schedule and arguments ``[data, weight, out]``."""
    cfg = default_config(w, config) if cfg is None else dict(cfg)
    if validate and (reason := invalid_reason(w, cfg, config)):
        raise ScheduleError(f"vta_dense config {cfg}: {reason}")
    data, weight, acc, res, out = compute(w, config)
    s = tt.create_schedule(out)
    dbuf = s.cache_read(data, "vta.inp", [acc])
    wbuf = s.cache_read(weight, "vta.wgt", [acc])
    s[acc].set_scope("vta.acc")
    s[res].set_scope("vta.acc")
    i, j, b, o = s[out].axis
    i0, i1 = s[out].split(i, factor=cfg["tile_m"])
    j0, j1 = s[out].split(j, factor=cfg["tile_n"])
    s[out].reorder(i0, j0, i1, j1, b, o)
    if cfg["nthread"] > 1:
        vt, j0 = s[out].split(j0, nparts=cfg["nthread"])
        s[out].reorder(vt, i0)
        s[out].virtual_thread(vt)
    s[acc].compute_at(s[out], j0)
    s[res].compute_at(s[out], j0)
    ai, aj, ab, ao = s[acc].axis
    ko, ki = s[acc].reduce_axis
    ko0, ko1 = s[acc].split(ko, factor=cfg["tile_k"])
    s[acc].reorder(ko0, ko1, ai, aj, ab, ao, ki)
    for ax in (ab, ao, ki):
        s[acc].spatial_for(ax)
    s[dbuf].compute_at(s[acc], ko0)
    s[wbuf].compute_at(s[acc], ko0)
    return s, [data, weight, out]


def build(w: VTADenseWorkload, cfg: Mapping[str, Any] | None = None, name: str = "vta_dense",
          config: VTAConfig = DEFAULT_CONFIG):
    s, args = schedule(w, cfg, config)
    return tt.build(s, args, target="vta", name=name, config=config)


def pack_data(a: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """[M, K] -> [M/B, K/BI, B, BI]."""
    m, k = a.shape
    B, BI = config.batch, config.block_in
    return np.ascontiguousarray(a.reshape(m // B, B, k // BI, BI).transpose(0, 2, 1, 3))


def pack_weight(wt: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """[N, K] -> [N/BO, K/BI, BO, BI]."""
    n, k = wt.shape
    BO, BI = config.block_out, config.block_in
    return np.ascontiguousarray(wt.reshape(n // BO, BO, k // BI, BI).transpose(0, 2, 1, 3))


def unpack_output(y: np.ndarray) -> np.ndarray:
    """[M/B, N/BO, B, BO] -> [M, N]."""
    mb, nb, b, bo = y.shape
    return np.ascontiguousarray(y.transpose(0, 2, 1, 3).reshape(mb * b, nb * bo))


def reference(w: VTADenseWorkload, a: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """clip((a @ wt.T) >> shift) with int32 wrap-around accumulation, as int8."""
    acc = a.astype(np.int64) @ wt.astype(np.int64).T
    acc = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)
    return np.clip(acc >> w.shift, *w.clip).astype(np.int8)
