"""Matmul: tiletune (heuristic default and best of a sweep) vs NumPy (OpenBLAS, AVX-512),
PyTorch, ONNX Runtime and the FMA peak, on 1 and 2 threads.

    python benchmarks/matmul.py [--threads 1 2] [--sweep 12]

Writes ``benchmarks/results/matmul.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402  (unsets OPENBLAS_CORETYPE before numpy)
from tiletune.schedules import dense  # noqa: E402

SHAPES = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
          (1, 1024, 1024), (64, 1024, 1024), (1024, 64, 1024), (256, 4096, 256)]


def sweep(w: dense.DenseWorkload, n: int, seed: int) -> list[dict]:
    sp = dense.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if dense.is_valid(w, c) and c["parallel"]]
    rng = np.random.default_rng(seed)
    picks = [allc[i] for i in rng.choice(len(allc), size=min(n, len(allc)), replace=False)]
    blocked = [{**dense.default_config(w), "mr": mr, "nr": nr, "kc": kc}
               for mr, nr, kc in ((4, 64, 256), (8, 32, 256), (4, 64, 128))]
    return [dense.default_config(w)] + [c for c in blocked if c in allc] + picks


def time_cfg(w, cfg, a, b, threads):
    f = dense.build(w, cfg)
    f.set_num_threads(threads)
    c = np.empty((w.M, w.N), "float32")
    f(a, b, c)
    ref = a.astype("float64") @ b.astype("float64")
    if np.abs(c - ref).max() > 1e-3 * (np.abs(ref).max() + 1):
        raise AssertionError(f"{w.key()} {cfg}: wrong result")
    number = max(1, int(2e8 / w.flop))
    return f.time_evaluator(number=number, repeat=5)(a, b, c).min


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sweep", type=int, default=12)
    p.add_argument("--shapes", default="all", help="'all' or indices like 0,1")
    args = p.parse_args()
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]
    peak = common.fma_peak_gflops()
    print(f"measured FMA peak, one core: {peak:.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    rows, results = [], []
    for M, N, K in shapes:
        w = dense.DenseWorkload(M, N, K)
        a = rng.standard_normal((M, K)).astype("float32")
        b = rng.standard_normal((K, N)).astype("float32")
        candidates = sweep(w, args.sweep, seed=M + N + K)
        one_thread_best = None
        for threads in args.threads:
            gf = lambda t: w.flop / t / 1e9  # noqa: E731
            best_cfg, t_best = None, float("inf")
            for cfg in candidates:  # the best config for this thread count
                t = time_cfg(w, cfg, a, b, threads)
                if t < t_best:
                    best_cfg, t_best = cfg, t
            t_def = time_cfg(w, dense.default_config(w), a, b, threads)
            with common.numpy_threads(threads):
                t_np = common.best_time(lambda: a @ b)
            t_torch = float("nan")
            try:
                import torch
                torch.set_num_threads(threads)
                ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                t_torch = common.best_time(lambda: ta @ tb)
            except ImportError:
                pass
            make = common.ort_matmul(threads)
            t_ort = common.best_time(make(a, b)) if make else float("nan")
            if threads == 1:
                one_thread_best = gf(t_best)
            g = {"default": gf(t_def), "best": gf(t_best), "numpy": gf(t_np),
                 "torch": gf(t_torch), "onnxruntime": gf(t_ort)}
            scale = g["best"] / one_thread_best if one_thread_best else float("nan")
            results.append({"shape": [M, N, K], "threads": threads, "gflops": g,
                            "best_config": best_cfg, "scaling_vs_1_thread": scale})
            rows.append([f"{M}x{N}x{K}", threads, g["default"], g["best"], g["numpy"],
                         g["torch"], g["onnxruntime"], g["best"] / g["numpy"], scale,
                         100 * g["best"] / (peak * threads)])
            print(f"{M}x{N}x{K} x{threads}: best {g['best']:.1f} numpy {g['numpy']:.1f}",
                  flush=True)
    common.print_table("matmul (GFLOP/s)", ["shape", "thr", "tt default", "tt best", "numpy",
                                            "torch", "ort", "best/numpy", "x vs 1 thr",
                                            "% peak"], rows)
    common.write_json("matmul.json", {"peak_gflops": peak, "results": results})


if __name__ == "__main__":
    main()
