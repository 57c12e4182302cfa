"""Recipes for a user's own model (`export --graph FILE --inputs ... --outputs ...`), one per source suffix and target.

    generic-pb-to-tflite    TFLiteConverter.from_frozen_graph
    generic-pb-to-onnx      tf2onnx (opset, default 13; nchw: true makes image inputs NCHW as the MLPerf ONNX are)
    generic-onnx-to-onnx    inputs fixed to the given shapes, shapes inferred, outputs cut (simplify: onnxslim)

The source is `RecipeInput.sources[GRAPH]`. Every name is checked against the graph before the conversion (wrong names
-> the closest ones, exit 2). Verification: tensor statistics (max/mean abs error, cosine, ...) of every output on
seeded random images, against the original file. config.yaml is in TI's schema when the user states what the model
is and its normalisation (CONFIG_PARAMS); otherwise it says it cannot be, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.config import GRAPH_TASKS, graph_config
from edgezoo.core.errors import RecipeError, tensor_not_found
from edgezoo.datasets.images import random_images
from edgezoo.graphs import base_name, convert, onnx_model, tf_graph
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.classification import convert_frozen_graph
from edgezoo.recipes.params import ParamSpec, ParamType
from edgezoo.verify.engine import verify_models
from edgezoo.zoo.schema import ModelFormat, Target

GRAPH = "graph"  # the source's key in RecipeInput.sources
DEFAULT_OPSET = 13
# tf2onnx 1.17 converts to ONNX opsets up to 18; below 9 it lacks the ops image models need.
OPSETS = (9, 18)
VERIFY_IMAGES = 4
VERIFY_SEED = 0

INPUTS = ParamSpec("inputs", ParamType.INPUT_SHAPES, "input names and static shapes (--inputs NAME:1x224x224x3)")
OUTPUTS = ParamSpec("outputs", ParamType.TENSOR_NAMES, "the tensors the exported model ends at (--outputs NAME,...)")
# What a user may state so that config.yaml can be in TI's schema (bundle.config.graph_config; nothing is guessed).
CONFIG_PARAMS = (
    ParamSpec("task_type", ParamType.CHOICE, "what the model is, for config.yaml (TI's task_type)",
              choices=GRAPH_TASKS),
    ParamSpec("input_mean", ParamType.NUMBERS, "per-channel mean subtracted from the pixels: a number or [R, G, B]"),
    ParamSpec("input_scale", ParamType.NUMBERS, "per-channel scale after the mean, x' = (x - mean) * scale",
              low=0, low_open=True),
    ParamSpec("resize", ParamType.SIZE, "resize before the crop (default: the input's height and width)", low=1,
              high=16384),
    ParamSpec("crop", ParamType.SIZE, "centre crop (default: the input's height and width)", low=1, high=16384),
    ParamSpec("reverse_channels", ParamType.BOOL, "feed BGR instead of RGB"),
)
OPSET = ParamSpec("opset", ParamType.INT, "ONNX opset tf2onnx converts to", default=DEFAULT_OPSET, low=OPSETS[0],
                  high=OPSETS[1], why_high="the highest opset tf2onnx 1.17 converts to")
NCHW = ParamSpec("nchw", ParamType.BOOL, "make image inputs NCHW, as the MLPerf ONNX files are", default=False)
SIMPLIFY = ParamSpec("simplify", ParamType.BOOL, "run onnxslim on the cut model", default=False)
# (source format, target) -> recipe name: the one place `export --graph` picks its recipe.
ROUTES: dict[tuple[ModelFormat, Target], str] = {
    (ModelFormat.TF, Target.TFLITE): "generic-pb-to-tflite",
    (ModelFormat.TF, Target.ONNX): "generic-pb-to-onnx",
    (ModelFormat.ONNX, Target.ONNX): "generic-onnx-to-onnx",
}


def check_names(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str]) -> None:
    """Every input is a graph input and every output a tensor of the graph (TensorNameError with suggestions)."""
    if ModelFormat.of(path) is ModelFormat.TF:
        graph_def = tf_graph.load_graph_def(path)
        placeholders = tf_graph.placeholders(graph_def)
        for name in inputs:
            if base_name(name) not in placeholders:
                raise tensor_not_found(name, placeholders, str(path), "input")
        for name in outputs:
            tf_graph.resolve_tensor(graph_def, name, str(path), "output")
    else:
        model = onnx_model.load(path)
        names = onnx_model.input_names(model)
        for name in inputs:
            if name not in names and f"{name}:0" not in names:
                raise tensor_not_found(name, names, str(path), "input")
        for name in outputs:
            onnx_model.resolve(model, name, str(path), "output")


def image_layout(source: ModelFormat, params: Mapping[str, Any]) -> str:
    """NCHW when the ONNX input looks channels-first or the user asked tf2onnx for it; else NHWC."""
    if source is ModelFormat.ONNX:
        first = next(iter(params["inputs"].values()))
        nchw = len(first) == 4 and first[1] == 3 and first[3] != 3
    else:
        nchw = bool(params.get("nchw"))
    return "NCHW" if nchw else "NHWC"


def _precheck(source: ModelFormat, target: Target) -> Any:
    def check(params: Mapping[str, Any]) -> None:
        for spec in (INPUTS, OUTPUTS):
            if spec.name not in params:
                raise RecipeError(f"--graph needs --{spec.name} ({spec.meaning})")
        graph_config(target, "model", params["inputs"], image_layout(source, params), params)  # bad values: now

    return check


def _convert(path: Path, params: Mapping[str, Any], target: Target, workdir: Path) -> tuple[Path, list[str]]:
    inputs, outputs = params["inputs"], params["outputs"]
    if ModelFormat.of(path) is ModelFormat.TF and target is Target.TFLITE:
        return (convert_frozen_graph(path, inputs, outputs, workdir / "model.tflite"),
                ["converted with TFLiteConverter.from_frozen_graph"])
    if ModelFormat.of(path) is ModelFormat.TF:
        opset = params["opset"]
        nchw = list(inputs) if params["nchw"] else []
        model = convert.frozen_graph_to_onnx(path, list(inputs), outputs, workdir / "model.onnx", opset=opset,
                                             inputs_as_nchw=nchw, input_shapes=inputs)
        return model, [f"converted with tf2onnx (opset {opset}{', NCHW inputs' if nchw else ''})"]
    fixed = onnx_model.fix_input_shapes(onnx_model.load(path), inputs)
    cut = convert.onnx_fix_and_cut(fixed, batch=None, outputs=outputs, where=str(path))
    notes = []
    if params["simplify"]:
        cut = convert.onnx_simplify(cut)
        notes.append("simplified with onnxslim")
    notes.append("inputs fixed to the given shapes, shapes inferred, outputs cut")
    return onnx_model.save(cut, workdir / "model.onnx"), notes


def generic(rin: RecipeInput) -> RecipeOutput:
    """Convert the user's model, verify it on seeded random images, and say whether config.yaml is TI's."""
    path = rin.source(GRAPH)
    params = rin.params
    check_names(path, params["inputs"], params["outputs"])
    model, notes = _convert(path, params, rin.target, rin.workdir)
    report = verify_models(path, model, task="tensors", tolerances=rin.tolerances,
                           images=random_images(VERIFY_IMAGES, seed=VERIFY_SEED))
    report.notes.append(f"verified on {VERIFY_IMAGES} seeded random images (seed {VERIFY_SEED}), "
                        "resized directly to the input size and scaled to [-1, 1]")
    config, reasons = graph_config(rin.target, path.stem, params["inputs"],
                                   image_layout(ModelFormat.of(path), params), params)
    if reasons:
        notes.append("config.yaml cannot be in TI's config schema (written as task_type: tensors, which TI's "
                     "tools refuse rather than misread): " + "; ".join(reasons))
    return RecipeOutput(model=model, verify=report, cut=list(params["outputs"]), cut_reason="--outputs",
                        config=config, original=path, notes=notes)


_EXTRA = {ModelFormat.TF: {Target.TFLITE: (), Target.ONNX: (OPSET, NCHW)}, ModelFormat.ONNX: {Target.ONNX: (SIMPLIFY,)}}
_SUMMARIES = {
    "generic-pb-to-tflite": "export --graph FILE.pb --to tflite: TFLiteConverter.from_frozen_graph, verified",
    "generic-pb-to-onnx": "export --graph FILE.pb --to onnx: tf2onnx, verified",
    "generic-onnx-to-onnx": "export --graph FILE.onnx --to onnx: static inputs, cut at --outputs, verified",
}
for (_source, _target), _name in ROUTES.items():
    register(_name, params=(INPUTS, OUTPUTS, *CONFIG_PARAMS, *_EXTRA[_source][_target]),
             precheck=_precheck(_source, _target), summary=_SUMMARIES[_name])(generic)
