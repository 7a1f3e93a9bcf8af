"""Shared benchmark helpers: environment hygiene, the FMA peak, baselines, tables, JSON.

Import this module FIRST in every benchmark: it unsets ``OPENBLAS_CORETYPE`` before NumPy
is imported (with it set to Haswell, NumPy's BLAS runs at half speed on this CPU).
"""
from __future__ import annotations

import os

os.environ.pop("OPENBLAS_CORETYPE", None)

import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def best_time(fn: Callable[[], Any], repeat: int = 5, min_time: float = 0.05) -> float:
    """Best seconds per call: calls grouped so each timed group lasts >= ``min_time``."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_time / one))
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def fma_peak_gflops() -> float:
    """Measured single-core fp32 FMA peak (``tiletune.backends.llvm.peak``: the widest vector
    register this host has, never more chains than registers)."""
    from tiletune.backends.llvm.peak import fma_peak_gflops as probe

    return probe()


def im2col_conv(data: np.ndarray, weight: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """NCHW conv as im2col + one matmul (NumPy's BLAS), batch 1."""
    _, C, H, W = data.shape
    K, _, R, S = weight.shape
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    x = np.pad(data[0], ((0, 0), (pad, pad), (pad, pad)))
    sc, sh, sw = x.strides
    cols = np.lib.stride_tricks.as_strided(
        x, (C, R, S, OH, OW), (sc, sh, sw, sh * stride, sw * stride))
    cols = np.ascontiguousarray(cols).reshape(C * R * S, OH * OW)
    return (weight.reshape(K, -1) @ cols).reshape(1, K, OH, OW)


def torch_conv(threads: int):
    """A callable factory for PyTorch's conv2d, or None if torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)

    def make(data, weight, stride, pad):
        x, w = torch.from_numpy(data), torch.from_numpy(weight)

        def run():
            with torch.no_grad():
                return torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)
        return run
    return make


def ort_conv(threads: int):
    """A callable factory for ONNX Runtime's Conv (all graph optimisations on), or None."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None

    def make(data, weight, stride, pad, group=1):
        K = weight.shape[0]
        OH = (data.shape[2] + 2 * pad - weight.shape[2]) // stride + 1
        OW = (data.shape[3] + 2 * pad - weight.shape[3]) // stride + 1
        node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[stride, stride],
                                pads=[pad] * 4, group=group)
        graph = helper.make_graph(
            [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, data.shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, K, OH, OW))],
            initializer=[onnx.numpy_helper.from_array(weight, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        feed = {"x": data}
        return lambda: sess.run(None, feed)
    return make


def ort_matmul(threads: int):
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None

    def make(a, b):
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        graph = helper.make_graph(
            [node], "mm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, a.shape),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, b.shape)],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, (a.shape[0], b.shape[1]))])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"a": a, "b": b})
    return make


def numpy_threads(n: int):
    """Limit NumPy's BLAS threads (threadpoolctl), returned as a context manager."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n, user_api="blas")
    except ImportError:  # pragma: no cover
        import contextlib
        return contextlib.nullcontext()


def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*[f"{x:.2f}" if isinstance(x, float) else str(x) for x in r])
    Console(width=200).print(table)


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")
    return path
