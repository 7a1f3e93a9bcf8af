"""The ``tiletune`` command: tune, compile, run, records, report, doctor.

One module per verb; each has ``register(subparsers)`` and ``run(args) -> int``. Exit codes:
0 success, 1 finished but some trials failed (or a workload has no working config), 2 error
(bad arguments, unreadable files, ...: ``error: <message>`` on stderr, a traceback only with
``-v``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tiletune.cli import common

VERBS = ("tune", "compile", "run", "records", "report", "doctor")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    import importlib

    import tiletune

    parser = argparse.ArgumentParser(
        prog="tiletune", description="Tensor compiler and autotuner: tune, compile and run "
        "kernels, inspect tuning records.",
        epilog="Run 'tiletune VERB -h' for a verb's options.")
    parser.add_argument("--version", action="version", version=f"tiletune {tiletune.__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        importlib.import_module(f"tiletune.cli.{verb}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tiletune records show f | head`
        return 0
    except Exception as e:  # noqa: BLE001 - the CLI's one error boundary
        return common.report_error(e, verbose=getattr(args, "verbose", False))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
