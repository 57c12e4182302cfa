"""`tflite-int8`: TensorFlow's full-integer post-training quantization of a TFLite bundle's source graph.

A .tflite cannot be re-quantized by the converter: it starts again from the frozen graph the bundle was made from
(manifest.json "original"), with the .tflite's own input and output names and shapes, so the int8 model computes
what the float bundle computes. TFLite_Detection_PostProcess bundles are built by graph surgery, not by this
conversion: the recipe that made them makes them again with calibration frames (Recipe.calibrated: the surgery
redone from the same sources and options; TFLite_Detection_PostProcess stays float on the dequantized heads).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.bundle.reader import Bundle
from edgezoo.graphs import tflite_model
from edgezoo.graphs.convert import frozen_graph_to_tflite
from edgezoo.quantize.schemes import SchemeError
from edgezoo.recipes import get_recipe
from edgezoo.recipes.base import RecipeInput
from edgezoo.ssd import ssd_surgery
from edgezoo.zoo.schema import ModelFormat, Target


def source_graph(bundle: Bundle) -> Path:
    """The frozen graph a TFLite bundle was converted from (manifest "original"), checked against the sha256 its
    manifest records for that source (bundle.reader.Bundle.original)."""
    original = bundle.manifest.get("original")
    if not original or ModelFormat.of(str(original)) is not ModelFormat.TF:
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
        return _recipe_int8(bundle, representative, dest)
    interp = tflite_model.load_interpreter(model, default_delegates=False)
    ins, outs = tflite_model.inputs(interp), tflite_model.outputs(interp)
    shapes = {i.name: [d if d is not None else 1 for d in i.shape] for i in ins}
    return frozen_graph_to_tflite(pb, shapes, [o.name for o in outs], dest, representative=representative)


def _recipe_int8(bundle: Bundle, representative: Any, dest: Path) -> Path:
    """The bundle's recipe makes its model again with calibration (same sources and options, from the manifest;
    each source checked against the sha256 the manifest records)."""
    manifest = bundle.manifest
    entry = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    name = str(entry.get("name"))
    recipe = get_recipe(name)
    if recipe.calibrated is None:
        raise SchemeError(f"{bundle}: recipe {name} cannot make its model again with calibration",
                          hint="use --scheme onnx-qdq or tidl-preview on the ONNX bundle")
    sources = bundle.sources()

    def gone(file: str, member: str | None) -> Path:
        raise SchemeError(f"{bundle}: {file}{'::' + member if member else ''}, a source the bundle was built from, "
                          "is not available", hint="run 'edgezoo export' again so the source is in the cache")

    declared = {p.name for p in recipe.params}  # the manifest also records what the recipe derived
    given = entry.get("params") if isinstance(entry.get("params"), dict) else {}
    params = {k: v for k, v in given.items() if k in declared}
    work = Path(dest).parent / "recipe-int8"
    work.mkdir(exist_ok=True)
    rin = RecipeInput(card=bundle.card(), target=Target.TFLITE, sources=sources,
                      params=recipe.validate(params, str(bundle.folder / "manifest.json")),
                      workdir=work, standin=bool(manifest.get("standin")), resolve_source=gone)
    return recipe.calibrated(rin, representative).replace(dest)
