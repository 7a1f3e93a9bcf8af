"""Tuner efficiency on replayed measurements: how many trials each tuner needs.

    python benchmarks/tuner_efficiency.py [--layers resnet18:2 resnet18:7 resnet18:12]
        [--sample 600] [--seeds 10] [--tuners random xgb ...] [--remeasure]
        [--real [--real-layers resnet18:7 resnet18:12] [--real-trials 64]]

1. **Datasets.** For each layer, a seeded sample of up to ``--sample`` valid configs (the
   heuristic default included) is measured once with the real harness (``LocalMeasurer``)
   and cached in ``benchmarks/data/replay_<layer>.json``; later runs reuse it
   (``--remeasure`` measures again).
2. **Replay.** Every tuner of the registry (:data:`tiletune.tuner.session.TUNERS`: random,
   grid, xgb, xgb-lasso, active (BTED + BAO), transfer (deep-kernel GP), transfer-xgb) plus
   the ablation ``transfer-xgb-knob`` (transfer-xgb without the shape descriptors) tunes a
   space restricted to the sample, with a fake measure function reading the cached costs,
   for ``--seeds`` seeds. Transfer tuners: leave one layer out (history = the other layers'
   datasets).
3. **Report**, per tuner and layer: trials to reach 90/95/99% of the sample's best
   throughput (mean ± std over seeds; a seed that never gets there counts as the sample size
   + 1 and is flagged), the best found after 32/64/128 trials (% of the best), and the spread
   across seeds of the best at 64 trials (std and max - min, per layer and averaged).
   Targets: XGB reaches 95% in <= 1/3 of the trials random needs; active reaches 95% in fewer
   trials than XGB with a >= 50% smaller spread at 64; transfer reaches 95% in <= 1/2 of
   XGB's trials.
4. ``--real``: one real tuning run per tuner (seed 0, ``--real-trials`` trials) on
   ``--real-layers`` with :func:`tiletune.tuner.session.tune_workloads`, as ``tiletune tune``
   runs it (default config first, then the tuner; transfer tuners get the cached datasets of
   the other layers as ``--transfer-from`` records); reports the best GFLOP/s found and the
   trials to reach 95% of that run's best.

The combined algorithm space (direct NCHWc / NCHW, Winograd, im2col: template
``conv2d_auto``) is the preset ``resnet18-auto``, e.g. ``--layers resnet18-auto:12``; its
datasets are ``replay_resnet18-auto_<n>.json``.

Writes ``benchmarks/results/tuner_efficiency.json``.
"""

from __future__ import annotations

import os

os.environ.pop("OPENBLAS_CORETYPE", None)  # before NumPy: the Haswell kernel halves BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tiletune.tuner.measure.result import MeasureInput, MeasureResult  # noqa: E402
from tiletune.tuner.records.store import make_record  # noqa: E402
from tiletune.tuner.session import (  # noqa: E402
    TUNERS,
    TunerContext,
    default_index,
    make_tuner,
    register_tuner,
    xgb_plan,
)
from tiletune.tuner.session.workloads import parse_workloads  # noqa: E402


@register_tuner("transfer-xgb-knob", "ablation: transfer-xgb on knob features only",
                uses_history=True)
def _transfer_xgb_knob(ctx: TunerContext) -> Any:
    from tiletune.tuner.search.transfer import TransferTuner, transfer_data

    featurize, history = transfer_data(ctx, descriptors=False)
    return TransferTuner(ctx.space, history, featurize, seed=ctx.seed, method="xgb",
                         plan_size=xgb_plan(ctx.n_trial)["plan_size"])


HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
LEVELS = (0.90, 0.95, 0.99)
CHECKPOINTS = (32, 64, 128)
DEFAULT_LAYERS = ("resnet18:2", "resnet18:7", "resnet18:12")


# --------------------------------------------------------------------------- datasets
def dataset_path(layer: str, data: Path = DATA) -> Path:
    return data / f"replay_{layer.replace(':', '_')}.json"


def measure_dataset(layer: str, sample: int, seed: int, jobs: int) -> dict[str, Any]:
    """Measure a seeded sample of ``layer``'s valid configs with the real harness."""
    from tiletune.backends.llvm.target import host
    from tiletune.tuner.measure.local import LocalMeasurer, MeasureOption

    (wl,) = parse_workloads(layer)
    task = wl.task()
    valid = task.space.valid_indices()
    rng = np.random.default_rng(seed)
    pick = set(int(i) for i in rng.choice(valid, size=min(sample, len(valid)), replace=False))
    d = default_index(task)
    if d is not None and d not in pick:
        pick.discard(max(pick))
        pick.add(d)
    indices = sorted(pick)
    option = MeasureOption(number=4, repeat=3, jobs=jobs, threads=1)
    costs: list[float | None] = []
    errors: list[str | None] = []
    t0 = time.monotonic()
    with LocalMeasurer(task, option, seed=0) as measure:
        for start in range(0, len(indices), 32):
            batch = indices[start:start + 32]
            for r in measure(batch):
                costs.append(r.mean if r.ok else None)
                errors.append(None if r.ok else f"{r.error}: {r.message}"[:200])
            print(f"  {layer}: measured {len(costs)}/{len(indices)} configs "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
    return {"layer": layer, "workload_key": task.workload_key, "template": task.name,
            "args": list(task.args), "n_space": len(task.space),
            "n_valid": int(len(valid)), "seed": seed, "indices": indices, "costs": costs,
            "errors": errors, "default_index": d, "flop": float(task.flop),
            "option": {"number": 4, "repeat": 3, "threads": 1, "jobs": jobs},
            "host_cpu": host()[1], "measure_seconds": time.monotonic() - t0,
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def load_dataset(layer: str, sample: int, seed: int, jobs: int, remeasure: bool,
                 data: Path = DATA) -> dict[str, Any]:
    path = dataset_path(layer, data)
    if path.exists() and not remeasure:
        ds = json.loads(path.read_text())
        print(f"{layer}: {len(ds['indices'])} cached measurements from {path.name}")
        return ds
    print(f"{layer}: measuring a sample of up to {sample} configs (cached in {path})")
    ds = measure_dataset(layer, sample, seed, jobs)
    n_fail = sum(c is None for c in ds["costs"])
    if n_fail > len(ds["costs"]) // 2:
        raise SystemExit(f"{layer}: {n_fail} of {len(ds['costs'])} measurements failed "
                         f"(first: {next(e for e in ds['errors'] if e)}); not caching")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ds))
    return ds


# --------------------------------------------------------------------------- replay
@dataclass
class ReplayTask:
    """A task whose space is restricted to a dataset's measured configs."""

    name: str
    args: tuple
    target: str
    workload_key: str
    flop: float
    space: Any
    costs: dict[int, float | None]
    errors: dict[int, str | None]

    def measure(self, indices: list[int]) -> list[MeasureResult]:
        out = []
        for i in indices:
            c = self.costs.get(int(i))
            if c is None:
                err = (self.errors.get(int(i)) or "Unknown: not in the dataset")
                cls, _, msg = err.partition(": ")
                out.append(MeasureResult.failure(cls if cls in _CLASSES else "Unknown", msg))
            else:
                out.append(MeasureResult.success([c]))
        return out

    @property
    def best_throughput(self) -> float:
        return max(1.0 / c for c in self.costs.values() if c)


_CLASSES = set()


def replay_task(ds: dict[str, Any]) -> ReplayTask:
    from tiletune.tuner.measure.result import ERROR_CLASSES
    from tiletune.tuner.templates.task import Task

    _CLASSES.update(ERROR_CLASSES)
    task = Task(ds["template"], tuple(ds["args"]))
    members = frozenset(ds["indices"])
    task.space.add_constraint(lambda c: c.index in members, "in the replay sample")
    return ReplayTask(task.name, task.args, task.target, task.workload_key, float(ds["flop"]),
                      task.space, dict(zip(ds["indices"], ds["costs"])),
                      dict(zip(ds["indices"], ds["errors"])))


