"""Shared pieces of the CLI verbs: argument groups, workload resolution, output, errors."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from tiletune.errors import TileTuneError
from tiletune.report.schedule_code import kernel_name  # noqa: F401 - used by the verbs

if TYPE_CHECKING:
    from rich.console import Console

    from tiletune.tuner.records.store import Record, RecordProblem
    from tiletune.tuner.session.workloads import Workload
    from tiletune.tuner.templates.task import Task


class CLIError(TileTuneError):
    """A usage error found after parsing (conflicting or missing options)."""


def global_options() -> argparse.ArgumentParser:
    """``-v`` / ``-q``, accepted by every verb."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail: every failed trial's reason and traceback; tracebacks "
                        "of errors")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="no progress and no warnings (results still print)")
    return p


OP_ALIASES = {"matmul": "dense"}  # TVM / tvmc names of our operators


def op_name(text: str) -> str:
    """``--op``'s value with aliases resolved (``matmul`` -> ``dense``)."""
    return OP_ALIASES.get(text, text)


def add_workload_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--op/--shape`` or ``--workload``, plus ``--target``."""
    from tiletune.tuner.session.workloads import OPS, PRESETS
    from tiletune.tuner.targets.registry import load_targets

    g = p.add_argument_group("workload (--op with --shape, or --workload)")
    g.add_argument("--op", choices=list(OPS), type=op_name,
                   help="operator (" + ", ".join(f"{a} = {o}" for a, o in OP_ALIASES.items())
                   + ")")
    shapes = "; ".join(f"{n}: {','.join(s.dims)}" for n, s in OPS.items())
    g.add_argument("--shape", help=f"comma-separated sizes ({shapes}; stride and pad "
                   "default to 1 and 0)")
    g.add_argument("--workload", metavar="NAME[:LAYERS]",
                   help=f"a preset ({', '.join(PRESETS)}), all layers or a 1-based "
                        "selection: resnet18, resnet18:3, resnet18:2-5, resnet18:1,4")
    g.add_argument("--target", default="llvm", choices=list(load_targets()),
                   help="llvm (this CPU) or vta (the accelerator simulator); default llvm")
    p.set_defaults(_workload_required=required)


def resolve_workloads(args: argparse.Namespace) -> list[Workload]:
    """The workloads named by ``--op/--shape`` or ``--workload``."""
    from tiletune.tuner.session.workloads import parse_op_shape, parse_workloads

    if args.workload and (args.op or args.shape):
        raise CLIError("use either --workload or --op/--shape, not both")
    if args.workload:
        return parse_workloads(args.workload, args.target)
    if args.op and args.shape:
        return [parse_op_shape(args.op, args.shape, args.target)]
    if args.op or args.shape:
        raise CLIError("--op and --shape go together, e.g. --op dense --shape 256,256,256")
    raise CLIError("which workload? give --workload (e.g. resnet18 or resnet18:3) or "
                   "--op OP --shape SIZES")


def one_workload(args: argparse.Namespace, verb: str) -> Workload:
    wls = resolve_workloads(args)
    if len(wls) != 1:
        raise CLIError(f"{verb} takes one workload, {args.workload} names {len(wls)}; pick a "
                       f"layer, e.g. --workload {wls[0].name}")
    return wls[0]


def add_timing_args(p: argparse.ArgumentParser, number: int = 4, repeat: int = 3,
                    min_repeat_ms: float | None = 0.0) -> None:
    """Timing flags; ``min_repeat_ms=None``: the default is the host's minimum repeat."""
    g = p.add_argument_group("timing")
    g.add_argument("--number", type=positive_int, default=number,
                   help=f"calls per timed repeat (default {number})")
    g.add_argument("--repeat", type=positive_int, default=repeat,
                   help=f"timed repeats per config (default {repeat})")
    g.add_argument("--min-repeat-ms", type=nonneg_float, default=min_repeat_ms,
                   help="grow --number until one repeat lasts this long (default "
                   + (f"{min_repeat_ms:g})" if min_repeat_ms is not None else
                      "this host's minimum from its clock step and call overhead, ~1 ms)"))
    g.add_argument("--threads", type=positive_int, default=None,
                   help="threads per kernel while timing (default: what compiled kernels "
                        "use, TILETUNE_NUM_THREADS or the core count; recorded)")


