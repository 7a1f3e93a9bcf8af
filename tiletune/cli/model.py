"""Whole-network pieces shared by ``tune --model``, ``compile --model`` and ``run m.tt``:
loading a model (an ONNX file or a built-in name), timing it against ONNX Runtime, tables.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from tiletune.cli.common import CALIBRATION_INPUTS, CLIError


def load_model(spec: str) -> tuple[Any, Any]:
    """``(graph, onnx ModelProto)`` of an ONNX file or a built-in model name (``resnet18``:
    shipped with the package, random weights, nothing downloaded)."""
    from tiletune.frontend import from_onnx
    from tiletune.frontend.builder import BUILTIN, builtin_model

    if os.path.exists(spec):
        import onnx

        try:
            proto = onnx.load(spec)
        except Exception:  # noqa: BLE001 - from_onnx gives the clear error
            proto = None
        return from_onnx(spec), proto
    if spec in BUILTIN:
        proto = builtin_model(spec)
        return from_onnx(proto, name=spec), proto
    raise CLIError(f"--model {spec}: no such file, and not a built-in model "
                   f"({', '.join(BUILTIN)})")


def quantize(g: Any, method: str | None, calibration: str | None, quiet: bool = True) -> Any:
    """``g`` quantized by ``compress.quantize_graph`` when ``method`` is given, else ``g``
    (a QDQ model imported by ``from_onnx`` is already int8)."""
    import sys

    if method is None:
        if calibration:
            raise CLIError("--calibration goes with --quantize")
        return g
    from tiletune.compress import quantize_graph

    shape = tuple(g.type(g.inputs[0]).shape)
    if calibration:
        try:
            data = np.load(calibration, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise CLIError(f"--calibration {calibration}: cannot load ({e})") from e
        if tuple(data.shape) == shape:
            data = data[None]
        if tuple(data.shape[1:]) != shape or len(data) == 0:
            raise CLIError(f"--calibration {calibration}: shape {data.shape}, expected "
                           f"(n, {', '.join(map(str, shape))}) with n >= 1")
        inputs = [np.ascontiguousarray(d, np.float32) for d in data]
    else:
        inputs = [random_input(shape, seed)
                  for seed in range(1, CALIBRATION_INPUTS + 1)]
    qg = quantize_graph(g, inputs, method=method)
    if not quiet:
        print(qg.report(), file=sys.stderr)
    return qg.graph


def random_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def onnxruntime_session(proto: Any, threads: int) -> Any | None:
    """An ONNX Runtime session with every graph optimisation, or None if not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def best_time(fn, number: int = 5, repeat: int = 5) -> float:
    """Best mean seconds of ``fn()`` over ``repeat`` runs of ``number`` (one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def compare(outputs: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """(max abs error, that error relative to max |expected|)."""
    err = float(np.max(np.abs(outputs - expected)))
    scale = float(np.max(np.abs(expected))) or 1.0
    return err, err / scale


def ort_outputs(sess: Any, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]