def history_records(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of other layers (for transfer tuners): one per measured config."""
    from tiletune.tuner.templates.task import Task

    recs = []
    for ds in datasets:
        space = Task(ds["template"], tuple(ds["args"])).space
        for i, c, e in zip(ds["indices"], ds["costs"], ds["errors"]):
            res = (MeasureResult.success([c]) if c is not None else
                   MeasureResult.failure("Unknown", e or ""))
            recs.append(make_record(MeasureInput(ds["workload_key"], i, space.get(i).to_json()),
                                    res, template=ds["template"], tuner="replay"))
    return recs


def run_one(tuner_name: str, rt: ReplayTask, seed: int, budget: int,
            history: list[dict[str, Any]], batch_size: int) -> list[float]:
    """Best-so-far fraction of the best throughput after each trial (until 99% and at least
    the last checkpoint, or the whole sample)."""
    tuner = make_tuner(tuner_name, TunerContext(rt, seed, budget, history))  # type: ignore[arg-type]
    best = rt.best_throughput
    need = max(CHECKPOINTS)

    def stop_when_done(t: Any, indices: list[int], results: list[MeasureResult]) -> None:
        if len(t.xs) >= need and t.best_cost < math.inf and 1.0 / t.best_cost >= LEVELS[-1] * best:
            t.stop("99% reached")

    n = len(rt.costs)
    tuner.tune(rt.measure, n, batch_size=batch_size, callbacks=[stop_when_done],
               max_consecutive_failures=n + 1)
    curve, cur = [], 0.0
    for r in tuner.results:
        if r.ok:
            cur = max(cur, 1.0 / r.mean / best)
        curve.append(cur)
    return curve


def summarize(curves: list[list[float]], n_sample: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in LEVELS:
        hits = [next((k + 1 for k, v in enumerate(c) if v >= q - 1e-12), None) for c in curves]
        vals = [h if h is not None else n_sample + 1 for h in hits]
        out[f"trials_to_{round(q * 100)}"] = {
            "mean": float(np.mean(vals)), "std": float(np.std(vals)),
            "median": float(np.median(vals)), "min": int(min(vals)), "max": int(max(vals)),
            "censored": sum(h is None for h in hits), "per_seed": vals}
    for k in CHECKPOINTS:
        vals = [c[min(k, len(c)) - 1] * 100 if c else 0.0 for c in curves]
        out[f"best_at_{k}"] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)),
                               "min": float(min(vals)), "max": float(max(vals)),
                               "range": float(max(vals) - min(vals)), "per_seed": vals}
    return out


# --------------------------------------------------------------------------- real runs
def real_runs(tuners: list[str], layers: list[str], trials: int, jobs: int,
              datasets: dict[str, dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """One real tuning run (seed 0) per tuner and layer, through ``tune_workloads`` as the
    CLI runs it; transfer tuners get the cached datasets of the other layers as records."""
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.records.store import load_records, record_result
    from tiletune.tuner.session import tune_workloads

    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for layer in layers:
        (wl,) = parse_workloads(layer)
        flop = float(wl.task().flop)
        hist_path = workdir / f"history_{layer.replace(':', '_')}.jsonl"
        others = [d for k, d in datasets.items() if k != layer]
        hist_path.write_text("".join(json.dumps(r) + "\n" for r in history_records(others)))
        for name in tuners:
            rec_path = workdir / f"real_{name}_{layer.replace(':', '_')}.jsonl"
            rec_path.unlink(missing_ok=True)
            t0 = time.monotonic()
            summary = tune_workloads(
                [wl], trials=trials, tuner=name, records=rec_path, seed=0,
                option=MeasureOption(jobs=jobs),
                transfer_from=[hist_path] if TUNERS[name].uses_history else [])
            elapsed = time.monotonic() - t0
            recs, _ = load_records(rec_path)
            search = [record_result(r) for r in recs if r.get("tuner") != "confirm"]
            gflops = [flop / r.mean / 1e9 if r.ok else 0.0 for r in search]
            best = max(gflops, default=0.0)
            to95 = next((k + 1 for k, g in enumerate(gflops) if g >= 0.95 * best), None)
            res = summary.results[0]
            out.setdefault(name, {})[layer] = {
                "trials": len(search), "best_gflops": best, "trials_to_95": to95,
                "default_gflops": res.default_gflops, "confirmed_speedup": res.speedup,
                "failed": sum(not r.ok for r in search), "seconds": elapsed}
            print(f"  real {name:>18} {layer:<12} best {best:6.1f} GFLOP/s, 95% at trial "
                  f"{to95}, {elapsed:.0f} s", flush=True)
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS))
    ap.add_argument("--sample", type=int, default=600, help="configs measured per layer")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--tuners", nargs="+", default=None,
                    help=f"default: every registered tuner ({', '.join(TUNERS)})")
    ap.add_argument("--budget", type=int, default=128,
                    help="the trial budget tuners are configured for (default 128)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--remeasure", action="store_true", help="ignore cached datasets")
    ap.add_argument("--data", default=str(DATA), help="dataset directory")
    ap.add_argument("--output", default=str(RESULTS / "tuner_efficiency.json"))
    ap.add_argument("--real", action="store_true",
                    help="also one real (measured) tuning run per tuner on --real-layers")
    ap.add_argument("--real-layers", nargs="+", default=["resnet18:7", "resnet18:12"])
    ap.add_argument("--real-trials", type=int, default=64)
    ap.add_argument("--real-tuners", nargs="+", default=None,
                    help="default: the replayed tuners but the ablations")
    args = ap.parse_args(argv)
    tuners = args.tuners or list(TUNERS)
    unknown = [t for t in tuners + (args.real_tuners or []) if t not in TUNERS]
    if unknown:
        ap.error(f"unknown tuner(s) {unknown}; registered: {', '.join(TUNERS)}")

    datasets = {layer: load_dataset(layer, args.sample, 0, args.jobs, args.remeasure,
                                    Path(args.data)) for layer in args.layers}
    results: dict[str, Any] = {"layers": {}, "tuners": tuners, "seeds": args.seeds,
                               "budget": args.budget, "batch_size": args.batch_size,
                               "results": {}}
    for layer, ds in datasets.items():
        ok = [c for c in ds["costs"] if c]
        best = min(ok)
        d = ds.get("default_index")
        dcost = dict(zip(ds["indices"], ds["costs"])).get(d) if d is not None else None
        share95 = sum(best / c >= 0.95 for c in ok) / len(ds["costs"])
        results["layers"][layer] = {
            "workload_key": ds["workload_key"], "n_valid": ds["n_valid"],
            "n_sample": len(ds["indices"]), "n_failed": len(ds["costs"]) - len(ok),
            "best_gflops": ds["flop"] / best / 1e9,
            "default_gflops": ds["flop"] / dcost / 1e9 if dcost else None,
            "default_pct_of_best": best / dcost * 100 if dcost else None,
            "share_within_95pct": share95}
        print(f"{layer}: sample {len(ds['indices'])}/{ds['n_valid']} valid, best "
              f"{ds['flop'] / best / 1e9:.1f} GFLOP/s, default "
              f"{(best / dcost * 100) if dcost else float('nan'):.0f}% of best, "
              f"{share95 * 100:.1f}% of the sample within 95%")
    for name in tuners:
        for layer, ds in datasets.items():
            rt = replay_task(ds)
            history = (history_records([d for k, d in datasets.items() if k != layer])
                       if TUNERS[name].uses_history else [])
            if TUNERS[name].uses_history and not history:
                print(f"  {name}: needs at least two layers (leave one out); skipped")
                continue
            t0 = time.monotonic()
            curves = [run_one(name, rt, seed, args.budget, history, args.batch_size)
                      for seed in range(args.seeds)]
            s = summarize(curves, len(ds["indices"]))
            s["seconds"] = time.monotonic() - t0
            results["results"].setdefault(name, {})[layer] = s
            print(f"  {name:>18} {layer:<12} to95 {s['trials_to_95']['mean']:6.1f} ± "
                  f"{s['trials_to_95']['std']:5.1f}  best@64 {s['best_at_64']['mean']:5.1f}%"
                  f" ± {s['best_at_64']['std']:4.1f}  ({s['seconds']:.0f} s)", flush=True)
    results["targets"] = targets(results)
    if args.real:
        real_tuners = args.real_tuners or [t for t in tuners if t != "transfer-xgb-knob"]
        workdir = Path(tempfile.mkdtemp(prefix="tuner_efficiency_real_"))  # records, history
        t0 = time.monotonic()
        results["real"] = {"layers": args.real_layers, "trials": args.real_trials,
                           "runs": real_runs(real_tuners, args.real_layers, args.real_trials,
                                             args.jobs, datasets, workdir)}
        results["real"]["records_dir"] = str(workdir)
        results["real"]["seconds"] = time.monotonic() - t0
    print_table(results)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


def _mean_over_layers(layers: dict[str, Any], key: str, stat: str = "mean") -> float:
    return float(np.mean([s[key][stat] for s in layers.values()]))


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Per tuner: mean trials to 95% and spread at 64 over the layers, relative to xgb;
    the issue's three goals (xgb vs random, active vs xgb, transfer vs xgb)."""
    res = results["results"]
    out: dict[str, Any] = {}
    if "xgb" not in res:
        return out
    xgb = res["xgb"]
    x95 = _mean_over_layers(xgb, "trials_to_95")
    xstd = _mean_over_layers(xgb, "best_at_64", "std")
    out["per_tuner"] = {name: {
        "mean_trials_to_95": _mean_over_layers(layers, "trials_to_95"),
        "ratio_to_xgb": _mean_over_layers(layers, "trials_to_95") / x95,
        "spread64_std": _mean_over_layers(layers, "best_at_64", "std"),
        "spread64_range": _mean_over_layers(layers, "best_at_64", "range"),
        "spread64_std_ratio_to_xgb": (_mean_over_layers(layers, "best_at_64", "std") / xstd
                                      if xstd > 0 else None)}
        for name, layers in res.items()}
    if "random" in res:
        r95 = _mean_over_layers(res["random"], "trials_to_95")
        out["xgb_vs_random"] = {"xgb": x95, "random": r95, "ratio": x95 / r95,
                                "goal": "<= 1/3", "met": bool(x95 / r95 <= 1 / 3)}
    if "active" in res:
        a = out["per_tuner"]["active"]
        out["active_vs_xgb"] = {
            "active": a["mean_trials_to_95"], "xgb": x95,
            "spread64_std": a["spread64_std"], "xgb_spread64_std": xstd,
            "spread_reduction": 1 - a["spread64_std"] / xstd if xstd > 0 else None,
            "goal": "fewer trials to 95% and >= 50% smaller std of best@64",
            "met": bool(a["mean_trials_to_95"] < x95 and xstd > 0
                        and a["spread64_std"] <= 0.5 * xstd)}
    for name in res:
        if TUNERS.get(name) is not None and TUNERS[name].uses_history:
            t = out["per_tuner"][name]
            out[f"{name}_vs_xgb"] = {"transfer": t["mean_trials_to_95"], "xgb": x95,
                                     "ratio": t["ratio_to_xgb"], "goal": "<= 1/2",
                                     "met": bool(t["ratio_to_xgb"] <= 0.5)}
    return out


def _ms(d: dict[str, Any], pct: bool = False) -> str:
    cens = f" ({d['censored']} never)" if d.get("censored") else ""
    return f"{d['mean']:.1f}{'%' if pct else ''} ± {d['std']:.1f}{cens}"


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220)
    t = Table(title=f"Tuner efficiency on replayed measurements ({results['seeds']} seeds, "
              "mean ± std; transfer: leave one layer out)", title_justify="left")
    for col in ("tuner", "layer", "trials to 90%", "trials to 95%", "trials to 99%",
                "best @32", "best @64", "best @128", "@64 max-min"):
        t.add_column(col, justify="left" if col in ("tuner", "layer") else "right")
    for name, layers in results["results"].items():
        for layer, s in layers.items():
            t.add_row(name, layer, _ms(s["trials_to_90"]), _ms(s["trials_to_95"]),
                      _ms(s["trials_to_99"]), _ms(s["best_at_32"], True),
                      _ms(s["best_at_64"], True), _ms(s["best_at_128"], True),
                      f"{s['best_at_64']['range']:.1f}")
        t.add_section()
    console.print(t)
    tg = results.get("targets") or {}
    if tg.get("per_tuner"):
        s = Table(title="Averaged over the layers", title_justify="left")
        for col in ("tuner", "trials to 95%", "x xgb", "std of best@64", "max-min of best@64",
                    "std x xgb"):
            s.add_column(col, justify="left" if col == "tuner" else "right")
        for name, v in tg["per_tuner"].items():
            r = v["spread64_std_ratio_to_xgb"]
            s.add_row(name, f"{v['mean_trials_to_95']:.1f}", f"{v['ratio_to_xgb']:.2f}",
                      f"{v['spread64_std']:.2f}", f"{v['spread64_range']:.1f}",
                      "-" if r is None else f"{r:.2f}")
        console.print(s)
    for key, v in tg.items():
        if key == "per_tuner":
            continue
        nums = ", ".join(f"{k} {x:.2f}" for k, x in v.items()
                         if isinstance(x, float) and k not in ("met",))
        console.print(f"target {key}: {nums} (goal {v['goal']}): "
                      f"{'met' if v['met'] else 'NOT met'}", highlight=False)
    real = results.get("real")
    if real:
        r = Table(title=f"Real tuning runs (seed 0, {real['trials']} trials incl. the default, "
                  f"{real['seconds']:.0f} s in all)", title_justify="left")
        for col in ("tuner", "layer", "best GFLOP/s", "trials to 95% of run best",
                    "default GFLOP/s", "failed", "seconds"):
            r.add_column(col, justify="left" if col in ("tuner", "layer") else "right")
        for name, layers in real["runs"].items():
            for layer, v in layers.items():
                r.add_row(name, layer, f"{v['best_gflops']:.1f}", str(v["trials_to_95"]),
                          f"{v['default_gflops']:.1f}" if v["default_gflops"] else "-",
                          str(v["failed"]), f"{v['seconds']:.0f}")
        console.print(r)


if __name__ == "__main__":
    sys.exit(main())
