"""`tflite-int8`: TensorFlow's full-integer post-training quantization of a TFLite bundle's source graph.

A .tflite cannot be re-quantized by the converter: it starts again from the frozen graph the bundle was made from
(manifest.json "original"), with the .tflite's own input and output names and shapes, so the int8 model computes
what the float bundle computes. TFLite_Detection_PostProcess bundles are built by graph surgery, not by this
conversion: for them the recipe's surgery is redone from the same sources and options, then converted with
calibration (TFLite_Detection_PostProcess stays float on the dequantized heads).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.reader import Bundle
from edgezoo.detection.pipeline_config import load_pipeline_config
from edgezoo.graphs import tflite_model
from edgezoo.graphs.convert import frozen_graph_to_tflite
from edgezoo.quantize.schemes import SchemeError
from edgezoo.recipes import ssd_mobilenet
from edgezoo.recipes.params import validate_params
from edgezoo.ssd import ssd_surgery


def source_graph(bundle: Bundle) -> Path:
    """The frozen graph a TFLite bundle was converted from (manifest "original"), checked against the sha256 its
    manifest records for that source (bundle.reader.Bundle.original)."""
    original = bundle.manifest.get("original")
    if not original or not str(original).endswith(".pb"):
        raise SchemeError(f"{bundle.folder}: tflite-int8 needs the frozen graph the bundle was converted from, and "
                          f"manifest.json names none ({original!r})",
                          hint="use --scheme onnx-qdq or tidl-preview on the ONNX bundle")
    return bundle.original()


def quantize_tflite_int8(bundle: Bundle, inputs: Sequence[np.ndarray], dest: Path) -> Path:
    """`bundle`: the float TFLite bundle as bundle.reader read it."""

    def representative():
        for x in inputs:
            yield [x.astype(np.float32)]

    model = bundle.model
    pb = source_graph(bundle)
    if ssd_surgery.read_postprocess_ops(model):
        return _ssd_int8(bundle, pb, representative, dest)
    interp = tflite_model.load_interpreter(model, default_delegates=False)
    ins, outs = tflite_model.inputs(interp), tflite_model.outputs(interp)
    shapes = {i.name: [d if d is not None else 1 for d in i.shape] for i in ins}
    return frozen_graph_to_tflite(pb, shapes, [o.name for o in outs], dest, representative=representative)


def _ssd_int8(bundle: Bundle, pb: Path, representative: Any, dest: Path) -> Path:
    """The SSD recipe's surgery again (same pipeline.config, same TFLite_Detection_PostProcess options from the
    manifest), converted with calibration: int8 backbone and heads, the post-processing op float on their
    dequantized outputs (checked against the options as the recipe checks it)."""

    manifest = bundle.manifest
    config = bundle.source("pipeline.config")  # checked against the sha256 the manifest records
    if config is None:
        raise SchemeError(f"{bundle.folder}: the pipeline.config the SSD TFLite was built from is not available",
                          hint="run 'edgezoo export' again so the source is in the cache")
    cfg = load_pipeline_config(config)
    card = bundle.card()
    notes: list[str] = []
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    params = recipe.get("params") if isinstance(recipe.get("params"), dict) else {}
    # The manifest is not covered by its own sha256: its options are parsed and range-checked like --param values.
    known = {spec.name for spec in ssd_mobilenet.TFLITE_PARAMS}
    params = validate_params(ssd_mobilenet.TFLITE_PARAMS, {k: v for k, v in params.items() if k in known},
                             f"{bundle.folder / 'manifest.json'}: recipe.params")
    opts = ssd_mobilenet.resolve_options(params, cfg, notes)
    work = Path(dest).parent / "ssd-int8"
    work.mkdir(exist_ok=True)
    model, _ = ssd_mobilenet.build_tflite(pb, cfg, opts, card, work, notes, representative=representative)
    return Path(model).replace(dest)
