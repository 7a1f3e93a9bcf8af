"""int8 conv2d on the VTA accelerator: packed layouts, a tunable template, a NumPy reference.

Layouts (BATCH x BLOCK_IN x BLOCK_OUT = 1 x 16 x 16 by default)::

    data    [N/B, C/BI, H, W, B, BI]          int8
    kernel  [K/BO, C/BI, R, S, BO, BI]        int8   (one 16 x 16 WGT entry per (o, i, r, s))
    bias    [K/BO, B, BO]                     int32  (optional)
    out     [N/B, K/BO, OH, OW, B, BO]        int8   = clip((conv + bias) >> shift, lo, hi)

Stages and schedule (TVM's ``conv2d_packed.vta`` template)::

    for vt in virtual_thread(oc_nthread | h_nthread):             # 1 or 2 threads
      for b0, i0, co0, j0:                                        # output tiles
        conv = allocate(vta.acc); conv = 0                        # GEMM reset
        for ko.outer:                                             # tile_ci input blocks
          pad = allocate(vta.inp)  <- DMA of data with zero padding
          kernel.vta.wgt = allocate(vta.wgt)  <- DMA of kernel
          for ko.inner, j, dx, dy, co, i: spatial(c, ki): conv += pad * kernel   # GEMM
        res = clip((conv + bias) // 2**shift)                     # ALU, in place in ACC
        out[tile] = int8(res)                                     # STORE

Knobs: ``tile_b``, ``tile_h``, ``tile_w``, ``tile_ci``, ``tile_co`` (tile sizes, in batch
blocks, output rows, output columns, input and output channel blocks; divisors of the
extents) and the virtual threads ``oc_nthread``, ``h_nthread`` (at most 2 in total).
``is_valid`` rejects configs whose tiles overflow INP, WGT, ACC or the micro-op buffer
before anything is measured; the measured cost is simulated cycles.
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
class VTAConv2dWorkload:
    """A conv2d layer (NCHW sizes) plus its requantisation epilogue."""

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    shift: int = 8
    clip: tuple[int, int] = (0, 127)  # (0, 127): ReLU; (-128, 127): plain saturation
    bias: bool = False

    @property
    def OH(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def OW(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def macs(self) -> int:
        return self.N * self.K * self.OH * self.OW * self.C * self.R * self.S

    @property
    def flop(self) -> int:
        return 2 * self.macs

    def ideal_cycles(self, config: VTAConfig = DEFAULT_CONFIG) -> float:
        """MACs / MACs per GEMM cycle (256 by default)."""
        return self.macs / (config.batch * config.block_in * config.block_out)

    def key(self) -> str:
        return (f"vta_conv2d_{self.N}x{self.C}x{self.H}x{self.W}_k{self.K}_{self.R}x{self.S}"
                f"_s{self.stride}_p{self.pad}_shr{self.shift}_clip{self.clip[0]}_{self.clip[1]}"
                f"{'_bias' if self.bias else ''}")

    def check(self, config: VTAConfig = DEFAULT_CONFIG) -> None:
        """ScheduleError unless the layer fits VTA's packed layout at all."""
        blocks = (("N", self.N, config.batch), ("C", self.C, config.block_in),
                  ("K", self.K, config.block_out))
        for name, n, b in blocks:
            if n % b:
                raise ScheduleError(f"vta_conv2d: {name}={n} is not a multiple of the VTA "
                                    f"block {b} (layers like ResNet's 3-channel first conv "
                                    "stay on the CPU)")
        if self.OH < 1 or self.OW < 1:
            raise ScheduleError(f"vta_conv2d: empty output for {self}")
        if self.pad > 15:
            raise ScheduleError(f"vta_conv2d: pad={self.pad} exceeds the 15 a LOAD can pad")


KNOBS = ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co", "oc_nthread", "h_nthread")


