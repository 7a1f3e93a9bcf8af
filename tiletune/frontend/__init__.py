"""Model importers: ``from_onnx`` turns an ONNX model into the graph IR."""
from tiletune.frontend.onnx import SUPPORTED as ONNX_OPERATORS
from tiletune.frontend.onnx import from_onnx

__all__ = ["ONNX_OPERATORS", "from_onnx"]
