"""Sparse conv kernels vs the dense fp32 kernel on ResNet-18's 3x3 layers, 1 thread.

    python benchmarks/sparse.py [--layers 128 256 512] [--sparsity 0.5 0.7 0.8 0.9 0.95]
                                [--sweep 6]

Per layer: the dense fp32 tiletune kernel (its heuristic default and the best of a seeded
sweep of the conv2d templates, as ``conv2d_resnet18.py`` does), then CSR on unstructured
(element) pruning and BSR on 16x1 block pruning (16 output channels of one input element)
at each sparsity, every sparse kernel at the best of its default and a few seeded configs.
Sparse times include padding the input (the dense kernel pads inside). Break-even: the
sparsity where the speed-up over the best dense kernel crosses 1 (linear interpolation).
Writes ``benchmarks/results/sparse.json``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE before numpy)
from benchmarks.conv2d_resnet18 import sweep_configs, time_config  # noqa: E402
from tiletune.compress import prune  # noqa: E402
from tiletune.schedules import conv2d  # noqa: E402
from tiletune.schedules import sparse_conv2d as sc  # noqa: E402

LAYERS = {128: (128, 28), 256: (256, 14), 512: (512, 7)}
KINDS = (("csr", "element", 1), ("bsr", "block", 16))


def dense_best(w: conv2d.Conv2dWorkload, data, weight, sweep: int, seed: int
               ) -> tuple[float, float, tuple]:
    """(default, best of the sweep) seconds of the dense fp32 kernel, 1 thread, and the
    best config (re-timed between the sparse runs: the machine is shared and noisy)."""
    cands = sweep_configs(w, sweep, seed=seed)
    times = [time_config(w, c, data, weight, 1) for c in cands]
    return times[0], min(times), cands[int(np.argmin(times))]


def sparse_time(weight: np.ndarray, data: np.ndarray, fmt: str, block: int, configs: int
                ) -> tuple[float, dict]:
    """Best seconds of the default and ``configs`` seeded configs of the sparse kernel's
    space (each checked against NumPy)."""
    probe = sc.SparseConv2d(weight, data.shape, 1, 1, fmt, block)
    w = probe.workload
    sp = sc.space(w)
    sp["parallel"] = [True]
    ref = conv2d.reference(data, weight, 1, 1)
    best, best_cfg = float("inf"), None
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if sc.is_valid(w, c) and c != sc.default_config(w)]
    picks = np.random.default_rng(w.nnz).choice(len(allc), size=min(configs, len(allc)),
                                                replace=False)
    for cfg in [sc.default_config(w)] + [allc[i] for i in picks]:
        layer = sc.SparseConv2d(weight, data.shape, 1, 1, fmt, block, cfg=cfg)
        layer.kernel.set_num_threads(1)
        out = layer(data)
        err = np.abs(out - ref).max() / (np.abs(ref).max() + 1e-9)
        if err > 1e-4:
            raise AssertionError(f"{w.key()} {cfg}: wrong result (rel err {err:.2e})")
        flat = sc.pad_input(data, w, cfg)
        t_pad = common.best_time(lambda: sc.pad_input(data, w, cfg), repeat=3)  # noqa: B023
        t = layer.kernel.time_evaluator(number=5, repeat=5)(
            flat, layer.row_ptr, layer.offsets, layer.vals, layer.out).min
        if t + t_pad < best:
            best, best_cfg = t + t_pad, cfg
    return best, best_cfg


def break_even(points: list[tuple[float, float]]) -> float | None:
    """Sparsity where the speed-up crosses 1 (None: never crosses in the measured range)."""
    pts = sorted(points)
    if pts and pts[0][1] >= 1:
        return pts[0][0] if len(pts) == 1 else None
    for (s0, r0), (s1, r1) in zip(pts, pts[1:]):
        if r0 < 1 <= r1:
            return s0 + (1 - r0) * (s1 - s0) / (r1 - r0)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=list(LAYERS))
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95])
    p.add_argument("--sweep", type=int, default=4, help="random dense configs per template")
    p.add_argument("--sparse-configs", type=int, default=3,
                   help="random sparse configs besides the default")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    rows, results = [], []
    for C in args.layers:
        _, H = LAYERS[C]
        w = conv2d.Conv2dWorkload(1, C, H, H, C, 3, 3, 1, 1)
        data = rng.standard_normal((1, C, H, H)).astype(np.float32)
        weight = rng.standard_normal((C, C, 3, 3)).astype(np.float32)
        t_def, t_dense, best = dense_best(w, data, weight, args.sweep, seed=C)
        rec = {"layer": f"{C}x{H}x{H} 3x3", "dense_default_ms": t_def * 1e3,
               "dense_best_ms": t_dense * 1e3, "sparse": []}
        for fmt, gran, block in KINDS:
            pts = []
            for s in args.sparsity:
                wp = prune({"w": weight}, s, gran, block=(block, 1)).weights["w"]
                t, cfg = sparse_time(wp, data, fmt, block, args.sparse_configs)
                t_dense = min(t_dense, time_config(w, best, data, weight, 1))
                rec["sparse"].append({"format": fmt, "pruning": gran, "block": block,
                                      "sparsity": s, "ms": t * 1e3, "config": cfg})
                print(fmt, s, f"{t * 1e3:.3f} ms", flush=True)
        rec["dense_best_ms"] = t_dense * 1e3  # the fastest of all its timings
        for fmt, gran, _ in KINDS:
            pts = []
            for entry in rec["sparse"]:
                if entry["format"] != fmt:
                    continue
                t = entry["ms"] / 1e3
                entry["speedup_vs_best_dense"] = t_dense / t
                entry["speedup_vs_default_dense"] = t_def / t
                pts.append((entry["sparsity"], t_dense / t))
                rows.append([rec["layer"], f"{fmt} ({gran})", f"{entry['sparsity']:.0%}",
                             f"{t * 1e3:.3f}", f"{t_dense * 1e3:.3f}", f"{t_dense / t:.2f}x"])
            be = break_even(pts)
            rec[f"break_even_{fmt}"] = be
            rows.append([rec["layer"], f"{fmt} break-even",
                         "< measured" if be is None and pts and pts[0][1] >= 1 else
                         "-" if be is None else f"{be:.0%}", "", "", ""])
        results.append(rec)
    common.print_table("Sparse conv vs the best dense fp32 kernel (1 thread)",
                       ["layer", "kernel", "sparsity", "sparse ms", "dense ms", "speed-up"], rows)
    common.RESULTS.mkdir(exist_ok=True)
    out = common.RESULTS / "sparse.json"
    out.write_text(json.dumps({"host_lanes": sc.host_machine().vector_lanes,
                               "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
