"""Making networks cheaper: int8 quantization (calibration, QDQ import) and pruning."""
from tiletune.compress import quantize
from tiletune.compress.prune import GRANULARITIES, Pruned, magnitude_mask, prune, shrink_filters
from tiletune.compress.prune_graph import prune_graph, shrink_channels
from tiletune.compress.quantize.graph import QuantizedGraph, quantize_graph, run_reference
from tiletune.compress.quantize.vta_graph import VTAReport, place_on_vta, vta_report
from tiletune.compress.sparse_graph import use_sparse_kernels

__all__ = ["GRANULARITIES", "Pruned", "QuantizedGraph", "magnitude_mask", "prune", "prune_graph",
           "quantize", "quantize_graph", "run_reference", "shrink_channels", "shrink_filters",
           "use_sparse_kernels", "VTAReport", "place_on_vta", "vta_report"]
