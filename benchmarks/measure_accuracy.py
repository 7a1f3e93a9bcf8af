"""Can the tuner's figures be trusted at microsecond scale? (issue 15)

    python benchmarks/measure_accuracy.py [--seeds 0 1] [--trials 16] [--kernels dense64 ...]
        [--layer resnet18:6] [--layer-trials 16] [--baseline main] [--skip-accuracy]

1. **Accuracy**, per kernel (dense 16^3-128^3, a small depthwise and a pointwise conv, the
   ResNet-18 classifier 1x512x1000) and seed: ``tune_workloads`` (1 thread, the default
   measurement options, confirmation on), then the reported best config and the heuristic
   default are built again in this process and timed independently by ``time_evaluator``
   (``number`` up to 2000 calls, repeats of >= 50 ms, 7 repeats; the median repeat is the
   reference). Reported: reported best / independent (target within +-15% for kernels of
   >= 2 us), chosen / default, both independent (target <= 1.05).
2. **Throughput**: candidates per second end to end (default config, search, confirmation;
   ``new trials / elapsed``) tuning one ResNet-18 layer, with this tree's code and, with
   ``--baseline REV``, with REV's code (``git archive REV`` extracted to a temporary
   directory and this script run against it in a subprocess, one after the other in the
   same run). Target: >= 5 candidates/s and no lower than the baseline.

Run it under ``flock /tmp/tiletune-bench.lock``; on a machine shared with other jobs the
figures are noisy (state it with them). Writes ``benchmarks/results/measure_accuracy.json``.
"""

from __future__ import annotations

import os

os.environ.pop("OPENBLAS_CORETYPE", None)  # before NumPy: the Haswell kernel halves BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

#: name -> (op, shape) as ``tiletune tune --op OP --shape SHAPE`` takes them.
KERNELS = {
    "dense16": ("dense", "16,16,16"),
    "dense32": ("dense", "32,32,32"),
    "dense64": ("dense", "64,64,64"),
    "dense96": ("dense", "96,96,96"),
    "dense128": ("dense", "128,128,128"),
    "classifier": ("dense", "1,1000,512"),  # ResNet-18's fc: 1x512 @ 512x1000
    "depthwise": ("depthwise", "1,64,14,14,3,1,1"),
    "pointwise": ("conv2d", "1,32,14,14,64,1,1,1,0"),
}

#: The accuracy target applies to kernels at least this long (seconds).
ACCURATE_FROM = 2e-6


def independent_time(task, index: int, seed: int) -> dict:
    """Build config ``index`` as the workers do and time it at length in this process."""
    import tiletune as tt
    from tiletune.tuner.measure.local import MeasureOption

    opt = MeasureOption()
    cfg = task.config(index)
    s, tensors = task.instantiate(cfg)
    mod = tt.build(s, tensors, target=task.target, name="independent",
                   opt_level=opt.opt_level, codegen_opt=opt.codegen_opt)
    try:
        arrays, _ = task.prepare(cfg, task.make_inputs(seed), tensors)
        mod.set_num_threads(1)
        one = mod.time_evaluator(1, 3)(*arrays).min
        number = int(min(2000, max(1, 0.05 / max(one, 1e-9))))
        t = mod.time_evaluator(number, 7)(*arrays)
    finally:
        mod.close()
    return {"median": t.median, "min": t.min, "mean": t.mean, "number": t.number}


def accuracy(kernels: list[str], seeds: list[int], trials: int) -> list[dict]:
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.session import tune_workloads
    from tiletune.tuner.session.progress import Reporter
    from tiletune.tuner.session.workloads import parse_op_shape

    rows = []
    for name in kernels:
        op, shape = KERNELS[name]
        for seed in seeds:
            wl = parse_op_shape(op, shape)
            with tempfile.TemporaryDirectory() as tmp:
                s = tune_workloads([wl], trials=trials, seed=seed, records=Path(tmp) / "r.jsonl",
                                   option=MeasureOption(jobs=2, threads=1), reporter=Reporter())
            r = s.results[0]
            task = wl.task()
            best = independent_time(task, r.best_index, seed)
            default = (independent_time(task, r.default_index, seed)
                       if r.default_index is not None else None)
            row = {"kernel": name, "op": op, "shape": shape, "seed": seed,
                   "trials": r.trials, "best_index": r.best_index,
                   "default_index": r.default_index, "reported_best": r.best_cost,
                   "independent_best": best, "default": default,
                   "reported_vs_independent": r.best_cost / best["median"],
                   "chosen_vs_default": (best["median"] / default["median"]
                                         if default else None),
                   "confirm_note": getattr(r, "confirm_note", ""), "elapsed": r.elapsed}
            rows.append(row)
            print(f"{name:>10} seed {seed}: reported {r.best_cost * 1e6:8.2f} us, independent "
                  f"{best['median'] * 1e6:8.2f} us ({row['reported_vs_independent']:.3f}x); "
                  f"default {default['median'] * 1e6 if default else math.nan:8.2f} us, "
                  f"chosen/default {row['chosen_vs_default'] or math.nan:.3f}", flush=True)
    return rows


