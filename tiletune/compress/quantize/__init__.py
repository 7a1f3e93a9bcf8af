"""Post-training quantization: calibration, quantization parameters, quantized layers and
the QDQ importer."""
from tiletune.compress.quantize.calibrate import (
    METHODS,
    Observer,
    Range,
    calibrate,
    kl_divergence_at,
    kl_threshold,
)
from tiletune.compress.quantize.graph import (
    QuantizedGraph,
    node_values,
    quantize_graph,
    run_reference,
    sqnr_db,
)
from tiletune.compress.quantize.layer import QuantizedLayer, quantize_layer
from tiletune.compress.quantize.ptq import quantize_model
from tiletune.compress.quantize.qdq import QDQModel, read_qdq
from tiletune.compress.quantize.qparams import (
    QParams,
    activation_qparams,
    quantize_bias,
    quantize_weight,
)

__all__ = ["METHODS", "Observer", "QDQModel", "QParams", "QuantizedGraph", "QuantizedLayer",
           "Range",
           "node_values", "quantize_graph", "run_reference", "sqnr_db",
           "activation_qparams", "calibrate", "kl_divergence_at", "kl_threshold",
           "quantize_bias", "quantize_layer", "quantize_model", "quantize_weight", "read_qdq"]
