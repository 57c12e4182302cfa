"""`edgezoo quantize`: int8 artifacts with calibration, a TIDL quantization preview, per-layer sensitivity, a 16-bit
layer proposal, and the accuracy cost measured with `edgezoo eval` semantics.

    quantize_bundle(bundle, calibration, scheme=..., frames=..., dataset=..., ...) -> QuantizeResult

Nothing heavy is imported here: ONNX, ONNX Runtime and TensorFlow load inside the functions that use them.
"""

from __future__ import annotations

from edgezoo.quantize.api import QuantizeError, QuantizeResult, quantize_bundle
from edgezoo.quantize.schemes import ScaleType, Scheme

__all__ = ["QuantizeError", "QuantizeResult", "ScaleType", "Scheme", "quantize_bundle"]