def _int_at_least(text: str, lo: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < lo:
        raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
    return v


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def positive_float(text: str) -> float:
    v = nonneg_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def stdout_console() -> Console:
    """A rich console on stdout; plain and wide when stdout is not a terminal."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS", "0") or 0) or 160, no_color=True,
                   highlight=False, soft_wrap=False)


def warn(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"warning: {text}", file=sys.stderr)


def report_error(e: BaseException, verbose: int | bool = 0) -> int:
    """Print ``error: ...`` (and the traceback if verbose); return exit code 2."""
    if verbose:
        traceback.print_exception(e, file=sys.stderr)
    if isinstance(e, TileTuneError):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = f"{e.strerror or e}: {e.filename}" if e.filename else str(e)
    else:
        msg = f"internal error: {type(e).__name__}: {e}"
        if not verbose:
            msg += " (run with -v for the traceback)"
    print(f"error: {msg}", file=sys.stderr)
    return 2


def load_best(path: str, quiet: bool = False
              ) -> tuple[dict[str, Record], list[RecordProblem]]:
    """Best record per workload key of a records file (missing file: RecordsError)."""
    from tiletune.tuner.records.store import best_records, load_records

    recs, problems = load_records(path)
    return best_records(recs), problems


def tuned_config(task: Task, wl: Workload, records: str | None, args: argparse.Namespace
                 ) -> tuple[Any, Record | None]:
    """The best recorded config of ``task`` in ``records``; the heuristic default (with one
    warning saying how to tune it) when there is none."""
    rec = None
    if records:
        best, problems = load_best(records)
        if problems:
            warn(args, f"{records}: skipped {len(problems)} unusable line(s), first: "
                       f"{problems[0]}")
        rec = best.get(task.workload_key)
    if rec is not None:
        return task.space.from_json(rec["config"]), rec
    where = f"no tuned config in {records}" if records else "no --records given"
    warn(args, f"{wl.name} ({task.workload_key}): {where}; using the heuristic default "
               f"config (to tune it: {tune_command(wl, records)})")
    return task.default_config() or task.best_or_default(), None


def gflops(flop: float, seconds: float) -> float:
    return flop / seconds / 1e9 if seconds > 0 else 0.0


def tune_command(wl: Workload, records: str | None) -> str:
    """The ``tiletune tune`` command line that tunes ``wl``."""
    sel = (f"--workload {wl.name}" if ":" in wl.name and not wl.name.startswith(f"{wl.op}:")
           else f"--op {wl.op} --shape {','.join(map(str, wl.shape))}")
    target = f" --target {wl.target}" if wl.target != "llvm" else ""
    return f"tiletune tune {sel}{target}" + (f" --records {records}" if records else "")


#: Random calibration inputs when ``--quantize`` is given without ``--calibration``.
CALIBRATION_INPUTS = 8


def add_quantize_args(p: Any) -> None:
    """``--quantize METHOD`` and ``--calibration FILE.npy`` of the ``--model`` verbs."""
    p.add_argument("--quantize", choices=("minmax", "percentile", "kl"), default=None,
                   help="with --model: quantize the network to int8 first (post-training, "
                        "calibrated by this method; a QDQ model is int8 without it)")
    p.add_argument("--calibration", metavar="FILE.npy",
                   help="with --quantize: calibration inputs, an array of shape (n, *input) "
                        "or one input (default: "
                        f"{CALIBRATION_INPUTS} random standard-normal inputs)")
