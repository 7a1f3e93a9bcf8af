"""Build ONNX models in memory with ``onnx.helper`` (random weights, no download).

    b = OnnxBuilder("tiny", (1, 3, 32, 32), seed=0)
    y = b.relu(b.bn(b.conv(b.input, 16, 3, pad=1)))
    model = b.finish(b.gemm(b.flatten(b.global_avg_pool(y)), 10))

The built-in networks (``BUILTIN``) are made this way; so are the tests' models.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tiletune.errors import FrontendError

OPSET = 17


class OnnxBuilder:
    """A sequential ONNX graph builder; every method returns the new tensor's name."""

    def __init__(self, name: str, input_shape: Sequence[int], seed: int = 0,
                 input_name: str = "input") -> None:
        import onnx
        self.onnx = onnx
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
        self.input = input_name
        self._k = 0

    def _fresh(self, base: str) -> str:
        self._k += 1
        return f"{base}_{self._k}"

    def const(self, value: np.ndarray, base: str = "w") -> str:
        name = self._fresh(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], shape: Sequence[int] | None = None,
             **attrs) -> str:
        out = self._fresh(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        if shape is not None:
            self.shapes[out] = tuple(shape)
        return out

    # ---------------------------------------------------------------- layers
    def conv(self, x: str, cout: int, k: int | tuple[int, int], stride: int = 1,
             pad: int | Sequence[int] = 0, groups: int = 1, bias: bool = True,
             dilation: int = 1) -> str:
        n, c, h, w = self.shapes[x]
        kh, kw = (k, k) if isinstance(k, int) else k
        pads = [pad] * 4 if isinstance(pad, int) else list(pad)
        fan_in = (c // groups) * kh * kw
        wt = (self.rng.standard_normal((cout, c // groups, kh, kw)) * np.sqrt(2.0 / fan_in))
        inputs = [x, self.const(wt.astype(np.float32), "conv_w")]
        if bias:
            inputs.append(self.const(self.rng.uniform(-0.1, 0.1, cout).astype(np.float32),
                                     "conv_b"))
        oh = (h + pads[0] + pads[2] - dilation * (kh - 1) - 1) // stride + 1
        ow = (w + pads[1] + pads[3] - dilation * (kw - 1) - 1) // stride + 1
        return self.node("Conv", inputs, (n, cout, oh, ow), kernel_shape=[kh, kw],
                         strides=[stride, stride], pads=pads, group=groups,
                         dilations=[dilation, dilation])

    def bn(self, x: str) -> str:
        c = self.shapes[x][1]
        r = self.rng
        params = [r.uniform(0.5, 1.5, c), r.uniform(-0.2, 0.2, c), r.uniform(-0.2, 0.2, c),
                  r.uniform(0.5, 1.5, c)]
        names = [self.const(p.astype(np.float32), "bn") for p in params]
        return self.node("BatchNormalization", [x] + names, self.shapes[x], epsilon=1e-5)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], self.shapes[x])

    def relu6(self, x: str) -> str:
        lo = self.const(np.array(0.0, np.float32), "clip_lo")
        hi = self.const(np.array(6.0, np.float32), "clip_hi")
        return self.node("Clip", [x, lo, hi], self.shapes[x])

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b], np.broadcast_shapes(self.shapes[a], self.shapes[b]))

    def max_pool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        n, c, h, w = self.shapes[x]
        o = lambda s: (s + 2 * pad - k) // stride + 1  # noqa: E731
        return self.node("MaxPool", [x], (n, c, o(h), o(w)), kernel_shape=[k, k],
                         strides=[stride, stride], pads=[pad] * 4)

    def global_avg_pool(self, x: str) -> str:
        n, c = self.shapes[x][:2]
        return self.node("GlobalAveragePool", [x], (n, c, 1, 1))

    def flatten(self, x: str) -> str:
        s = self.shapes[x]
        return self.node("Flatten", [x], (s[0], int(np.prod(s[1:]))), axis=1)

    def gemm(self, x: str, n_out: int) -> str:
        m, k = self.shapes[x]
        w = (self.rng.standard_normal((n_out, k)) / np.sqrt(k)).astype(np.float32)
        b = self.rng.uniform(-0.1, 0.1, n_out).astype(np.float32)
        return self.node("Gemm", [x, self.const(w, "fc_w"), self.const(b, "fc_b")],
                         (m, n_out), transB=1)

    def finish(self, *outputs: str):
        """The ModelProto (opset 17) with ``outputs`` as the graph outputs."""
        helper, TP = self.onnx.helper, self.onnx.TensorProto
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(self.input, TP.FLOAT, self.shapes[self.input])],
            [helper.make_tensor_value_info(o, TP.FLOAT, self.shapes.get(o)) for o in outputs],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model


# ---------------------------------------------------------------------------- networks
def _basic_block(b: OnnxBuilder, x: str, cout: int, stride: int) -> str:
    y = b.relu(b.bn(b.conv(x, cout, 3, stride, 1, bias=False)))
    y = b.bn(b.conv(y, cout, 3, 1, 1, bias=False))
    skip = x
    if stride != 1 or b.shapes[x][1] != cout:
        skip = b.bn(b.conv(x, cout, 1, stride, 0, bias=False))
    return b.relu(b.add(y, skip))


def resnet18(seed: int = 0, image: int = 224, classes: int = 1000):
    """ResNet-18 (torchvision's layout: conv-BN-ReLU, basic blocks, 1x1 downsample) as an
    ONNX model with random weights and BatchNorm statistics."""
    b = OnnxBuilder("resnet18", (1, 3, image, image), seed)
    x = b.max_pool(b.relu(b.bn(b.conv(b.input, 64, 7, 2, 3, bias=False))), 3, 2, 1)
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = _basic_block(b, x, cout, stride)
        x = _basic_block(b, x, cout, 1)
    return b.finish(b.gemm(b.flatten(b.global_avg_pool(x)), classes))


BUILTIN = {"resnet18": resnet18}


def builtin_model(name: str, **kwargs):
    """A built-in network by name (random weights)."""
    try:
        return BUILTIN[name](**kwargs)
    except KeyError:
        raise FrontendError(f"unknown built-in model {name!r}; built-in: "
                            f"{', '.join(BUILTIN)}") from None
