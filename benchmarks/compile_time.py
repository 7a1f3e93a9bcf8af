"""Compile time of one conv2d candidate (schedule + lower + passes + LLVM + load), median over
seeded random configs of ResNet-18 layers, at the tuner's settings and at the light pipeline.

    python benchmarks/compile_time.py [--configs 20]

Writes ``benchmarks/results/compile_time.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

import tiletune as tt  # noqa: E402
from benchmarks import common  # noqa: E402,F401  (unsets OPENBLAS_CORETYPE before numpy)
from tiletune.schedules import conv2d  # noqa: E402

LAYERS = [(64, 56, 56, 64, 3, 3, 1, 1), (128, 28, 28, 128, 3, 3, 1, 1),
          (256, 14, 14, 256, 3, 3, 1, 1), (64, 56, 56, 128, 1, 1, 2, 0)]
SETTINGS = {"light (O1 + codegen O2)": (1, 2), "tuner (O2 + codegen O2)": (2, 2),
            "default (O3 + codegen O3)": (3, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=int, default=20, help="random configs per layer")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    rows, out = [], {}
    for name, (ol, cg) in SETTINGS.items():
        times = []
        for layer in LAYERS:
            w = conv2d.Conv2dWorkload(1, *layer)
            sp = conv2d.space(w)
            allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
            allc = [c for c in allc if conv2d.is_valid(w, c)]
            for i in rng.choice(len(allc), size=min(args.configs, len(allc)), replace=False):
                t0 = time.perf_counter()
                s, a = conv2d.schedule(w, allc[i])
                f = tt.build(s, a, opt_level=ol, codegen_opt=cg)
                times.append(time.perf_counter() - t0)
                f.close()
        med, p90 = statistics.median(times), float(np.percentile(times, 90))
        out[name] = {"median_ms": 1e3 * med, "p90_ms": 1e3 * p90, "n": len(times)}
        rows.append([name, len(times), 1e3 * med, 1e3 * p90])
        print(f"{name}: median {1e3 * med:.1f} ms over {len(times)} candidates", flush=True)
    common.print_table("conv2d candidate compile time (ms)", ["settings", "n", "median", "p90"],
                       rows)
    common.write_json("compile_time.json", out)


if __name__ == "__main__":
    main()
