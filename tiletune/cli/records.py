"""``tiletune records show|best|merge``: inspect and combine tuning records."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from tiletune.cli import common
from tiletune.report.schedule_code import display_name, python_for, task_of, when

if TYPE_CHECKING:
    from tiletune.tuner.records import Record, RecordProblem


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("records", help="show, pick the best of, or merge tuning records",
                       description="Inspect tuning records (JSON lines). Unusable lines are "
                       "skipped and reported; the exit code is then 1.")
    rs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    opts = common.global_options()
    s = rs.add_parser("show", parents=[opts], help="one row per workload: counts, best, failures")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="print the table as JSON")
    s.set_defaults(func=show)
    b = rs.add_parser("best", parents=[opts],
                      help="the winning schedule of each workload as pasteable Python")
    b.add_argument("file", metavar="FILE")
    b.add_argument("--workload", metavar="KEY",
                   help="only this workload: its key, name (resnet18:3) or a unique substring")
    b.add_argument("--json", action="store_true", help="print the best records as JSON lines")
    b.set_defaults(func=best)
    m = rs.add_parser("merge", parents=[opts], help="append the records of IN... to OUT, "
                      "dropping exact duplicates")
    m.add_argument("out", metavar="OUT")
    m.add_argument("inputs", nargs="+", metavar="IN")
    m.set_defaults(func=merge)


__all__ = ["display_name", "python_for", "register", "summarize", "task_of"]


def _report_problems(problems: list[RecordProblem], args: argparse.Namespace) -> None:
    if not problems or args.quiet:
        return
    print(f"warning: skipped {len(problems)} unusable line(s):", file=sys.stderr)
    for p in problems[:10]:
        print(f"  {p}", file=sys.stderr)
    if len(problems) > 10:
        print(f"  ... and {len(problems) - 10} more", file=sys.stderr)


# --------------------------------------------------------------------------- show
def summarize(records: list[Record]) -> list[dict[str, Any]]:
    """Per workload: counts, failures by class, best time and throughput."""
    from tiletune.tuner.records import record_cost

    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r["workload"]].append(r)
    rows = []
    for key, recs in groups.items():
        fails = Counter(r["error"] for r in recs if r.get("error"))
        costs = [(record_cost(r), r) for r in recs]
        best_cost, best_rec = min(costs, key=lambda c: c[0])
        task = task_of(recs[0])
        flop = float(task.flop) if task is not None else 0.0
        configs = {json.dumps(r["config"], sort_keys=True) for r in recs}
        ok = math.isfinite(best_cost)
        rows.append({
            "workload": display_name(recs[0]), "key": key, "records": len(recs),
            "configs": len(configs), "ok": len(recs) - sum(fails.values()),
            "failures": dict(fails), "best_ms": best_cost * 1e3 if ok else None,
            "best_gflops": flop / best_cost / 1e9 if ok and flop else None,
            "best_config": best_rec["config"] if ok else None,
            "tuners": sorted({r.get("tuner") or "?" for r in recs}),
            "last": max(r.get("timestamp") or 0 for r in recs)})
    return rows


def show(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tiletune.tuner.records import load_records

    records, problems = load_records(args.file)
    rows = summarize(records)
    if args.json:
        print(json.dumps({"file": args.file, "workloads": rows,
                          "problems": [str(p) for p in problems]}, indent=2))
    else:
        t = Table(title=f"{args.file}: {len(records)} records, {len(rows)} workloads",
                  title_justify="left")
        for col, just in (("workload", "left"), ("records", "right"), ("configs", "right"),
                          ("ok", "right"), ("failures", "left"), ("best ms", "right"),
                          ("best GFLOP/s", "right"), ("tuners", "left"), ("last", "left")):
            t.add_column(col, justify=just, overflow="fold")
        for r in rows:
            t.add_row(r["workload"], str(r["records"]), str(r["configs"]), str(r["ok"]),
                      " ".join(f"{k}:{v}" for k, v in sorted(r["failures"].items())) or "0",
                      f"{r['best_ms']:.4f}" if r["best_ms"] else "-",
                      f"{r['best_gflops']:.1f}" if r["best_gflops"] else "-",
                      ",".join(r["tuners"]), when(r["last"]))
        common.stdout_console().print(t)
        if args.verbose:
            for r in rows:
                print(f"{r['workload']}: key {r['key']}\n  best config {r['best_config']}")
    _report_problems(problems, args)
    return 1 if problems else 0


# --------------------------------------------------------------------------- best
def select(best: dict[str, Record], which: str | None) -> list[Record]:
    """The best records matching ``--workload`` (key, display name or unique substring)."""
    recs = list(best.values())
    if not which:
        return recs
    exact = [r for r in recs if which in (r["workload"], display_name(r))]
    if exact:
        return exact
    sub = [r for r in recs if which in r["workload"] or which in display_name(r)]
    if len(sub) == 1:
        return sub
    names = ", ".join(sorted(display_name(r) for r in recs)) or "none"
    if not sub:
        raise common.CLIError(f"no successful records of workload {which!r}; workloads with "
                              f"a best config: {names}")
    raise common.CLIError(f"--workload {which!r} matches {len(sub)} workloads; be more "
                          f"specific: {', '.join(display_name(r) for r in sub)}")


def best(args: argparse.Namespace) -> int:
    from tiletune.tuner.records import best_records, load_records

    records, problems = load_records(args.file)
    picked = select(best_records(records), args.workload)
    if not picked:
        raise common.CLIError(f"{args.file} holds no successful measurement")
    if args.json:
        for r in picked:
            print(json.dumps(r))
    else:
        imports: set[str] = set()
        blocks = []
        for k, r in enumerate(picked):
            suffix = "" if len(picked) == 1 else f"_{k + 1}"
            imp, lines = python_for(r, suffix)
            imports |= imp
            blocks.append("\n".join(lines))
        order = sorted(imports, key=lambda s: (s.startswith("from"), s))
        print("\n".join(order) + "\n\n" + "\n\n".join(blocks))
    _report_problems(problems, args)
    return 1 if problems else 0


# --------------------------------------------------------------------------- merge
def merge(args: argparse.Namespace) -> int:
    from tiletune.tuner.records import merge as merge_files

    n, problems = merge_files(args.inputs, args.out)
    if not args.quiet:
        print(f"appended {n} new record(s) to {args.out} (exact duplicates skipped)",
              file=sys.stderr)
    _report_problems(problems, args)
    return 1 if problems else 0