def throughput(layer: str, trials: int) -> dict:
    """Candidates per second tuning ``layer`` (only APIs the baseline has too)."""
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.session import tune_workloads
    from tiletune.tuner.session.progress import Reporter
    from tiletune.tuner.session.workloads import parse_workloads

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        s = tune_workloads(parse_workloads(layer), trials=trials, seed=0,
                           records=Path(tmp) / "r.jsonl",
                           option=MeasureOption(jobs=2, threads=1), reporter=Reporter())
        wall = time.monotonic() - t0
    r = s.results[0]
    return {"layer": layer, "trials": trials, "new_trials": r.new_trials, "elapsed": wall,
            "candidates_per_s": r.new_trials / wall, "best_gflops": r.best_gflops}


def baseline_throughput(rev: str, layer: str, trials: int) -> dict:
    """:func:`throughput` with ``rev``'s code, in a subprocess."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="tiletune-base-") as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", rev],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--throughput-only",
             "--layer", layer, "--layer-trials", str(trials)],
            check=True, capture_output=True, text=True, cwd=tmp,
            env=dict(os.environ, PYTHONPATH=tmp))
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"rev": rev}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--layer", default="resnet18:6")
    ap.add_argument("--layer-trials", type=int, default=24)
    ap.add_argument("--baseline", metavar="REV", help="also measure throughput with REV's code")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--out", default="measure_accuracy.json",
                    help="file name under benchmarks/results/")
    ap.add_argument("--throughput-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.throughput_only:  # the baseline's subprocess: one JSON line on stdout
        print(json.dumps(throughput(args.layer, args.layer_trials)))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.common import print_table, write_json

    payload: dict = {"host": os.uname().nodename, "cpu_count": os.cpu_count(),
                     "note": "shared 2-core machine: other jobs compile meanwhile"}
    try:
        from tiletune.tuner.measure.host_timing import (
            call_overhead_s,
            clock_step_s,
            host_min_repeat_ms,
        )
        payload["host_timing"] = {"clock_step_ns": clock_step_s() * 1e9,
                                  "call_overhead_us": call_overhead_s() * 1e6,
                                  "min_repeat_ms": host_min_repeat_ms()}
    except ImportError:  # code from before issue 15 (run against a baseline tree)
        payload["host_timing"] = None
    print(f"host timing: {payload['host_timing']}")
    if not args.skip_accuracy:
        rows = accuracy(args.kernels, args.seeds, args.trials)
        payload["accuracy"] = rows
        print_table("reported best vs an independent long measurement (1 thread)",
                    ["kernel", "seed", "reported us", "independent us", "ratio",
                     "default us", "chosen/default"],
                    [[r["kernel"], r["seed"], r["reported_best"] * 1e6,
                      r["independent_best"]["median"] * 1e6, r["reported_vs_independent"],
                      (r["default"] or {}).get("median", math.nan) * 1e6,
                      r["chosen_vs_default"] or math.nan] for r in rows])
        timed = [r for r in rows if r["independent_best"]["median"] >= ACCURATE_FROM]
        worst = max((abs(r["reported_vs_independent"] - 1) for r in timed), default=0.0)
        slowest = max((r["chosen_vs_default"] or 0.0 for r in rows), default=0.0)
        payload["targets"] = {"max_abs_error_ge_2us": worst, "within_15pct": worst <= 0.15,
                              "max_chosen_vs_default": slowest,
                              "never_5pct_slower": slowest <= 1.05}
        print(f"worst |reported/independent - 1| (kernels >= 2 us): {worst:.1%} "
              f"(target 15%); worst chosen/default: {slowest:.3f} (target <= 1.05)")
    if args.skip_throughput:
        write_json(args.out, payload)
        return
    tp = [throughput(args.layer, args.layer_trials)]
    if args.baseline:
        tp.append(baseline_throughput(args.baseline, args.layer, args.layer_trials))
    payload["throughput"] = tp
    print_table(f"candidates per second tuning {args.layer} (end to end)",
                ["code", "new trials", "seconds", "candidates/s"],
                [[t.get("rev", "this tree"), t["new_trials"], t["elapsed"],
                  t["candidates_per_s"]] for t in tp])
    if len(tp) == 2:
        payload["throughput_ratio"] = tp[0]["candidates_per_s"] / tp[1]["candidates_per_s"]
        print(f"this tree / {args.baseline}: {payload['throughput_ratio']:.2f}x")
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
