"""`export --graph FILE`: a user's own frozen graph or ONNX model, converted, verified and bundled like a zoo model.

    export_graph(Path("my.pb"), {"images": [1, 160, 160, 3]}, ["head/scores"], "tflite")

.pb -> tflite: TFLiteConverter.from_frozen_graph; .pb -> onnx: tf2onnx (params: opset, default 13; nchw: true to
make image inputs NCHW as the MLPerf ONNX files are); .onnx -> onnx: inputs fixed to the given shapes, shapes
inferred, outputs cut (params: simplify). Every name is checked against the graph first (wrong names -> the closest
ones, exit 2, nothing written). Verification: tensor statistics (max/mean abs error, cosine, ...) of every output on
seeded random images, against the original file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.staging import BundleStaging, sha256_file
from edgezoo.bundle.config import GRAPH_TASKS, graph_config
from edgezoo.core.errors import ModelFileError, RecipeError, tensor_not_found
from edgezoo.datasets.images import random_images
from edgezoo.graphs import base_name, convert, onnx_model, own_outputs, tf_graph
from edgezoo.export.api import ExportResult, _now, publish_bundle
from edgezoo.recipes.base import RecipeOutput
from edgezoo.recipes.classification import convert_frozen_graph
from edgezoo.recipes.params import ParamSpec, ParamType, check_shapes, validate_params
from edgezoo.verify import tolerances as tol_names
from edgezoo.verify.engine import verify_models
from edgezoo.zoo.schema import Target

DEFAULT_OPSET = 13
# tf2onnx 1.17 converts to ONNX opsets up to 18; below 9 it lacks the ops image models need.
OPSETS = (9, 18)
# What a user may state so that config.yaml can be in TI's schema (bundle_config.graph_config; nothing is guessed).
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
# The parameters of each route (source suffix, target), validated before any work like a recipe's.
ROUTE_PARAMS: dict[tuple[str, Target], tuple[ParamSpec, ...]] = {
    (".pb", Target.TFLITE): CONFIG_PARAMS,
    (".pb", Target.ONNX): (
        *CONFIG_PARAMS,
        ParamSpec("opset", ParamType.INT, "ONNX opset tf2onnx converts to", default=DEFAULT_OPSET, low=OPSETS[0],
                  high=OPSETS[1], why_high="the highest opset tf2onnx 1.17 converts to"),
        ParamSpec("nchw", ParamType.BOOL, "make image inputs NCHW, as the MLPerf ONNX files are", default=False),
    ),
    (".onnx", Target.ONNX): (
        *CONFIG_PARAMS,
        ParamSpec("simplify", ParamType.BOOL, "run onnxslim on the cut model", default=False),
    ),
}
VERIFY_IMAGES = 4
VERIFY_SEED = 0


def _check_names(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str]) -> None:
    """Every input is a graph input and every output a tensor of the graph (TensorNameError with suggestions)."""
    if path.suffix == ".pb":
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


def _fix_inputs(model: Any, inputs: Mapping[str, Sequence[int]]) -> Any:
    """Every named ONNX input gets the given static shape (TIDL needs static shapes)."""
    out = type(model)()
    out.CopyFrom(model)
    for inp in onnx_model.graph_inputs(out):
        shape = inputs.get(inp.name)
        shape = inputs.get(inp.name.removesuffix(":0")) if shape is None else shape
        if shape is None:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise RecipeError(f"input {inp.name} has rank {len(dims)}, --inputs gives {list(shape)}")
        for d, v in zip(dims, shape):
            d.Clear()
            d.dim_value = int(v)
    del out.graph.value_info[:]
    return onnx_model.infer_shapes(out)


def _convert(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], target: Target,
             params: Mapping[str, Any], workdir: Path) -> tuple[Path, list[str]]:
    notes: list[str] = []
    if path.suffix == ".pb" and target is Target.TFLITE:
        model = convert_frozen_graph(path, inputs, outputs, workdir / "model.tflite")
        notes.append("converted with TFLiteConverter.from_frozen_graph")
    elif path.suffix == ".pb":
        opset = params["opset"]
        nchw = list(inputs) if params["nchw"] else []
        model = convert.frozen_graph_to_onnx(path, list(inputs), outputs, workdir / "model.onnx", opset=opset,
                                             inputs_as_nchw=nchw, input_shapes=inputs)
        notes.append(f"converted with tf2onnx (opset {opset}{', NCHW inputs' if nchw else ''})")
    else:  # .onnx -> onnx (the other pairing is refused before any work)

        fixed = _fix_inputs(onnx_model.load(path), inputs)
        cut = convert.onnx_fix_and_cut(fixed, batch=None, outputs=outputs, where=str(path))
        if params["simplify"]:
            cut = convert.onnx_simplify(cut)
            notes.append("simplified with onnxslim")
        model = onnx_model.save(cut, workdir / "model.onnx")
        notes.append("inputs fixed to the given shapes, shapes inferred, outputs cut")
    return model, notes


def export_graph(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], target: Target | str, *,
                 out_dir: Path = Path("out"), tolerances: Mapping[str, float] | None = None,
                 params: Mapping[str, Any] | None = None, ti_package: bool = False) -> ExportResult:
    """Convert, verify and bundle a user's own model into <out_dir>/<file stem>/<target>/."""

    path, target = Path(path), Target(target)
    if path.suffix not in (".pb", ".onnx"):
        raise ModelFileError(f"{path}: --graph takes a frozen graph (.pb) or an ONNX model (.onnx)",
                             hint="TFLite models are already a target format: use 'edgezoo check' / 'verify'")
    if not outputs:
        raise RecipeError("--outputs is empty", hint="name the tensors the exported model should end at")
    # Options first: nothing is loaded, converted or written with a value that is invalid.
    if path.suffix == ".onnx" and target is Target.TFLITE:
        raise RecipeError(f"{path}: ONNX -> TFLite is not supported", hint="export ONNX models with --to onnx")
    params = validate_params(ROUTE_PARAMS[(path.suffix, target)], dict(params or {}),
                             f"--graph {path.suffix} -> {target.value}", lambda n: f"--param {n}")
    inputs = check_shapes(inputs, "--inputs")
    tol_names.check_names(tolerances or {}, "tensors")
    tol_names.check_values(tolerances or {})
    _check_names(path, inputs, outputs)
    model_id = path.stem
    nchw = (path.suffix == ".onnx" and _nchw(inputs)) or (path.suffix == ".pb" and bool(params.get("nchw")))
    layout = "NCHW" if nchw else "NHWC"
    config, reasons = graph_config(target, model_id, inputs, layout, params)  # bad --param values: before any work
    final = Path(out_dir) / model_id / target.value
    started, t0 = _now(), time.monotonic()
    with BundleStaging(final) as staging, own_outputs(staging.workdir):
        model, notes = _convert(path, inputs, outputs, target, params, staging.workdir)
        report = verify_models(path, model, task="tensors", tolerances=tolerances,
                               images=random_images(VERIFY_IMAGES, seed=VERIFY_SEED))
        report.notes.append(f"verified on {VERIFY_IMAGES} seeded random images (seed {VERIFY_SEED}), "
                            "resized directly to the input size and scaled to [-1, 1]")
        if reasons:
            notes.append("config.yaml cannot be in TI's config schema (written as task_type: tensors, which TI's "
                         "tools refuse rather than misread): " + "; ".join(reasons))
        output = RecipeOutput(model=model, verify=report, cut=list(outputs), cut_reason="--outputs",
                              params={"inputs": dict(inputs), "outputs": list(outputs), **params}, original=path,
                              notes=notes)
        manifest = {
            "recipe": {"name": f"generic-{path.suffix[1:]}-to-{target.value}", "params": output.params},
            "model": {"id": model_id, "title": path.name, "task": "tensors", "card": None},
            "sources": [{"file": path.name, "path": str(path.resolve()), "size": path.stat().st_size,
                         "sha256": sha256_file(path), "source": "user", "standin": False}],
        }
        result = publish_bundle(staging, final, model_id, target, output, config, manifest,
                                False, None, started, ti_package=ti_package)
    result.seconds = time.monotonic() - t0
    return result


def _nchw(inputs: Mapping[str, Sequence[int]]) -> bool:
    first = next(iter(inputs.values()))
    return len(first) == 4 and first[1] == 3 and first[3] != 3
