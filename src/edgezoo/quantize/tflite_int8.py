"""`tflite-int8`: TensorFlow's full-integer post-training quantization of a TFLite bundle's source graph.

A .tflite cannot be re-quantized by the converter: it starts again from the frozen graph the bundle was made from
(manifest.json "original"), with the .tflite's own input and output names and shapes, so the int8 model computes
what the float bundle computes. TFLite_Detection_PostProcess bundles are built by graph surgery, not by this
conversion, so they are refused (a one-line reason) rather than quantized into something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgezoo.errors import EdgezooError


class SchemeError(EdgezooError):
    """The bundle's model cannot be quantized with the scheme asked for (the message says why)."""


def source_graph(bundle: Path, manifest: dict) -> Path:
    original = manifest.get("original")
    if not original or not str(original).endswith(".pb"):
        raise SchemeError(f"{bundle}: tflite-int8 needs the frozen graph the bundle was converted from, and "
                          f"manifest.json names none ({original!r})",
                          hint="use --scheme onnx-qdq or tidl-preview on the ONNX bundle")
    path = Path(original)
    if not path.is_file():
        raise SchemeError(f"{bundle}: the frozen graph it was converted from is gone ({path})",
                          hint="run 'edgezoo export' again so the source is in the cache")
    return path


def quantize_tflite_int8(bundle: Path, model: Path, manifest: dict, inputs: Sequence[np.ndarray],
                         dest: Path) -> Path:
    from edgezoo.convert import frozen_graph_to_tflite
    from edgezoo.graphs import ssd_surgery, tflite_model

    if ssd_surgery.read_postprocess_ops(model):
        raise SchemeError(f"{model}: ends in TFLite_Detection_PostProcess, which edgezoo builds by graph surgery "
                          f"that the integer converter does not redo",
                          hint="use --scheme tidl-preview or onnx-qdq on the model's ONNX bundle")
    pb = source_graph(bundle, manifest)
    interp = tflite_model.load_interpreter(model, default_delegates=False)
    ins, outs = tflite_model.inputs(interp), tflite_model.outputs(interp)
    shapes = {i.name: [d if d is not None else 1 for d in i.shape] for i in ins}

    def representative():
        for x in inputs:
            yield [x.astype(np.float32)]

    return frozen_graph_to_tflite(pb, shapes, [o.name for o in outs], dest, representative=representative)
