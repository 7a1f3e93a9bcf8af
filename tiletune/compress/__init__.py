"""Making networks cheaper: int8 quantization (calibration, QDQ import) and pruning."""
from tiletune.compress import quantize

__all__ = ["quantize"]
