"""ONNX importer: ``from_onnx(path_or_model) -> Graph`` for the operators of common CNNs.

Supported (default domain, opset 13 and later): see ``SUPPORTED``. Every node is checked
before anything is built: an unsupported operator raises ``UnsupportedOperatorError`` naming
the operator, the node and the supported set. An unreadable, malformed or truncated file
raises ``FrontendError``.

Normalisation on the way in: Conv pads become ``(top, left, bottom, right)`` (``auto_pad``
resolved), Gemm/MatMul with a constant right operand become ``dense`` (``y = x @ w.T``,
alpha/transB folded into ``w``, a per-column C as the bias step), Clip's bounds are read from
its constant operands, BatchNormalization keeps its four parameters as constants (a pass folds
it into the preceding conv).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from tiletune.errors import FrontendError, GraphError, UnsupportedOperatorError
from tiletune.graph.ir import Graph

SUPPORTED = ("Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv",
             "Flatten", "Gemm", "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Mul",
             "Relu", "Reshape", "Softmax", "Transpose", "QuantizeLinear", "DequantizeLinear")
MIN_OPSET = 13


def _load(model: Any):
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise FrontendError(f"no ONNX model at {path}")
    try:
        return onnx.load(path)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeError, ...
        raise FrontendError(f"{path} is not a readable ONNX model (malformed or truncated?): "
                            f"{type(e).__name__}: {e}") from None


def _check(model, where: str) -> None:
    import onnx
    if not model.HasField("graph") or not model.graph.node:
        raise FrontendError(f"{where}: the model has no graph nodes (malformed or truncated?)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < MIN_OPSET:
        raise FrontendError(f"{where}: default-domain opset {opset}; tiletune imports opset "
                            f"{MIN_OPSET} and later (convert with onnx.version_converter)")
    bad = [(n.op_type, n.name or f"#{i}", n.domain) for i, n in enumerate(model.graph.node)
           if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED]
    if bad:
        op, node, domain = bad[0]
        more = f" (and {len(bad) - 1} more unsupported node(s): " \
               f"{sorted({b[0] for b in bad[1:]})})" if len(bad) > 1 else ""
        dom = f" in domain {domain!r}" if domain not in ("", "ai.onnx") else ""
        raise UnsupportedOperatorError(
            f"{where}: unsupported ONNX operator {op}{dom} at node {node!r}{more}; supported: "
            f"{', '.join(SUPPORTED)}")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        raise FrontendError(f"{where}: the model fails ONNX's checker (malformed?): {e}"
                            ) from None


def from_onnx(model: Any, shapes: dict[str, tuple[int, ...]] | None = None,
              name: str | None = None) -> Graph:
    """Import an ONNX model (a path or a ``ModelProto``) into the graph IR.

    ``shapes`` fixes the shape of inputs with symbolic dimensions (e.g. a batch ``N``).
    """
    where = os.fspath(model) if isinstance(model, str | os.PathLike) else "ONNX model"
    proto = _load(model)
    _check(proto, where)
    try:
        importer = _Importer(proto, shapes or {}, where, name)
        g = importer.run()
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node):
            # a QDQ model: its quantized Conv/Gemm layers become int8 kernels
            from tiletune.compress.quantize.qdq_graph import splice_qdq
            splice_qdq(g, proto, importer.names)
        return g
    except GraphError as e:
        if isinstance(e, FrontendError):
            raise
        raise FrontendError(f"{where}: {e}") from None


class _Importer:
    def __init__(self, model, shapes: dict[str, tuple[int, ...]], where: str,
                 name: str | None) -> None:
        from onnx import numpy_helper
        self.model, self.where, self.shapes = model, where, shapes
        self.to_array = numpy_helper.to_array
        gname = name or model.graph.name or "model"
        self.g = Graph(gname)
        self.names: dict[str, str] = {}  # ONNX tensor name -> node name

    def fail(self, node, msg: str) -> FrontendError:
        return FrontendError(f"{self.where}: node {node.name or node.op_type!r} "
                             f"({node.op_type}): {msg}")

    # ---------------------------------------------------------------- graph boundary
    def run(self) -> Graph:
        import onnx
        gr = self.model.graph
        for init in gr.initializer:
            arr = self.to_array(init)
            self.names[init.name] = self.g.constant(init.name or "const", _float(arr))
        for inp in gr.input:
            if inp.name in self.names:
                continue
            tt = inp.type.tensor_type
            dims = []
            for i, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(d.dim_value)
                elif inp.name in self.shapes:
                    dims.append(int(self.shapes[inp.name][i]))
                else:
                    raise FrontendError(
                        f"{self.where}: input {inp.name!r} has a symbolic dimension "
                        f"{d.dim_param or '?'} (axis {i}); pass shapes={{{inp.name!r}: (...)}}")
            if inp.name in self.shapes:
                dims = [int(v) for v in self.shapes[inp.name]]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            if dtype != np.float32:
                raise FrontendError(f"{self.where}: input {inp.name!r} is {dtype}; tiletune "
                                    "imports float32 models")
            node = self.g.add(self.g.unique_name(inp.name), "input",
                              attrs={"shape": tuple(dims), "dtype": "float32"})
            self.g.inputs.append(node)
            self.names[inp.name] = node
        for node in gr.node:
            self.convert(node)
        for out in gr.output:
            if out.name not in self.names:
                raise FrontendError(f"{self.where}: graph output {out.name!r} is not produced "
                                    "by any node (malformed or truncated?)")
            self.g.outputs.append(self.names[out.name])
        self.g.remove_unused()
        return self.g

    # ---------------------------------------------------------------- helpers
    def arg(self, node, i: int) -> str | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        name = node.input[i]
        if name not in self.names:
            raise self.fail(node, f"input {name!r} is neither a graph input, an initializer "
                            "nor produced by an earlier node (malformed or truncated?)")
        return self.names[name]

    def const(self, node, i: int) -> np.ndarray | None:
        ref = self.arg(node, i)
        return None if ref is None else self.g.value(ref)

    def attrs(self, node) -> dict[str, Any]:
        import onnx
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def emit(self, node, op: str, inputs: list[str], attrs: dict | None = None,
             suffix: str = "") -> str:
        base = (node.name or node.output[0] or node.op_type) + suffix
        return self.g.add(self.g.unique_name(base), op, inputs, attrs)

    def out(self, node, ref: str) -> None:
        self.names[node.output[0]] = ref

    # ---------------------------------------------------------------- operators
    def convert(self, node) -> None:
        a = self.attrs(node)
        op = node.op_type
        if len([o for o in node.output if o]) > 1:
            raise self.fail(node, "only the first output is supported (the others are used)")
        handler = getattr(self, f"_op_{op}")
        self.out(node, handler(node, a))

    def _spatial(self, node, a: dict, kernel: tuple[int, int], size: tuple[int, int],
                 dil: tuple[int, int]) -> tuple[tuple, tuple]:
        strides = tuple(a.get("strides", (1, 1)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if len(kernel) != 2:
            raise self.fail(node, f"only 2-D windows are supported (kernel {kernel})")
        if auto in ("NOTSET", ""):
            p = tuple(a.get("pads", (0, 0, 0, 0)))
            pads = (p[0], p[1], p[2], p[3])
        elif auto == "VALID":
            pads = (0, 0, 0, 0)
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            tot = []
            for s, k, st, d in zip(size, kernel, strides, dil):
                out = -(-s // st)
                tot.append(max(0, (out - 1) * st + (k - 1) * d + 1 - s))
            lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in tot]
            pads = (lo[0], lo[1], tot[0] - lo[0], tot[1] - lo[1])
        else:
            raise self.fail(node, f"unknown auto_pad {auto!r}")
        return strides, pads

    def _op_Conv(self, node, a):
        x, w = self.arg(node, 0), self.arg(node, 1)
        wt = self.g.type(w)
        if len(wt.shape) != 4:
            raise self.fail(node, f"only 2-D convolutions are supported (weight {wt.shape})")
        if self.g.value(w) is None:
            raise self.fail(node, "the weight must be a constant (an initializer)")
        kernel = tuple(a.get("kernel_shape", wt.shape[2:]))
        dil = tuple(a.get("dilations", (1, 1)))
        strides, pads = self._spatial(node, a, kernel, self.g.type(x).shape[2:], dil)
        b = self.arg(node, 2)
        attrs = {"strides": strides, "pads": pads, "dilations": dil,
                 "groups": int(a.get("group", 1)), "epilogue": (("bias",),) if b else ()}
        return self.emit(node, "conv2d", [x, w] + ([b] if b else []), attrs)

    def _op_Gemm(self, node, a):
        x, bref = self.arg(node, 0), self.arg(node, 1)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        if a.get("transA", 0):
            x = self.emit(node, "transpose", [x], {"perm": (1, 0)}, "_transA")
        B = self.g.value(bref)
        C = self.const(node, 2)
        cref = self.arg(node, 2)
        if B is not None:
            w = (B if a.get("transB", 0) else B.T) * np.float32(alpha)
            n = w.shape[0]
            steps, extra = (), []
            if C is not None and C.size in (1, n) and (C.ndim <= 1 or C.shape[-1] == n
                                                       or C.size == 1):
                steps, extra = (("bias",),), [self.g.constant(
                    "bias", np.broadcast_to(C.reshape(-1) * np.float32(beta), (n,)).copy())]
                cref = None
            y = self.emit(node, "dense", [x, self.g.constant("weight", np.ascontiguousarray(w))]
                          + extra, {"epilogue": steps})
        else:
            b = self.emit(node, "transpose", [bref], {"perm": (1, 0)}, "_transB") \
                if a.get("transB", 0) else bref
            y = self.emit(node, "matmul", [x, b])
            if alpha != 1.0:
                y = self.emit(node, "mul", [y, self.g.constant("alpha", np.float32(alpha))],
                              suffix="_alpha")
        if cref is not None and beta != 0.0:
            c = cref if beta == 1.0 else self.emit(
                node, "mul", [cref, self.g.constant("beta", np.float32(beta))], suffix="_beta")
            y = self.emit(node, "add", [y, c], suffix="_c")
        return y

    def _op_MatMul(self, node, a):
        x, bref = self.arg(node, 0), self.arg(node, 1)
        B = self.g.value(bref)
        if B is not None and B.ndim == 2 and len(self.g.type(x).shape) == 2:
            w = self.g.constant("weight", np.ascontiguousarray(B.T))
            return self.emit(node, "dense", [x, w], {"epilogue": ()})
        return self.emit(node, "matmul", [x, bref])

    def _op_Relu(self, node, a):
        return self.emit(node, "relu", [self.arg(node, 0)])

    def _op_Clip(self, node, a):
        lo, hi = self.const(node, 1), self.const(node, 2)
        for i, v in ((1, lo), (2, hi)):
            if self.arg(node, i) is not None and v is None:
                raise self.fail(node, "Clip bounds must be constants")
        lo_v = float(lo) if lo is not None else float(a.get("min", -np.inf))
        hi_v = float(hi) if hi is not None else float(a.get("max", np.inf))
        return self.emit(node, "clip", [self.arg(node, 0)], {"min": lo_v, "max": hi_v})

    def _op_Add(self, node, a):
        return self.emit(node, "add", [self.arg(node, 0), self.arg(node, 1)])

    def _op_Mul(self, node, a):
        return self.emit(node, "mul", [self.arg(node, 0), self.arg(node, 1)])

    def _op_BatchNormalization(self, node, a):
        if a.get("training_mode", 0):
            raise self.fail(node, "training_mode=1 is not supported (inference only)")
        args = [self.arg(node, i) for i in range(5)]
        return self.emit(node, "batch_norm", args, {"epsilon": float(a.get("epsilon", 1e-5))})

    def _pool(self, node, a, op: str):
        x = self.arg(node, 0)
        kernel = tuple(a["kernel_shape"])
        dil = tuple(a.get("dilations", (1, 1)))
        if a.get("storage_order", 0):
            raise self.fail(node, "storage_order=1 is not supported")
        strides, pads = self._spatial(node, a, kernel, self.g.type(x).shape[2:], dil)
        attrs = {"kernel": kernel, "strides": strides, "pads": pads, "dilations": dil,
                 "ceil_mode": int(a.get("ceil_mode", 0))}
        if op == "avg_pool":
            attrs["count_include_pad"] = int(a.get("count_include_pad", 0))
        return self.emit(node, op, [x], attrs)

    def _op_MaxPool(self, node, a):
        return self._pool(node, a, "max_pool")

    def _op_AveragePool(self, node, a):
        return self._pool(node, a, "avg_pool")

    def _op_GlobalAveragePool(self, node, a):
        return self.emit(node, "global_avg_pool", [self.arg(node, 0)])

    def _op_Flatten(self, node, a):
        return self.emit(node, "flatten", [self.arg(node, 0)], {"axis": int(a.get("axis", 1))})

    def _op_Reshape(self, node, a):
        shape = self.const(node, 1)
        if shape is None:
            raise self.fail(node, "the target shape must be a constant")
        return self.emit(node, "reshape", [self.arg(node, 0)],
                         {"shape": tuple(int(v) for v in shape.reshape(-1)),
                          "allowzero": int(a.get("allowzero", 0))})

    def _op_Concat(self, node, a):
        return self.emit(node, "concat", [self.arg(node, i) for i in range(len(node.input))],
                         {"axis": int(a["axis"])})

    def _op_Softmax(self, node, a):
        return self.emit(node, "softmax", [self.arg(node, 0)], {"axis": int(a.get("axis", -1))})

    def _op_Transpose(self, node, a):
        rank = len(self.g.type(self.arg(node, 0)).shape)
        perm = tuple(a.get("perm", tuple(reversed(range(rank)))))
        return self.emit(node, "transpose", [self.arg(node, 0)], {"perm": perm})

    def _op_Identity(self, node, a):
        return self.emit(node, "identity", [self.arg(node, 0)])

    def _qparams(self, node) -> tuple[np.ndarray, np.ndarray]:
        scale = self.const(node, 1)
        zp = self.const(node, 2) if self.arg(node, 2) is not None else np.zeros((), np.uint8)
        if scale is None or zp is None:
            raise self.fail(node, "scale and zero point must be constants")
        return np.asarray(scale, np.float32), np.asarray(zp)

    def _op_QuantizeLinear(self, node, a):
        """An activation -> ``quantize`` (u8, per tensor); a constant is quantized here."""
        from tiletune.graph import qops  # noqa: F401 - registers the quantized operators
        scale, zp = self._qparams(node)
        x = self.arg(node, 0)
        v = self.g.value(x)
        if zp.dtype != np.uint8 and v is None:
            raise self.fail(node, f"activations quantize to uint8 only, not {zp.dtype}")
        if v is not None:  # constants follow ONNX (round half to even) in their own dtype
            info = np.iinfo(zp.dtype)
            shape = [1] * v.ndim
            if scale.size > 1:
                shape[a.get("axis", 1)] = -1
            q = np.rint(v / scale.reshape(shape)) + zp.astype(np.int64).reshape(shape)
            return self.g.constant(node.output[0], np.clip(q, info.min, info.max)
                                   .astype(zp.dtype))
        if scale.size != 1:
            raise self.fail(node, "activations need a per-tensor scale")
        return self.emit(node, "quantize", [x], {
            "scale": float(scale.ravel()[0]), "zero_point": int(zp.ravel()[0]), "qmax": 255})

    def _op_DequantizeLinear(self, node, a):
        """A constant (weights, bias) -> its float32 value; an activation -> ``dequantize``."""
        from tiletune.graph import qops  # noqa: F401 - registers the quantized operators
        scale, zp = self._qparams(node)
        x = self.arg(node, 0)
        v = self.g.value(x)
        if v is not None:
            shape = [1] * v.ndim
            if scale.size > 1:
                shape[a.get("axis", 1)] = -1
            real = (v.astype(np.int64) - zp.astype(np.int64).reshape(shape)) \
                * scale.reshape(shape)
            return self.g.constant(node.output[0], real.astype(np.float32))
        if scale.size != 1:
            raise self.fail(node, "activations need a per-tensor scale")
        s = self.g.constant(f"{node.output[0]}_scale", scale.reshape(()))
        return self.emit(node, "dequantize", [x, s], {"zero_point": int(zp.ravel()[0])})

    def _op_Constant(self, node, a):
        if "value" in a:
            arr = self.to_array(a["value"])
        elif "value_float" in a:
            arr = np.array(a["value_float"], np.float32)
        elif "value_floats" in a:
            arr = np.array(a["value_floats"], np.float32)
        elif "value_int" in a:
            arr = np.array(a["value_int"], np.int64)
        elif "value_ints" in a:
            arr = np.array(a["value_ints"], np.int64)
        else:
            raise self.fail(node, f"unsupported Constant attribute(s) {sorted(a)}")
        return self.g.constant(node.output[0], _float(arr))


def _float(arr: np.ndarray) -> np.ndarray:
    """float64/16 constants become float32 (integer ones, e.g. shapes, stay as they are)."""
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr
