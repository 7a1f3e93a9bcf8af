"""Making networks cheaper: int8 quantization (calibration, QDQ import) and pruning."""
from tiletune.compress import quantize
from tiletune.compress.prune import GRANULARITIES, Pruned, magnitude_mask, prune, shrink_filters

__all__ = ["GRANULARITIES", "Pruned", "magnitude_mask", "prune", "quantize", "shrink_filters"]
