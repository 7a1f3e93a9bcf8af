"""Whole networks: tiletune (tuned, heuristic defaults, fusion off) vs ONNX Runtime and
PyTorch eager, batch 1, 224x224, random weights, on 1 and 2 threads.

    python benchmarks/models.py                              # resnet18 resnet50 mobilenet_v2
    python benchmarks/models.py --models resnet18 --records tuned.jsonl --threads 1 2

Models are torchvision's definitions (``pip install -e ".[bench]"``: torch, torchvision,
onnxruntime) exported through ``torch.onnx`` (opset 17, eval mode) to a cache directory
(``TILETUNE_MODEL_CACHE``, default /tmp/tiletune-models). torchvision's compiled operators
do not load against this torch; only the model definitions are used (its fake-kernel
registration is made a no-op before the import). Every ratio is measured in the same run;
the JSON goes to ``benchmarks/results/models.json``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ.pop("OPENBLAS_CORETYPE", None)  # before NumPy (see benchmarks/common.py)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402

CACHE = os.environ.get("TILETUNE_MODEL_CACHE", "/tmp/tiletune-models")
MODELS = ("resnet18", "resnet50", "mobilenet_v2")


def torch_model(name: str) -> Any:
    import torch

    torch.library.register_fake = lambda *a, **k: (lambda f: f)  # see the module docstring
    import torchvision.models as tvm

    torch.manual_seed(0)
    return getattr(tvm, name)(weights=None).eval()


def onnx_path(name: str) -> str:
    import torch

    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"{name}.onnx")
    if not os.path.exists(path):
        x = torch.zeros(1, 3, 224, 224)
        torch.onnx.export(torch_model(name), (x,), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"])
    return path


def bench_model(name: str, threads_list: list[int], records: str | None) -> list[dict]:
    import onnx
    import onnxruntime as ort
    import torch

    from tiletune import frontend, graph

    path = onnx_path(name)
    proto = onnx.load(path)
    g = frontend.from_onnx(path)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    t0 = time.perf_counter()
    variants = {"untuned": graph.build(g), "fusion off": graph.build(g, fusion=False)}
    compile_untuned = time.perf_counter() - t0
    compile_tuned = None
    if records:
        t0 = time.perf_counter()
        variants["tuned"] = graph.build(g, records=records)
        compile_tuned = time.perf_counter() - t0
    tmodel = torch_model(name)
    rows = []
    for threads in threads_list:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(proto.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        expected = sess.run(None, {"input": x})[0]
        row: dict[str, Any] = {"model": name, "threads": threads}
        row["onnxruntime_ms"] = common.best_time(lambda: sess.run(None, {"input": x})) * 1e3
        torch.set_num_threads(threads)
        tx = torch.from_numpy(x)
        with torch.inference_mode():
            row["pytorch_ms"] = common.best_time(lambda: tmodel(tx)) * 1e3
        for label, m in variants.items():
            m.set_num_threads(threads)
            y = m(x)
            rel = float(np.abs(y - expected).max() / np.abs(expected).max())
            row[f"{label}_ms"] = common.best_time(lambda m=m: m(x)) * 1e3
            row[f"{label}_rel_error"] = rel
        prof = variants.get("tuned", variants["untuned"]).profile(x, number=3)
        row["overhead_outside_kernels"] = prof.overhead
        meta = variants["untuned"].meta
        row["peak_activation_mib"] = meta["peak_activation_bytes"] / 2**20
        row["naive_activation_mib"] = meta["naive_activation_bytes"] / 2**20
        row["compile_untuned_s"] = compile_untuned / 2
        row["compile_tuned_s"] = compile_tuned
        if records:
            row["tuned_kernels"] = variants["tuned"].meta["tuned_kernels"]
            row["untuned_kernels"] = variants["tuned"].meta["untuned_kernels"]
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _ratio(row: dict, key: str) -> str:
    v = row.get(f"{key}_ms")
    return f"{v:.2f} ({v / row['onnxruntime_ms']:.2f}x)" if v else "-"


def _line(row: dict) -> str:
    return (f"{row['model']} {row['threads']}t: ORT {row['onnxruntime_ms']:.2f} ms, "
            f"tuned {_ratio(row, 'tuned')}, untuned {_ratio(row, 'untuned')}, fusion off "
            f"{_ratio(row, 'fusion off')}, PyTorch {_ratio(row, 'pytorch')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--records", help="tuning records (tiletune tune --model ...) for 'tuned'")
    p.add_argument("--out", default="models.json", help="JSON name under benchmarks/results")
    args = p.parse_args()
    rows = []
    for name in args.models:
        rows += bench_model(name, args.threads, args.records)
    header = ["model", "thr", "ORT ms", "tuned ms (xORT)", "untuned ms (xORT)",
              "fusion off ms (xORT)", "fusion gain", "PyTorch ms (xORT)", "max rel err",
              "outside kernels", "activations MiB (naive)"]
    table = []
    for r in rows:
        base = r.get("tuned_ms") or r["untuned_ms"]
        errs = [r[k] for k in r if k.endswith("_rel_error")]
        table.append([r["model"], r["threads"], f"{r['onnxruntime_ms']:.2f}",
                      _ratio(r, "tuned"), _ratio(r, "untuned"), _ratio(r, "fusion off"),
                      f"{r['fusion off_ms'] / base:.2f}x", _ratio(r, "pytorch"),
                      f"{max(errs):.1e}", f"{r['overhead_outside_kernels']:.1%}",
                      f"{r['peak_activation_mib']:.1f} ({r['naive_activation_mib']:.1f})"])
    common.print_table("whole networks, batch 1, 224x224", header, table)
    common.write_json(args.out, {"rows": rows, "records": args.records})


if __name__ == "__main__":
    main()
