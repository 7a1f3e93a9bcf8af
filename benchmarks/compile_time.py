"""Compile time of conv2d candidates per ResNet-18 layer (whole build against LLVM's part of
the same modules) and the tuner's candidates per second end to end.

    python benchmarks/compile_time.py [--layers 1-12] [--configs 3] [--settings tuner light]
                                      [--tune resnet18:2-3] [--trials 48] [--no-tune]

Part 1, per layer, for the default config and ``configs - 1`` seeded random valid ones:
*whole* = ``schedule`` + ``tt.build`` (lowering, passes, LLVM IR text, LLVM, load); *LLVM* =
parsing the very module text that build emitted, LLVM's pass pipeline and machine code at
the same levels (a second compile of the same text, timed alone). Our Python is the
difference. Settings: the tuner's (``MeasureOption``'s ``opt_level`` / ``codegen_opt``) and
the light pipeline (O1 + codegen O2).

Part 2: a short ``tune`` session of the ``--tune`` layers (XGB tuner, workers building and
timing in parallel as in ``tiletune tune``): candidates measured per second of session wall
time, and where the main process spent it: the tuner's own work (feature extraction, model
fit, simulated annealing: ``next_batch`` + ``update``), waiting on the measurer (builds and
timings in the workers), and the rest (records, progress).

Writes ``benchmarks/results/compile_time.json``.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

import tiletune as tt  # noqa: E402
from benchmarks import common  # noqa: E402,F401  (unsets OPENBLAS_CORETYPE before numpy)
from benchmarks.conv2d_resnet18 import LAYERS, workload  # noqa: E402
from tiletune.backends.llvm import KernelIR  # noqa: E402
from tiletune.backends.llvm.jit import JitCode  # noqa: E402
from tiletune.schedules import conv2d  # noqa: E402
from tiletune.tuner import LocalMeasurer, MeasureOption, XGBTuner  # noqa: E402


def _settings() -> dict[str, tuple[int, int]]:
    o = MeasureOption()
    return {"tuner": (o.opt_level, o.codegen_opt), "light": (1, 2)}


def _layer_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _configs(w: conv2d.Conv2dWorkload, n: int, rng: np.random.Generator) -> list[dict]:
    sp = conv2d.space(w)
    allc = [dict(zip(sp, v)) for v in itertools.product(*sp.values())]
    allc = [c for c in allc if conv2d.is_valid(w, c)]
    picks = rng.choice(len(allc), size=min(max(n - 1, 0), len(allc)), replace=False)
    return [conv2d.default_config(w)] + [allc[i] for i in picks]


def build_split(w: conv2d.Conv2dWorkload, cfg: dict, ol: int, cg: int) -> tuple[float, float]:
    """(whole build seconds, LLVM's seconds on the same module text)."""
    t0 = time.perf_counter()
    s, a = conv2d.schedule(w, cfg)
    f = tt.build(s, a, opt_level=ol, codegen_opt=cg)
    whole = time.perf_counter() - t0
    text = f.get_source("ll")
    f.close()
    t0 = time.perf_counter()
    JitCode(KernelIR(text, "", "", ""), ol, cg).close()
    return whole, time.perf_counter() - t0


def compile_table(layers: list[int], n_configs: int, settings: list[str]) -> dict:
    out: dict = {}
    for name in settings:
        ol, cg = _settings()[name]
        rng = np.random.default_rng(0)
        rows, per_layer = [], {}
        for k in layers:
            w = workload(LAYERS[k - 1])
            pairs = [build_split(w, c, ol, cg) for c in _configs(w, n_configs, rng)]
            whole = statistics.median(p[0] for p in pairs)
            llvm = statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[0] / p[1] for p in pairs)
            per_layer[k] = {"whole_ms": 1e3 * whole, "llvm_ms": 1e3 * llvm,
                            "python_ms": 1e3 * (whole - llvm), "whole_over_llvm": ratio,
                            "n": len(pairs)}
            rows.append([k, len(pairs), 1e3 * whole, 1e3 * llvm, 1e3 * (whole - llvm), ratio])
            print(f"  {name} layer {k}: whole {1e3 * whole:.0f} ms, LLVM {1e3 * llvm:.0f} ms",
                  flush=True)
        med = statistics.median(r["whole_over_llvm"] for r in per_layer.values())
        common.print_table(f"conv2d candidate build, {name} settings (O{ol} + codegen O{cg}), "
                           f"median over configs; median whole/LLVM over layers {med:.2f}x",
                           ["layer", "n", "whole ms", "LLVM ms", "ours ms", "whole/LLVM"], rows)
        out[name] = {"opt_level": ol, "codegen_opt": cg, "layers": per_layer,
                     "median_whole_over_llvm": med}
    return out


class _Clock:
    """Seconds spent inside wrapped methods (the main process only)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def wrap(self, cls: type, method: str, label: str) -> None:
        orig = getattr(cls, method)

        @functools.wraps(orig)
        def timed(*args, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*args, **kw)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - t0

        setattr(cls, method, timed)


def tune_throughput(selection: str, trials: int) -> dict:
    from tiletune.tuner.session import tune_workloads
    from tiletune.tuner.session.workloads import parse_workloads

    clock = _Clock()
    clock.wrap(XGBTuner, "next_batch", "tuner")
    clock.wrap(XGBTuner, "update", "tuner")
    clock.wrap(LocalMeasurer, "__call__", "measure")
    option = MeasureOption()
    with tempfile.TemporaryDirectory() as d:
        summary = tune_workloads(parse_workloads(selection), trials=trials, tuner="xgb",
                                 records=os.path.join(d, "records.jsonl"), seed=0,
                                 option=option)
    n = sum(r.new_trials for r in summary.results)
    wall = summary.elapsed
    tuner_s, measure_s = clock.spent.get("tuner", 0.0), clock.spent.get("measure", 0.0)
    out = {"workloads": selection, "trials_per_workload": trials, "jobs": option.jobs,
           "candidates": n, "wall_s": wall, "candidates_per_s": n / wall,
           "tuner_s": tuner_s, "measure_s": measure_s,
           "tuner_fraction": tuner_s / wall, "measure_fraction": measure_s / wall,
           "other_fraction": max(0.0, 1 - (tuner_s + measure_s) / wall),
           "geomean_speedup": summary.geomean_speedup}
    common.print_table(
        f"tune {selection}: {n} candidates in {wall:.1f} s on {option.jobs} workers",
        ["candidates/s", "tuner's own work", "measurer (builds + timing)", "other"],
        [[n / wall, f"{100 * tuner_s / wall:.1f}%", f"{100 * measure_s / wall:.1f}%",
          f"{100 * out['other_fraction']:.1f}%"]])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="1-12", help="ResNet-18 layers, e.g. 1-12 or 2")
    p.add_argument("--configs", type=int, default=3,
                   help="configs per layer (the default plus seeded random ones)")
    p.add_argument("--settings", nargs="+", default=["tuner", "light"],
                   choices=sorted(_settings()))
    p.add_argument("--tune", default="resnet18:2-3", help="workloads of the tune session")
    p.add_argument("--trials", type=int, default=48, help="trials per tuned workload")
    p.add_argument("--no-tune", action="store_true", help="skip the tune session")
    args = p.parse_args()
    out = {"compile": compile_table(_layer_range(args.layers), args.configs, args.settings)}
    if not args.no_tune:
        out["tune"] = tune_throughput(args.tune, args.trials)
    common.write_json("compile_time.json", out)


if __name__ == "__main__":
    main()
