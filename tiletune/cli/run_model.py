"""``tiletune run FILE.tt``: run a compiled network, time it, compare with ONNX Runtime.

Loading and running need only the runtime (``tiletune.graph.load``); ONNX Runtime and the
ONNX model are read only for ``--compare-onnxruntime``.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from tiletune.cli import common
from tiletune.cli import model as netcli


def run_network(args: argparse.Namespace) -> int:
    from tiletune import graph

    if args.workload or args.op or args.shape or args.records or args.inputs:
        raise common.CLIError("a compiled network takes --input, not --workload/--op/"
                              "--records/--inputs")
    m = graph.load(args.network)
    if args.threads is None:
        args.threads = m.num_threads  # the runtime's default (TILETUNE_NUM_THREADS, cores)
    m.set_num_threads(args.threads)
    b = m.inputs[0]
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise common.CLIError(f"--input {args.input}: cannot load ({e})") from e
        if tuple(x.shape) != tuple(b.shape):
            raise common.CLIError(f"--input {args.input}: shape {x.shape}, the network "
                                  f"takes {b.shape}")
        x = np.ascontiguousarray(x, dtype=b.dtype)
    else:
        x = netcli.random_input(b.shape, args.seed)
    y = m(x)
    sec = netcli.best_time(lambda: m(x), number=args.number, repeat=args.repeat)
    result = {"network": args.network, "threads": args.threads, "latency_ms": sec * 1e3,
              "output_shape": list(np.shape(y))}
    code = 0
    if args.compare_onnxruntime:
        source = args.model or m.meta.get("source")
        if not source:
            raise common.CLIError("--compare-onnxruntime: the file does not name its ONNX "
                                  "model; give --model")
        if os.path.exists(source):
            import onnx
            proto = onnx.load(source)
        else:
            _, proto = netcli.load_model(source)
        sess = netcli.onnxruntime_session(proto, args.threads)
        if sess is None:
            raise common.CLIError("--compare-onnxruntime needs onnxruntime (pip install "
                                  "onnxruntime)")
        expected = netcli.ort_outputs(sess, x)
        err, rel = netcli.compare(y, expected)
        ort_sec = netcli.best_time(lambda: netcli.ort_outputs(sess, x), number=args.number,
                                   repeat=args.repeat)
        ok = rel <= 1e-4
        result.update(onnxruntime_ms=ort_sec * 1e3, ratio=sec / ort_sec, max_abs_error=err,
                      rel_error=rel, match=ok)
        code = 0 if ok else 1
    if args.save_output:
        np.save(args.save_output, y)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.network}: {sec * 1e3:.3f} ms per run, {args.threads} thread(s) "
              f"(best of {args.repeat} x {args.number})")
        if args.compare_onnxruntime:
            print(f"  ONNX Runtime: {result['onnxruntime_ms']:.3f} ms "
                  f"(tiletune {result['ratio']:.2f}x its latency); max |error| "
                  f"{result['max_abs_error']:.3e} = {result['rel_error']:.1e} of max |output| "
                  f"({'ok' if result['match'] else 'MISMATCH'})")
    if args.profile:
        print(m.profile(x, number=args.number))
    if code:
        print("error: output does not match ONNX Runtime (relative error above 1e-4)",
              file=__import__("sys").stderr)
    return code
