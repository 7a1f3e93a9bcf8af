"""The ``tiletune`` command: tune, compile, run, records, report, doctor.

One module per verb; each has ``register(subparsers)`` and ``run(args) -> int``. Exit codes:
0 success (``tune``: every workload got a best; failed trials are reported, not fatal), 1
finished but a workload has no working config (or a records file had unusable lines), 2 error
(bad arguments, unreadable files, ...: ``error: <message>`` on stderr, a traceback only with
``-v``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence

from tiletune.cli import common

VERBS = ("tune", "compile", "run", "records", "report", "doctor")

# The one-line help of each verb, for ``tiletune --help``: listing the verbs must not import
# what building a verb's full parser needs (NumPy, the targets' templates). A verb missing
# here is listed by registering it in full (slower, still correct).
VERB_HELP = {
    "tune": "autotune workloads, append measurements to a records file",
    "compile": "compile a workload with its best recorded config",
    "run": "time a workload's kernel (tuned or default), check it vs NumPy",
    "records": "show, pick the best of, or merge tuning records",
    "report": "an HTML page of tuning records: convergence plots, default vs best, failures, "
              "the winning schedules",
    "doctor": "check the installation, the CPU and the environment",
}


def build_parser(full: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the verbs in ``full`` (default: every verb); the others are
    listed with their one-line help only."""
    import importlib

    import tiletune

    parser = argparse.ArgumentParser(
        prog="tiletune", description="Tensor compiler and autotuner: tune, compile and run "
        "kernels, inspect tuning records.",
        epilog="Run 'tiletune VERB -h' for a verb's options. -v and -q go before or after the "
        "verb.")
    parser.add_argument("--version", action="version", version=f"tiletune {tiletune.__version__}")
    g = parser.add_argument_group("output (also accepted after the verb)")
    # own dests: a subparser's defaults would overwrite values parsed before the verb
    g.add_argument("-v", "--verbose", dest="_global_verbose", action="count", default=0,
                   help="more detail (tracebacks, every failed trial's reason)")
    g.add_argument("-q", "--quiet", dest="_global_quiet", action="store_true",
                   help="no progress and no warnings")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        if (full is None or verb in full) or verb not in VERB_HELP:
            importlib.import_module(f"tiletune.cli.{verb}").register(sub)
        else:
            sub.add_parser(verb, help=VERB_HELP[verb], add_help=False)
    return parser


def find_verb(argv: Sequence[str]) -> str | None:
    """The verb of a command line: its first word that is not an option (None if that word
    is no verb, or there is none)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in VERBS else None
    return None


def _merge_global_options(args: argparse.Namespace) -> None:
    """Fold ``-v``/``-q`` given before the verb into the verb's own options."""
    verbose = args.__dict__.pop("_global_verbose", 0)
    quiet = args.__dict__.pop("_global_quiet", False)
    args.verbose = (getattr(args, "verbose", 0) or 0) + verbose
    args.quiet = bool(getattr(args, "quiet", False) or quiet)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = find_verb(argv)
    parser = build_parser(full=(verb,) if verb else ())
    args = parser.parse_args(argv)
    _merge_global_options(args)
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
