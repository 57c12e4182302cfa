"""edgezoo: MLPerf inference vision models to verified, TIDL-ready artifacts.

The public API is small and importable without TensorFlow:

    from edgezoo import zoo
    card = zoo.get_card("resnet50")

Heavy libraries (tensorflow, onnxruntime, tf2onnx) are imported inside the functions that use them.
"""

__version__ = "0.1.0"
