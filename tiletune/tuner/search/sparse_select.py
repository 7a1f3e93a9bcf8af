"""Pick the sparse or the dense kernel for a pruned conv layer by measuring both.

A sparse kernel only pays off above a layer-dependent break-even sparsity, so the choice is
made on the machine: the dense fp32 conv2d (its tuned config when a dispatch context has
one, else the default) against CSR and, when the output channels allow it, BSR with
16-channel blocks, each at its default and a few configs of its space; the fastest wins.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...schedules import conv2d, dispatch
from ...schedules import sparse_conv2d as sc


@dataclass
class KernelChoice:
    """The chosen kernel (``"dense"``, ``"csr"`` or ``"bsr"``), its config and every timing."""

    kind: str
    config: dict[str, Any]
    seconds: float
    timings: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)


def _sparse_configs(w: sc.SparseConv2dWorkload, limit: int) -> list[dict[str, Any]]:
    sp = sc.space(w)
    sp["parallel"] = [True]
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if sc.is_valid(w, c)]
    default = sc.default_config(w)
    rest = [c for c in allc if c != default]
    rng = np.random.default_rng(0)
    picks = rng.choice(len(rest), size=min(limit, len(rest)), replace=False) if rest else []
    return [default] + [rest[i] for i in picks]


def select_conv_kernel(weight: np.ndarray, data_shape: tuple[int, int, int, int],
                       stride: int = 1, pad: int = 0, *, threads: int = 1,
                       configs: int = 3, number: int = 3, repeat: int = 3) -> KernelChoice:
    """Measure dense and sparse kernels for this pruned ``weight`` and return the fastest."""
    N, C, H, W = data_shape
    K, _, R, S = weight.shape
    rng = np.random.default_rng(0)
    data = rng.standard_normal(data_shape).astype(np.float32)
    timings: list[tuple[str, dict[str, Any], float]] = []
    wd = conv2d.Conv2dWorkload(N, C, H, W, K, R, S, stride, pad)
    cfg = dispatch.lookup(wd.key(), conv2d.default_config(wd), wd)
    f = conv2d.build(wd, cfg)
    f.set_num_threads(threads)
    out = np.empty((N, K, wd.OH, wd.OW), np.float32)
    packed = conv2d.pack_weight(weight.astype(np.float32), cfg)
    timings.append(("dense", dict(cfg), f.time_evaluator(number=number, repeat=repeat)(
        data, packed, out).min))
    formats = [("csr", 1)] + ([("bsr", 16)] if K % 16 == 0 else [])
    for fmt, block in formats:
        probe = sc.SparseConv2d(weight, data_shape, stride, pad, fmt, block)
        for scfg in _sparse_configs(probe.workload, configs):
            layer = sc.SparseConv2d(weight, data_shape, stride, pad, fmt, block, cfg=scfg)
            layer.kernel.set_num_threads(threads)
            flat = sc.pad_input(data, layer.workload, scfg)
            t = layer.kernel.time_evaluator(number=number, repeat=repeat)(
                flat, layer.row_ptr, layer.offsets, layer.vals, layer.out).min
            timings.append((fmt, {**scfg, "block": block}, t))
    kind, cfg_best, t_best = min(timings, key=lambda x: x[2])
    return KernelChoice(kind, cfg_best, t_best, timings)
