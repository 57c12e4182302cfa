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

from edgezoo import zoo
from edgezoo.detection.pipeline_config import load_pipeline_config
from edgezoo.graphs import tflite_model
from edgezoo.graphs.convert import frozen_graph_to_tflite
from edgezoo.quantize.schemes import SchemeError
from edgezoo.recipes import ssd_mobilenet
from edgezoo.ssd import ssd_surgery


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
    def representative():
        for x in inputs:
            yield [x.astype(np.float32)]

    pb = source_graph(bundle, manifest)
    if ssd_surgery.read_postprocess_ops(model):
        return _ssd_int8(bundle, pb, manifest, representative, dest)
    interp = tflite_model.load_interpreter(model, default_delegates=False)
    ins, outs = tflite_model.inputs(interp), tflite_model.outputs(interp)
    shapes = {i.name: [d if d is not None else 1 for d in i.shape] for i in ins}
    return frozen_graph_to_tflite(pb, shapes, [o.name for o in outs], dest, representative=representative)


def _ssd_int8(bundle: Path, pb: Path, manifest: dict, representative: Any, dest: Path) -> Path:
    """The SSD recipe's surgery again (same pipeline.config, same TFLite_Detection_PostProcess options from the
    manifest), converted with calibration: int8 backbone and heads, the post-processing op float on their
    dequantized outputs (checked against the options as the recipe checks it)."""
    config = next((Path(s["path"]) for s in manifest.get("sources", [])
                   if str(s.get("file", "")).endswith("pipeline.config")), None)
    if config is None or not config.is_file():
        raise SchemeError(f"{bundle}: the pipeline.config the SSD TFLite was built from is not available",
                          hint="run 'edgezoo export' again so the source is in the cache")
    cfg = load_pipeline_config(config)
    card = zoo.get_card(str(manifest["model"]["id"]))
    notes: list[str] = []
    opts = ssd_mobilenet.resolve_options(manifest.get("recipe", {}).get("params", {}), cfg, notes)
    work = Path(dest).parent / "ssd-int8"
    work.mkdir(exist_ok=True)
    model, _ = ssd_mobilenet.build_tflite(pb, cfg, opts, card, work, notes, representative=representative)
    return Path(model).replace(dest)
