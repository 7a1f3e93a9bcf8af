"""``tiletune tune --model``: tune a whole network, then compile, run and compare it.

1. import the model (an ONNX file or a built-in name; ``--quantize`` makes it int8, a QDQ
   model is int8 already) and extract its tasks: the distinct fused conv/depthwise/dense
   kernels (int8 conv/dense of a quantized model), with counts and FLOP share;
2. tune each task with its share of the trials and of the time budget (records appended to
   ``--records``);
3. compile the network with the records and without (heuristic defaults), time both and ONNX
   Runtime (when installed) on the same input, check the outputs, print the table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tiletune.cli import common
from tiletune.cli import model as netcli


def run_model(args: argparse.Namespace) -> int:
    from tiletune.cli.tune import (
        MODEL_TIME_BUDGET,
        MODEL_TRIALS,
        _check_records_path,
        _runtime_threads,
        _tuner_name,
        common_console,
        print_summary,
    )
    from tiletune.graph.tasks import extract_tasks, split_budget
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.session import tune_workloads
    from tiletune.tuner.session.progress import make_reporter
    from tiletune.tuner.templates.task import Task

    if args.workload or args.op or args.shape:
        raise common.CLIError("use either --model or --workload / --op, not both")
    if args.target != "llvm":
        raise common.CLIError(f"--model tunes for --target llvm (whole networks do not run on "
                              f"{args.target})")
    _check_records_path(args.records)
    args.threads = args.threads or _runtime_threads()
    g, proto = netcli.load_model(args.model)
    g = netcli.quantize(g, args.quantize, args.calibration, args.quiet)
    tasks = extract_tasks(g)
    if not tasks:
        raise common.CLIError(f"{args.model} has no conv2d/dense kernel to tune")
    total = args.trials or MODEL_TRIALS * len(tasks)
    budget = MODEL_TIME_BUDGET if args.time_budget is None else args.time_budget
    trials = [max(4, round(x)) for x in split_budget(tasks, total)]
    times = [max(5.0, x) for x in split_budget(tasks, budget)] if budget else [None] * len(tasks)
    out = common_console(stderr=True)
    if not args.quiet:
        _print_tasks(out, args.model, tasks, trials, times)
    option = MeasureOption(number=args.number, repeat=args.repeat,
                           min_repeat_ms=args.min_repeat_ms, timeout=args.timeout,
                           jobs=args.jobs, threads=args.threads)
    tuner = _tuner_name(args)
    merged = None
    start = time.monotonic()
    with make_reporter(sys.stderr, quiet=args.quiet, verbose=bool(args.verbose)) as rep:
        for task, n, tb in zip(tasks, trials, times):
            s = tune_workloads(
                [Task(task.template, task.args)], trials=n, time_budget=tb,
                early_stopping=args.early_stopping, tuner=tuner, records=args.records,
                resume=args.resume, seed=args.seed, option=option,
                transfer_from=args.transfer_from, reporter=rep, batch_size=args.batch_size)
            if merged is None:
                merged = s
            else:
                merged.results += s.results
                merged.problems += s.problems
            if s.interrupted:
                merged.interrupted = True
                break
    merged.elapsed = time.monotonic() - start
    for r, t in zip(merged.results, tasks):
        r.name, r.shape = t.describe(), f"x{t.count}, {t.share:.0%} of FLOPs"
    if args.json:
        print(json.dumps(merged.to_json(), indent=2))
    print_summary(merged, common_console(stderr=True) if args.json else
                  common.stdout_console())
    if merged.interrupted:
        print(f"interrupted: measurements so far are in {merged.records}; re-run with "
              "--resume to continue", file=sys.stderr)
        return 130
    if not args.no_evaluate:
        evaluate(g, proto, args.records, args.threads, args.output, args.quiet)
    return merged.exit_code


def _print_tasks(console: Any, name: str, tasks: list, trials: list[int],
                 times: list[float | None]) -> None:
    from rich.table import Table

    t = Table(title=f"{name}: {len(tasks)} tasks (distinct fused kernels)",
              title_justify="left")
    for col in ("task", "count", "FLOP share", "trials", "time budget s"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for task, n, tb in zip(tasks, trials, times):
        t.add_row(task.describe(), str(task.count), f"{task.share:.1%}", str(n),
                  f"{tb:.0f}" if tb else "-")
    console.print(t)


def evaluate(g: Any, proto: Any, records: str | None, threads: int, output: str | None,
             quiet: bool = False) -> dict[str, Any]:
    """Compile with and without the records, time both and ONNX Runtime; print the table."""
    from rich.table import Table

    from tiletune import graph

    x = netcli.random_input(g.type(g.inputs[0]).shape)
    t0 = time.perf_counter()
    tuned = graph.build(g, records=records, num_threads=threads)
    compile_s = time.perf_counter() - t0
    untuned = graph.build(g, num_threads=threads)
    rows: list[tuple[str, float]] = []
    result: dict[str, Any] = {"threads": threads, "compile_s": compile_s,
                              "tuned_kernels": tuned.meta["tuned_kernels"],
                              "untuned_kernels": tuned.meta["untuned_kernels"]}
    rows.append(("tiletune tuned", netcli.best_time(lambda: tuned(x))))
    rows.append(("tiletune heuristic defaults", netcli.best_time(lambda: untuned(x))))
    sess = netcli.onnxruntime_session(proto, threads) if proto is not None else None
    y = tuned(x)
    if sess is not None:
        rows.append(("ONNX Runtime (all optimisations)",
                     netcli.best_time(lambda: netcli.ort_outputs(sess, x))))
        err, rel = netcli.compare(y, netcli.ort_outputs(sess, x))
        result.update(max_abs_error=err, rel_error=rel)
    ort_ms = rows[2][1] if sess is not None else None
    t = Table(title=f"{g.name}, batch {g.type(g.inputs[0]).shape[0]}, {threads} thread(s)",
              title_justify="left")
    for col in ("runtime", "latency ms", "vs ONNX Runtime"):
        t.add_column(col, justify="left" if col == "runtime" else "right")
    for name, sec in rows:
        result[name] = sec * 1e3
        t.add_row(name, f"{sec * 1e3:.2f}", f"{sec / ort_ms:.2f}x" if ort_ms else "-")
    console = common.stdout_console()
    console.print(t)
    notes = [f"compile {compile_s:.1f} s", f"{tuned.meta['tuned_kernels']} tuned / "
             f"{tuned.meta['untuned_kernels']} default kernels",
             f"activations {tuned.meta['peak_activation_bytes'] / 2**20:.1f} MiB "
             f"(one buffer per tensor: {tuned.meta['naive_activation_bytes'] / 2**20:.1f})"]
    if sess is not None:
        notes.append(f"max |error| vs ONNX Runtime {result['max_abs_error']:.2e} "
                     f"({result['rel_error']:.1e} of max |output|)")
        if any(g.op(n) in ("qconv2d", "qdense") for n in g.operators()):
            from tiletune.compress.quantize import sqnr_db
            result["sqnr_db"] = sqnr_db(netcli.ort_outputs(sess, x), y)
            notes.append(f"int8: SQNR {result['sqnr_db']:.1f} dB vs ONNX Runtime")
    else:
        notes.append("ONNX Runtime not installed: no comparison")
    console.print(" | ".join(notes), highlight=False)
    if output:
        tuned.export(output)
        if not quiet:
            print(f"wrote {output}", file=sys.stderr)
    return result
