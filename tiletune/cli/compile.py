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
                       epilog="examples:\n  tiletune compile --workload resnet18:2 --records "
                       "tuned.jsonl -o conv.so --dump ir\n  tiletune compile --model m.onnx "
                       "--records tuned.jsonl -o m.tt     # a whole network",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_workload_args(p)
    p.add_argument("--model", metavar="ONNX|NAME",
                   help="compile a whole network (an ONNX file or a built-in name such as "
                        "resnet18) to one .tt file (-o): kernels, call plan and weights")
    p.add_argument("--no-fusion", action="store_true",
                   help="with --model: one kernel per operator (no epilogue fusion)")
    p.add_argument("--dump-graph", metavar="DIR",
                   help="with --model: write the graph after every graph pass to DIR")
    common.add_quantize_args(p)
    p.add_argument("--records", metavar="FILE", help="tuning records to take the config from")
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"write the kernel; the extension picks the format: "
                        f"{' '.join(EXTENSIONS)}")
    p.add_argument("--dump", action="append", choices=list(DUMPS), default=[],
                   help="print to stdout: " + ", ".join(f"{k} ({v})" for k, v in DUMPS.items())
                   + "; repeatable")
    p.add_argument("--name", help="kernel (symbol) name; default from the workload")
    p.set_defaults(func=run)


def run_model(args: argparse.Namespace) -> int:
    """``--model``: the whole network to one .tt file."""
    import time

    from tiletune import graph
    from tiletune.cli.model import load_model, quantize

    if args.workload or args.op or args.shape:
        raise common.CLIError("use either --model or --workload / --op, not both")
    if not args.output or not args.output.endswith(".tt"):
        raise common.CLIError("--model needs -o FILE.tt")
    g, _ = load_model(args.model)
    g = quantize(g, args.quantize, args.calibration, args.quiet)
    t0 = time.perf_counter()
    m = graph.build(g, records=args.records, fusion=not args.no_fusion, dump=args.dump_graph)
    m.meta["source"] = os.path.abspath(args.model) if os.path.exists(args.model) else args.model
    m.export(args.output)
    if not args.quiet:
        meta = m.meta
        print(f"wrote {args.output}: {len(m.steps)} kernel calls ({len(m.kernels)} distinct "
              f"kernels, {meta['tuned_kernels']} tuned, {meta['untuned_kernels']} default), "
              f"activations {meta['peak_activation_bytes'] / 2**20:.1f} MiB (one buffer per "
              f"tensor: {meta['naive_activation_bytes'] / 2**20:.1f} MiB), "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    import tiletune as tt

    if args.model:
        return run_model(args)
    if args.no_fusion or args.dump_graph or args.quantize or args.calibration:
        raise common.CLIError("--no-fusion, --dump-graph, --quantize and --calibration go "
                              "with --model")
    if not args.output and not args.dump:
        raise common.CLIError("nothing to do: give -o FILE and/or --dump ir")
    if args.output and os.path.splitext(args.output)[1] not in EXTENSIONS:
        if args.output.endswith(".tt"):
            raise common.CLIError(f"-o {args.output}: a .tt file holds a whole network; "
                                  "compile one with --model")
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