def space(w: VTAConv2dWorkload, config: VTAConfig = DEFAULT_CONFIG) -> dict[str, list[Any]]:
    """Legal values of every knob (cross-knob limits are in ``is_valid``)."""
    w.check(config)
    return {
        "tile_b": divisors(w.N // config.batch),
        "tile_h": divisors(w.OH),
        "tile_w": divisors(w.OW),
        "tile_ci": divisors(w.C // config.block_in),
        "tile_co": divisors(w.K // config.block_out),
        "oc_nthread": [1, 2],
        "h_nthread": [1, 2],
    }


def usage(w: VTAConv2dWorkload, cfg: Mapping[str, Any], config: VTAConfig = DEFAULT_CONFIG
          ) -> dict[str, int]:
    """SRAM entries and micro-ops one config needs (all threads), as the compiler plans them."""
    threads = cfg["oc_nthread"] * cfg["h_nthread"]
    rows = min((cfg["tile_h"] - 1) * w.stride + w.R, w.H + 2 * w.pad)
    cols = min((cfg["tile_w"] - 1) * w.stride + w.S, w.W + 2 * w.pad)
    inp = cfg["tile_b"] * cfg["tile_ci"] * rows * cols
    wgt = cfg["tile_co"] * cfg["tile_ci"] * w.R * w.S
    acc = cfg["tile_b"] * cfg["tile_co"] * cfg["tile_h"] * cfg["tile_w"]
    acc += cfg["tile_co"] if w.bias else 0
    return {"inp": inp * threads, "wgt": wgt * threads, "acc": acc * threads, "uop": wgt}


def invalid_reason(w: VTAConv2dWorkload, cfg: Mapping[str, Any],
                   config: VTAConfig = DEFAULT_CONFIG) -> str | None:
    """Why a config cannot run (None if it can): thread splits and buffer capacities."""
    threads = cfg["oc_nthread"] * cfg["h_nthread"]
    if threads > 2:
        return "VTA interleaves at most 2 virtual threads (oc_nthread x h_nthread <= 2)"
    if (w.K // config.block_out // cfg["tile_co"]) % cfg["oc_nthread"]:
        return "oc_nthread must divide the number of output-channel tiles"
    if (w.OH // cfg["tile_h"]) % cfg["h_nthread"]:
        return "h_nthread must divide the number of row tiles"
    u = usage(w, cfg, config)
    for name, depth in (("inp", config.inp_depth), ("wgt", config.wgt_depth),
                        ("acc", config.acc_depth), ("uop", config.uop_depth)):
        if u[name] > depth:
            return f"{name.upper()} overflow: {u[name]} entries > {depth}"
    return None


def is_valid(w: VTAConv2dWorkload, cfg: Mapping[str, Any],
             config: VTAConfig = DEFAULT_CONFIG) -> bool:
    return invalid_reason(w, cfg, config) is None


def default_config(w: VTAConv2dWorkload, config: VTAConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """A heuristic: two threads over output channels, whole input rows, the largest tiles
    that fit (output-channel tile first, then rows, then input channels)."""
    sp = space(w, config)
    best: tuple | None = None
    for oc_t, h_t in ((2, 1), (1, 2), (1, 1)):
        for tco in sp["tile_co"]:
            for th in sp["tile_h"]:
                for tci in sp["tile_ci"]:
                    cfg = {"tile_b": 1, "tile_h": th, "tile_w": w.OW, "tile_ci": tci,
                           "tile_co": tco, "oc_nthread": oc_t, "h_nthread": h_t}
                    if tco > 4 or not is_valid(w, cfg, config):
                        continue
                    score = (tco * th * w.OW >= 64, tci, tco, th)
                    if best is None or score > best[0]:
                        best = (score, cfg)
        if best is not None:
            return best[1]
    return {"tile_b": 1, "tile_h": 1, "tile_w": 1, "tile_ci": 1, "tile_co": 1,
            "oc_nthread": 1, "h_nthread": 1}


def _check(w: VTAConv2dWorkload, cfg: Mapping[str, Any], config: VTAConfig,
           validate: bool = True) -> None:
    sp = space(w, config)
    for knob, choices in sp.items():
        if knob not in cfg:
            raise ScheduleError(f"vta_conv2d config lacks knob {knob!r} (choices {choices})")
        if cfg[knob] not in choices:
            raise ScheduleError(f"vta_conv2d knob {knob}={cfg[knob]!r} is not one of {choices}")
    reason = invalid_reason(w, cfg, config) if validate else None
    if reason:
        raise ScheduleError(f"vta_conv2d config {dict(cfg)}: {reason}")


def compute(w: VTAConv2dWorkload, config: VTAConfig = DEFAULT_CONFIG):
    """Placeholders and stages: data, kernel, bias (or None), pad (or None), conv, res, out."""
    B, BI, BO = config.batch, config.block_in, config.block_out
    data = tt.placeholder((w.N // B, w.C // BI, w.H, w.W, B, BI), "int8", name="data")
    kernel = tt.placeholder((w.K // BO, w.C // BI, w.R, w.S, BO, BI), "int8", name="kernel")
    bias = tt.placeholder((w.K // BO, B, BO), "int32", name="bias") if w.bias else None
    pad = None
    src = data
    if w.pad:
        p = w.pad
        pad = tt.compute(
            (w.N // B, w.C // BI, w.H + 2 * p, w.W + 2 * p, B, BI),
            lambda n, c, y, x, b, i: tt.if_then_else(
                tt.all(y >= p, y < w.H + p, x >= p, x < w.W + p),
                data[n, c, y - p, x - p, b, i], tt.const(0, "int8")), name="pad")
        src = pad
    ko = tt.reduce_axis(w.C // BI, "ko")
    dy, dx = tt.reduce_axis(w.R, "dy"), tt.reduce_axis(w.S, "dx")
    ki = tt.reduce_axis(BI, "ki")
    s = w.stride
    conv = tt.compute(
        (w.N // B, w.K // BO, w.OH, w.OW, B, BO),
        lambda n, co, i, j, b, c: tt.sum(
            src[n, ko, i * s + dy, j * s + dx, b, ki].astype("int32")
            * kernel[co, ko, dy, dx, c, ki].astype("int32"), axis=[ko, dy, dx, ki]),
        name="conv")
    lo, hi = w.clip

    def epilogue(n, co, i, j, b, c):
        x = conv[n, co, i, j, b, c]
        if bias is not None:
            x = x + bias[co, b, c]
        return tt.min(tt.max(x // (1 << w.shift), lo), hi)

    res = tt.compute(conv.shape, epilogue, name="res")
    out = tt.compute(conv.shape, lambda n, co, i, j, b, c: res[n, co, i, j, b, c].astype("int8"),
                     name="out")
    return data, kernel, bias, pad, conv, res, out


def schedule(w: VTAConv2dWorkload, cfg: Mapping[str, Any] | None = None,
             config: VTAConfig = DEFAULT_CONFIG, validate: bool = True):
    """The schedule and kernel arguments ``[data, kernel, (bias,) out]`` for a config.

    ``validate=False`` skips ``is_valid`` (the compiler then reports what does not fit).
    """
    cfg = default_config(w, config) if cfg is None else dict(cfg)
    _check(w, cfg, config, validate)
    data, kernel, bias, pad, conv, res, out = compute(w, config)
    s = tt.create_schedule(out)
    kbuf = s.cache_read(kernel, "vta.wgt", [conv])
    if pad is not None:
        s[pad].set_scope("vta.inp")
        dbuf = pad
    else:
        dbuf = s.cache_read(data, "vta.inp", [conv])
    s[conv].set_scope("vta.acc")
    s[res].set_scope("vta.acc")
    bbuf = s.cache_read(bias, "vta.acc", [res]) if bias is not None else None

    # output tiles: b0, i0, co0, j0 | co1, i1, j1, b, c ; the store point is j0
    b, co, i, j, bi, ci = s[out].axis
    b0, b1 = s[out].split(b, factor=cfg["tile_b"])
    co0, co1 = s[out].split(co, factor=cfg["tile_co"])
    i0, i1 = s[out].split(i, factor=cfg["tile_h"])
    j0, j1 = s[out].split(j, factor=cfg["tile_w"])
    s[out].reorder(b0, i0, co0, j0, b1, co1, i1, j1, bi, ci)
    threads = []
    if cfg["oc_nthread"] > 1:
        vt, co0 = s[out].split(co0, nparts=cfg["oc_nthread"])
        threads.append(vt)
    if cfg["h_nthread"] > 1:
        vt, i0 = s[out].split(i0, nparts=cfg["h_nthread"])
        threads.append(vt)
    if threads:
        s[out].reorder(*threads, b0)
        for vt in threads:
            s[out].virtual_thread(vt)
    for stage in (conv, res) + ((bbuf,) if bbuf is not None else ()):
        s[stage].compute_at(s[out], j0)

    # the GEMM: k-steps of tile_ci input blocks; the spatial block is the 1 x 16 x 16 unit
    nb, nco, ni, nj, nbi, nci = s[conv].axis
    rko, rdy, rdx, rki = s[conv].reduce_axis
    ko0, ko1 = s[conv].split(rko, factor=cfg["tile_ci"])
    s[conv].reorder(nb, ko0, ko1, nj, rdx, rdy, nco, ni, nbi, nci, rki)
    for ax in (nbi, nci, rki):
        s[conv].spatial_for(ax)
    s[dbuf].compute_at(s[conv], ko0)
    s[kbuf].compute_at(s[conv], ko0)
    args = [data, kernel] + ([bias] if bias is not None else []) + [out]
    return s, args


def build(w: VTAConv2dWorkload, cfg: Mapping[str, Any] | None = None, name: str = "vta_conv2d",
          config: VTAConfig = DEFAULT_CONFIG):
    """Compile the template for the VTA simulator; call ``f(data, kernel, [bias,] out)``."""
    s, args = schedule(w, cfg, config)
    return tt.build(s, args, target="vta", name=name, config=config)


# -- layouts and reference --------------------------------------------------------------------
def pack_data(x: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """NCHW -> [N/B, C/BI, H, W, B, BI]."""
    n, c, h, w = x.shape
    B, BI = config.batch, config.block_in
    return np.ascontiguousarray(x.reshape(n // B, B, c // BI, BI, h, w).transpose(0, 2, 4, 5, 1, 3))


def pack_kernel(k: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """OIHW -> [O/BO, I/BI, R, S, BO, BI]."""
    o, i, r, s = k.shape
    BO, BI = config.block_out, config.block_in
    blocks = k.reshape(o // BO, BO, i // BI, BI, r, s)
    return np.ascontiguousarray(blocks.transpose(0, 2, 4, 5, 1, 3))


def pack_bias(bias: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """[K] int32 -> [K/BO, B, BO] (the same bias for every batch lane)."""
    BO = config.block_out
    blocks = bias.astype(np.int32).reshape(-1, 1, BO)
    return np.ascontiguousarray(np.repeat(blocks, config.batch, axis=1))


def pack_output(y: np.ndarray, config: VTAConfig = DEFAULT_CONFIG) -> np.ndarray:
    """NCHW -> [N/B, K/BO, OH, OW, B, BO] (the inverse of ``unpack_output``)."""
    n, k, oh, ow = y.shape
    B, BO = config.batch, config.block_out
    blocks = y.reshape(n // B, B, k // BO, BO, oh, ow)
    return np.ascontiguousarray(blocks.transpose(0, 2, 4, 5, 1, 3))


def unpack_output(y: np.ndarray) -> np.ndarray:
    """[N/B, K/BO, OH, OW, B, BO] -> NCHW."""
    nb, kb, oh, ow, b, bo = y.shape
    return np.ascontiguousarray(y.transpose(0, 4, 1, 5, 2, 3).reshape(nb * b, kb * bo, oh, ow))


def reference(w: VTAConv2dWorkload, data: np.ndarray, kernel: np.ndarray,
              bias: np.ndarray | None = None) -> np.ndarray:
    """int8 NCHW output: clip((conv(data, kernel) + bias) >> shift) in int32 arithmetic."""
    x = np.pad(data.astype(np.int64), ((0, 0), (0, 0), (w.pad, w.pad), (w.pad, w.pad)))
    acc = np.zeros((w.N, w.K, w.OH, w.OW), np.int64)
    s = w.stride
    for r in range(w.R):
        for c in range(w.S):
            patch = x[:, :, r:r + s * w.OH:s, c:c + s * w.OW:s]
            acc += np.einsum("nchw,kc->nkhw", patch, kernel[:, :, r, c].astype(np.int64))
    acc = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)  # int32 accumulation wraps
    if bias is not None:
        acc = acc + bias.astype(np.int32)[None, :, None, None]
    return np.clip(acc >> w.shift, *w.clip).astype(np.int8)
