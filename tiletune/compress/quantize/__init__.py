"""Post-training quantization: calibration, quantization parameters, QDQ import."""
from tiletune.compress.quantize.calibrate import (
    METHODS,
    Observer,
    Range,
    calibrate,
    kl_divergence_at,
    kl_threshold,
)
from tiletune.compress.quantize.qparams import (
    QParams,
    activation_qparams,
    quantize_bias,
    quantize_weight,
)

__all__ = ["METHODS", "Observer", "QParams", "Range", "activation_qparams", "calibrate",
           "kl_divergence_at", "kl_threshold", "quantize_bias", "quantize_weight"]
