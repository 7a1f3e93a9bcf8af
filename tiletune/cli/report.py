"""``tiletune report FILE... -o report.html``: a self-contained HTML page of tuning runs."""

from __future__ import annotations

import argparse
import sys

from tiletune.cli import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", parents=[common.global_options()],
                       help="an HTML page of tuning records: convergence plots, default vs "
                            "best, failures, the winning schedules",
                       description="Write one self-contained HTML page (inline SVG plots) for "
                       "the records files: per workload the best-so-far curve against trials "
                       "and wall time for each tuner, every trial's GFLOP/s, the fraction of "
                       "the FMA peak (measured on this host) or VTA GEMM utilisation, "
                       "failures by class, default vs best, the winning config and its "
                       "schedule code. Unusable record lines are listed and the exit code "
                       "is then 1.",
                       epilog="example: tiletune report tuned.jsonl -o report.html --png "
                       "plots/")
    p.add_argument("files", nargs="*", metavar="FILE", help="tuning records (JSON lines)")
    p.add_argument("-o", "--output", metavar="HTML", default="report.html",
                   help="the page to write (default report.html)")
    p.add_argument("--png", metavar="DIR", help="also write every plot as DIR/NAME.png")
    p.add_argument("--profile", action="append", default=[], metavar="JSON",
                   help="a compiled network's per-operator times (format: "
                        "tiletune/report/profile.py); repeatable")
    p.add_argument("--peak", type=common.positive_float, metavar="GFLOPS",
                   help="single-core FMA peak to compare with (default: measured here)")
    p.add_argument("--no-peak", action="store_true",
                   help="do not measure the FMA peak (no fraction-of-peak figures)")
    p.add_argument("--title", default="tiletune tuning report", help="the page's title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tiletune.report import write_report

    if not args.files and not args.profile:
        raise common.CLIError("nothing to report: give records files and/or --profile JSON")
    data = write_report(args.files, args.output, png_dir=args.png, peak_gflops=args.peak,
                        measure_peak=not args.no_peak, profiles=args.profile,
                        title=args.title)
    if not args.quiet:
        n = len(data.workloads)
        print(f"wrote {args.output}: {n} workload(s), {len(data.profiles)} profile(s)"
              + (f"; plots in {args.png}" if args.png else ""), file=sys.stderr)
        for p in data.problems[:10]:
            print(f"warning: skipped {p}", file=sys.stderr)
    return 1 if data.problems else 0
