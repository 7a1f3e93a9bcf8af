"""``tiletune tune``: search the best schedule of workloads and record every measurement."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from tiletune.cli import common

if TYPE_CHECKING:
    from tiletune.tuner.session import SessionSummary, WorkloadResult

EXAMPLES = """examples:
  tiletune tune --workload resnet18                     # all 12 layers, <= 18 min budget
  tiletune tune --workload resnet18:2-5 --trials 200 --records tuned.jsonl
  tiletune tune --op dense --shape 256,256,256 --tuner random --json
  tiletune tune --workload resnet18:3 --resume          # continue; never re-measures
  tiletune tune --model resnet18                        # a whole network (built-in or .onnx):
                                                        # tune its kernels, compile, run, compare
  tiletune tune --model m.onnx --trials 400 --time-budget 600 -o m.tt
  tiletune tune --model resnet18 --quantize kl -o r18_int8.tt  # int8 kernels (a QDQ .onnx
                                                        # model is int8 without --quantize)
"""


def register(sub: argparse._SubParsersAction) -> None:
    from tiletune.tuner.session import (
        DEFAULT_RECORDS,
        DEFAULT_TIME_BUDGET,
        DEFAULT_TRIALS,
        TUNERS,
    )

    p = sub.add_parser("tune", parents=[common.global_options()],
                       help="autotune workloads, append measurements to a records file",
                       description="Search the schedule space of each workload, measuring "
                       "the heuristic default first.\nProgress goes to stderr (live on a "
                       "terminal, one line per batch otherwise); the summary\ntable (or "
                       "--json) to stdout. Exit code 0: every workload has a best config (failed "
                       "trials\nare counted in the table, not fatal); 1: a workload has no "
                       "working config;\n2: error; 130: interrupted.",
                       epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_workload_args(p)
    n = p.add_argument_group("whole network (--model)")
    n.add_argument("--model", metavar="ONNX|NAME",
                   help="tune every distinct conv/dense kernel of a network (an ONNX file or a "
                        "built-in: resnet18), trials and time split by FLOP share; then "
                        "compile it, time it and compare with ONNX Runtime")
    n.add_argument("-o", "--output", metavar="FILE.tt",
                   help="with --model: also write the compiled network")
    n.add_argument("--no-evaluate", action="store_true",
                   help="with --model: skip the final compile/run/compare table")
    common.add_quantize_args(n)
    b = p.add_argument_group("budget")
    b.add_argument("--trials", type=common.positive_int, default=None,
                   help=f"measured configs per workload, default config and resumed ones "
                        f"included (default {DEFAULT_TRIALS}); with --model the total for "
                        f"the network (default {MODEL_TRIALS} x its tasks)")
    b.add_argument("--time-budget", type=common.nonneg_float, default=None,
                   metavar="SECONDS", help=f"for the whole run, shared by the workloads and "
                   f"checked between batches; 0 = no limit (default {DEFAULT_TIME_BUDGET:g}; "
                   f"--model: {MODEL_TIME_BUDGET:g})")
    b.add_argument("--early-stopping", type=common.positive_int, metavar="N",
                   help="stop a workload after N trials without a new best")
    s = p.add_argument_group("search")
    s.add_argument("--tuner", choices=list(TUNERS), default=None,
                   help="; ".join(f"{n}: {e.help}" for n, e in TUNERS.items())
                   + " (default xgb, or transfer with --transfer-from)")
    s.add_argument("--transfer-from", nargs="+", metavar="RECORDS", default=[],
                   help="records of other workloads to learn from (transfer tuners)")
    s.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    r = p.add_argument_group("records")
    r.add_argument("--records", default=DEFAULT_RECORDS, metavar="FILE",
                   help=f"JSON-lines file, appended to (default {DEFAULT_RECORDS})")
    r.add_argument("--resume", action="store_true",
                   help="configs already in --records count as trials and are not measured "
                        "again")
    m = p.add_argument_group("measurement")
    m.add_argument("--jobs", type=common.positive_int, default=os.cpu_count() or 1,
                   help="parallel build/measure workers (default: CPU count)")
    m.add_argument("--timeout", type=common.positive_float, default=10.0, metavar="SECONDS",
                   help="per run of one config (default 10)")
    m.add_argument("--batch-size", type=common.positive_int, default=None,
                   help="configs proposed per batch (default max(8, 2 x jobs))")
    m.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="measure on the Dask cluster of this scheduler (tcp://HOST:8786; "
                        "default $TILETUNE_CLUSTER); workers started with `dask worker`")
    common.add_timing_args(p, min_repeat_ms=None)
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON on stdout (the table goes to stderr)")
    p.set_defaults(func=run)


#: --model: trials per distinct kernel on average, and the whole run's time budget
MODEL_TRIALS = 32
MODEL_TIME_BUDGET = 300.0


def _tuner_name(args: argparse.Namespace) -> str:
    from tiletune.tuner.session import TUNERS

    if args.tuner:
        return args.tuner
    if args.transfer_from:
        users = [n for n, e in TUNERS.items() if e.uses_history]
        if not users:
            raise common.CLIError("--transfer-from needs a transfer tuner, and none is "
                                  "installed")
        # the AutoTVM-style base-margin model needed 0.21x the trials of XGB from scratch on
        # the replay benchmark (the deep-kernel GP 0.72x): prefer it when installed
        return "transfer-xgb" if "transfer-xgb" in users else users[0]
    return "xgb"


def run(args: argparse.Namespace) -> int:
    from tiletune.tuner.measure.local import MeasureOption
    from tiletune.tuner.session import DEFAULT_TIME_BUDGET, DEFAULT_TRIALS, tune_workloads
    from tiletune.tuner.session.progress import make_reporter

    if args.model:
        from tiletune.cli.tune_model import run_model
        return run_model(args)
    if args.output or args.no_evaluate or args.quantize or args.calibration:
        raise common.CLIError("-o, --no-evaluate, --quantize and --calibration go with "
                              "--model")
    args.trials = args.trials or DEFAULT_TRIALS
    args.time_budget = DEFAULT_TIME_BUDGET if args.time_budget is None else args.time_budget
    workloads = common.resolve_workloads(args)
    tuner = _tuner_name(args)
    _check_records_path(args.records)
    if not args.resume:
        _warn_already_tuned(args, workloads)
    option = MeasureOption(number=args.number, repeat=args.repeat,
                           min_repeat_ms=args.min_repeat_ms, timeout=args.timeout,
                           jobs=args.jobs, threads=args.threads or _runtime_threads())
    with make_reporter(sys.stderr, quiet=args.quiet, verbose=bool(args.verbose)) as rep:
        summary = tune_workloads(
            workloads, trials=args.trials, time_budget=args.time_budget or None,
            early_stopping=args.early_stopping, tuner=tuner, records=args.records,
            resume=args.resume, seed=args.seed, option=option,
            transfer_from=args.transfer_from, reporter=rep, batch_size=args.batch_size,
            cluster=args.cluster or os.environ.get("TILETUNE_CLUSTER") or None)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
        if not args.quiet:
            print_summary(summary, common_console(stderr=True))
    else:
        print_summary(summary, common.stdout_console())
    _explain_exit(summary, args)
    return summary.exit_code


def _runtime_threads() -> int:
    from tiletune.runtime.threads import default_num_threads

    return default_num_threads()


def common_console(stderr: bool):
    from rich.console import Console

    return Console(stderr=stderr, width=None if sys.stderr.isatty() else 160,
                   no_color=not sys.stderr.isatty())


def _check_records_path(path: str) -> None:
    if os.path.isdir(path):
        raise common.CLIError(f"--records {path} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(parent) and not os.access(parent, os.W_OK):
        raise common.CLIError(f"cannot write records to {path}: directory not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise common.CLIError(f"cannot write records to {path}: file not writable")


def _warn_already_tuned(args: argparse.Namespace, workloads: list) -> None:
    """Warn when --records already holds measurements of a workload about to be re-tuned
    from scratch (without --resume they are measured again)."""
    from collections import Counter

    from tiletune.tuner.records.store import load_records
    from tiletune.tuner.templates.task import workload_key

    if args.quiet or not os.path.isfile(args.records):
        return
    records, _ = load_records(args.records)
    counts = Counter(r.get("workload") for r in records)
    for w in workloads:
        n = counts.get(workload_key(w.template, w.args, w.target), 0)
        if n:
            common.warn(args, f"{args.records} already holds {n} record{'s' * (n != 1)} of "
                        f"{w.name}; tuning again from scratch re-measures them (add --resume "
                        "to continue from them instead)")


def _failures(classes: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(classes.items())) or "0"


def short_reason(r: WorkloadResult) -> str:
    """A few words for the table; the full reason is in --json."""
    reason = r.stop_reason
    for prefix, short in (("trial budget", "trials done"), ("time budget of", "time budget"),
                          ("time budget exhausted", "no time left"),
                          ("early stopping", "early stop"), ("search space exhausted",
                                                             "space exhausted")):
        if reason.startswith(prefix):
            return short
    if "consecutive failures" in reason:
        return reason.split(":", 1)[0]
    return reason if r.status == "done" else r.status


def print_summary(summary: SessionSummary, console) -> None:
    """The final table: one row per workload, then the totals."""
    from rich.table import Table

    wide = console.width >= 110
    t = Table(title="tiletune tune: summary", title_justify="left")
    cols = [("workload", "left"), ("shape", "left"), ("trials", "right"),
            ("default GFLOP/s", "right"), ("best GFLOP/s", "right"), ("best ms", "right"),
            ("speed-up", "right"), ("failures", "left"), ("stopped", "left")]
    keep = [c for c in cols if wide or c[0] not in ("shape", "best ms")]
    for name, just in keep:
        t.add_column(name, justify=just, overflow="fold")
    for r in summary.results:
        trials = f"{r.trials}" + (f" ({r.resumed} resumed)" if r.resumed else "")
        row = {"workload": r.name, "shape": r.shape, "trials": trials,
               "default GFLOP/s": f"{r.default_gflops:.1f}" if r.default_gflops else
               ("failed" if r.default_error else "-"),
               "best GFLOP/s": f"{r.best_gflops:.1f}" if r.best_index is not None else "-",
               "best ms": f"{r.best_ms:.4g}" if r.best_ms else "-",
               "speed-up": f"{r.speedup:.2f}x" if r.speedup else "-",
               "failures": _failures(r.failures), "stopped": short_reason(r)}
        t.add_row(*[row[name] for name, _ in keep])
    console.print(t)
    g = summary.geomean_speedup
    console.print(f"geometric mean speed-up over the heuristic default (both re-measured "
                  f"back to back): "
                  f"{f'{g:.2f}x' if g else '-'} | {summary.n_failed} failed trials | "
                  f"{summary.elapsed:.0f} s | records: {summary.records}", soft_wrap=True,
                  highlight=False)


def _explain_exit(summary: SessionSummary, args: argparse.Namespace) -> None:
    if summary.interrupted:
        print(f"interrupted: measurements so far are in {summary.records}; re-run the same "
              "command with --resume to continue", file=sys.stderr)
        return
    if args.quiet:
        return
    if summary.unsolved:
        names = ", ".join(r.name for r in summary.unsolved)
        print(f"warning: no working config found for {names}", file=sys.stderr)
    if summary.n_failed and not args.verbose:
        print(f"note: {summary.n_failed} trials failed (counts by class in the table); "
              "re-run with -v to print each failure's reason", file=sys.stderr)
