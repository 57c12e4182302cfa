"""The quantization schemes and the TIDL runtime options that go with each bundle they write."""

from __future__ import annotations

from enum import Enum
from typing import Any

from edgezoo.core.errors import EdgezooError


class SchemeError(EdgezooError):
    """The bundle's model cannot be quantized with the scheme asked for (the message says why)."""


class Scheme(str, Enum):
    TFLITE_INT8 = "tflite-int8"  # TensorFlow's full-integer post-training quantization (TIDL scale type 3)
    ONNX_QDQ = "onnx-qdq"  # ONNX Runtime static quantization, QDQ format (TIDL prequantized_model)
    TIDL_PREVIEW = "tidl-preview"  # a simulation of TIDL's own 8-bit import on the float model


class ScaleType(int, Enum):
    """TIDL's advanced_options:quantization_scale_type values edgezoo can produce."""

    NON_POWER_OF_2 = 0
    POWER_OF_2 = 1
    TFLITE_PREQUANTIZED = 3
    ASYMMETRIC_PER_CHANNEL = 4


# Which float bundle each scheme starts from.
SOURCE_TARGET = {Scheme.TFLITE_INT8: "tflite", Scheme.ONNX_QDQ: "onnx", Scheme.TIDL_PREVIEW: "onnx"}


def runtime_options(base: dict[str, Any], scheme: Scheme, scale_type: ScaleType, frames: int,
                    sixteen_bit: list[str] | None = None) -> dict[str, Any]:
    """The float bundle's options with the quantization keys set for `scheme`.

    Pre-quantized artifacts carry their own scales, so TIDL's calibration is switched off for them (accuracy_level
    0); the preview's float model is calibrated by TIDL itself with the frames the preview used."""
    options = {k: v for k, v in base.items() if not str(k).startswith("advanced_options:calibration")}
    options["tensor_bits"] = 8
    options["advanced_options:quantization_scale_type"] = int(scale_type)
    options["advanced_options:prequantized_model"] = 1 if scheme is Scheme.ONNX_QDQ else 0
    if scheme is Scheme.TIDL_PREVIEW:
        options["accuracy_level"] = 1
        options["advanced_options:calibration_frames"] = frames
        options["advanced_options:calibration_iterations"] = frames
    else:
        options["accuracy_level"] = 0
    if sixteen_bit:
        options["advanced_options:output_feature_16bit_names_list"] = ", ".join(sixteen_bit)
        options["advanced_options:params_16bit_names_list"] = ", ".join(sixteen_bit)
    return options
