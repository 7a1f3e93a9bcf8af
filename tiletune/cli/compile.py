"""``tiletune compile``: build a workload's tuned kernel (or the heuristic default)."""

from __future__ import annotations

import argparse
import os
import sys

from tiletune.cli import common

EXTENSIONS = (".so", ".o", ".ll", ".s")
DUMPS = {"ir": "the lowered loop nest", "ll": "LLVM IR", "ll-opt": "optimised LLVM IR",
         "asm": "assembly"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", parents=[common.global_options()],
                       help="compile a workload with its best recorded config",
                       description="Build one workload with the fastest config of --records "
                       "(the heuristic default, with a warning, when it was not tuned) and "
                       "write it to -o and/or print a --dump.",
                       epilog="example: tiletune compile --workload resnet18:2 --records "
                       "tuned.jsonl -o conv.so --dump ir",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_workload_args(p)
    p.add_argument("--records", metavar="FILE", help="tuning records to take the config from")
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the kernel; the extension picks the format: "
                        f"{' '.join(EXTENSIONS)}")
    p.add_argument("--dump", action="append", choices=list(DUMPS), default=[],
                   help="print to stdout: " + ", ".join(f"{k} ({v})" for k, v in DUMPS.items())
                   + "; repeatable")
    p.add_argument("--name", help="kernel (symbol) name; default from the workload")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tiletune as tt

    if not args.output and not args.dump:
        raise common.CLIError("nothing to do: give -o FILE and/or --dump ir")
    if args.output and os.path.splitext(args.output)[1] not in EXTENSIONS:
        raise common.CLIError(f"-o {args.output}: unknown extension; use one of "
                              f"{', '.join(EXTENSIONS)}")
    wl = common.one_workload(args, "compile")
    task = wl.task()
    config, rec = common.tuned_config(task, wl, args.records, args)
    name = args.name or common.kernel_name(wl.name)
    s, targs = task.instantiate(config)
    f = tt.build(s, targs, target=wl.target, name=name)
    for fmt in args.dump:
        print(f.get_source(fmt) if fmt != "ir" else tt.lower(s, targs, name=name))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        f.export_library(args.output)
        what = "tuned" if rec else "default"
        if not args.quiet:
            print(f"wrote {args.output} ({wl.name}, {what} config: {config})", file=sys.stderr)
    return 0
