"""``tiletune run``: time a workload's kernel on random or given inputs, check it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from tiletune.cli import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", parents=[common.global_options()],
                       help="time a workload's kernel (tuned or default), check it vs NumPy",
                       description="Build one workload with the best config of --records (or "
                       "the heuristic default) and time it on random inputs or --inputs.",
                       epilog="examples:\n  tiletune run --workload resnet18:2 --records "
                       "tuned.jsonl --check --threads 2\n  tiletune run m.tt --input x.npy "
                       "--compare-onnxruntime --profile   # a compiled network",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("network", nargs="?", metavar="FILE.tt",
                   help="a compiled network (tiletune compile --model ... -o FILE.tt)")
    n = p.add_argument_group("compiled network (FILE.tt)")
    n.add_argument("--input", metavar="NPY", help="the network's input (.npy); default random")
    n.add_argument("--compare-onnxruntime", action="store_true",
                   help="run the source ONNX model (or --model) in ONNX Runtime on the same "
                        "input and report the max error and both latencies")
    n.add_argument("--model", metavar="ONNX|NAME",
                   help="the ONNX model to compare with (default: the one it was compiled from)")
    n.add_argument("--profile", action="store_true", help="time every fused operator")
    common.add_workload_args(p)
    p.add_argument("--records", metavar="FILE", help="tuning records to take the config from")
    p.add_argument("--inputs", nargs="+", metavar="NPY",
                   help="input arrays as .npy files, in the operator's order and natural "
                        "layout (conv2d: data NCHW, weight OIHW; dense: A MxK, B KxN)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--check", action="store_true",
                   help="compare the output with the NumPy reference (exit 1 on mismatch)")
    p.add_argument("--save-output", metavar="NPY", help="write the output array to a .npy file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_timing_args(p, number=10, repeat=5)
    p.set_defaults(func=run)


def load_inputs(paths: list[str], expected: int) -> list[np.ndarray]:
    if len(paths) != expected:
        raise common.CLIError(f"--inputs: the operator takes {expected} input arrays, got "
                              f"{len(paths)}")
    out = []
    for p in paths:
        try:
            out.append(np.load(p, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise common.CLIError(f"--inputs {p}: cannot load ({e})") from e
    return out


def run(args: argparse.Namespace) -> int:
    import tiletune as tt

    if args.network:
        from tiletune.cli.run_model import run_network
        return run_network(args)
    if args.input or args.compare_onnxruntime or args.profile or args.model:
        raise common.CLIError("--input, --compare-onnxruntime, --profile and --model go with "
                              "a compiled network: tiletune run FILE.tt ...")
    wl = common.one_workload(args, "run")
    task = wl.task()
    config, rec = common.tuned_config(task, wl, args.records, args)
    s, targs = task.instantiate(config)
    f = tt.build(s, targs, target=wl.target, name=common.kernel_name(wl.name))
    if args.threads is None:
        args.threads = f.num_threads  # the runtime's default (TILETUNE_NUM_THREADS, cores)
    f.set_num_threads(args.threads)
    inputs = task.make_inputs(args.seed)
    if args.inputs:
        given = load_inputs(args.inputs, len(inputs))
        for i, (g, d) in enumerate(zip(given, inputs)):
            if g.shape != d.shape:
                raise common.CLIError(f"--inputs {args.inputs[i]}: shape {g.shape}, the "
                                      f"operator needs {d.shape}")
        inputs = [np.ascontiguousarray(g, dtype=d.dtype) for g, d in zip(given, inputs)]
    kargs, out_pos = task.prepare(config, inputs, targs)
    f(*kargs)
    outputs = [kargs[i].copy() for i in out_pos]
    t = f.time_evaluator(number=args.number, repeat=args.repeat,
                         min_repeat_ms=args.min_repeat_ms)(*kargs)
    result: dict[str, Any] = {
        "workload": wl.name, "shape": wl.describe(), "config": config.to_json(),
        "tuned": rec is not None, "threads": args.threads, "mean_ms": t.mean * 1e3,
        "median_ms": t.median * 1e3, "min_ms": t.min * 1e3,
        "gflops": common.gflops(task.flop, t.mean), "number": t.number}
    code = 0
    if args.check:
        expected = task.reference(inputs)
        if expected is None:
            raise common.CLIError(f"{task.name} has no NumPy reference to check against")
        problem = task.check(outputs, expected)
        result["check"] = "ok" if problem is None else f"MISMATCH: {problem}"
        code = 0 if problem is None else 1
    if args.save_output:
        np.save(args.save_output, outputs[0])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{wl.name} ({wl.describe()}), {'tuned' if rec else 'default'} config, "
              f"{args.threads} thread(s)")
        print(f"  mean {result['mean_ms']:.4f} ms | median {result['median_ms']:.4f} ms | "
              f"min {result['min_ms']:.4f} ms | {result['gflops']:.1f} GFLOP/s "
              f"({args.repeat} x {t.number} calls)")
        if args.check:
            print(f"  check vs NumPy: {result['check']}")
    if code:
        print("error: output does not match the NumPy reference", file=sys.stderr)
    return code
