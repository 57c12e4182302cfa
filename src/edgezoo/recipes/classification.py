"""Classification recipes: the classic ResNet50 and MobileNet v1 conversions, each verified against its original.

- `frozen-graph-to-tflite`: TFLiteConverter.from_frozen_graph with the card's inputs/outputs (ResNet50: cut at
  resnet_model/dense/BiasAdd, dropping the softmax/ArgMax tail TIDL cannot run). Verified against the frozen graph
  (the original's logits tensor vs the TFLite's output, plus top-1/top-5 through the label offset).
- `onnx-fix-and-cut`: batch fixed to `batch`, shapes inferred, outputs cut to `outputs` or, with `cut: auto`, to what
  `edgezoo check --target tidl` proposes; `simplify: true` runs onnxslim and keeps the simplified model only when it
  still passes verification against the published ONNX (else the plain one, with a note). `source: FILE` picks
  another of the card's ONNX files (ResNet50: the opset-8 resnet50_v1.onnx instead of the opset-11 one).
- `published-tflite`: the published .tflite as is, verified against the published frozen graph.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import convert, onnx_model, tf_graph, tflite_model
from edgezoo.graphs.convert import onnx_fix_and_cut, onnx_simplify
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import ParamSpec, ParamType
from edgezoo.tidl.check import check_model
from edgezoo.verify.engine import KNOWN_TOLERANCES, verify_models
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import FormatSpec, ModelCard, ModelFormat


def _card(rin: RecipeInput) -> ModelCard:
    if rin.card is None:
        raise RecipeError("this recipe needs a model card", hint="use 'edgezoo export --graph' for your own model")
    return rin.card


def _source(rin: RecipeInput, fmt: ModelFormat) -> tuple[Path, FormatSpec]:
    spec = _card(rin).format(fmt)
    return rin.source(spec.file, spec.member), spec


def verify(original: Path, converted: Path, rin: RecipeInput, **kwargs: Any) -> ParityReport:
    """The engine's parity check with the card's preprocessing, roles, label offset and the effective tolerances."""
    return verify_models(original, converted, card=rin.card, tolerances=_known_tolerances(rin.tolerances),
                         standin=rin.standin, **kwargs)


def _known_tolerances(tolerances: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in tolerances.items() if k in KNOWN_TOLERANCES}


# The parameters each recipe takes (validated before any work; see recipes/params.py).
OUTPUTS = ParamSpec("outputs", ParamType.TENSOR_NAMES, "tensors the converted model ends at (a cut)",
                    default_text="the card's outputs")
TFLITE_PARAMS = (
    ParamSpec("inputs", ParamType.INPUT_SHAPES, "input tensor -> the static shape the TFLite model takes",
              default_text="the card's inputs, dynamic dimensions set to 1"),
    OUTPUTS,
)
PUBLISHED_PARAMS = (
    ParamSpec("reference_format", ParamType.CHOICE, "the published model the TFLite file is verified against",
              default="tf", choices=("tf", "onnx")),
)
# 1024 x 3x224x224 float32 is 617 MB: what one verification input of that batch already costs.
MAX_BATCH = 1024
ONNX_PARAMS = (
    ParamSpec("batch", ParamType.INT, "batch size the ONNX input is fixed to (none: keep it dynamic)", default=1,
              low=1, high=MAX_BATCH, nullable=True,
              why_high="verification feeds inputs of that batch: 1024 x 3x224x224 float32 is already 617 MB"),
    ParamSpec("cut", ParamType.CHOICE, "auto: cut where 'edgezoo check --target tidl' proposes", choices=("auto",),
              nullable=True, default_text="none (keep the outputs, or cut at 'outputs')"),
    OUTPUTS,
    ParamSpec("simplify", ParamType.BOOL, "run onnxslim; kept only when parity still holds", default=False),
    ParamSpec("source", ParamType.TEXT, "another of the card's ONNX files to start from (e.g. the opset-8 one)",
              default_text="the card's onnx format file"),
)


def _input_shapes(params: Mapping[str, Any], spec: FormatSpec) -> dict[str, list[int]]:
    """`inputs: {name: shape}` from the (validated) params, else the format's inputs with dynamic dims set to 1."""
    given = params.get("inputs")
    if given is not None:
        return dict(given)
    return {t.name: [d if isinstance(d, int) and d > 0 else 1 for d in t.shape] for t in spec.inputs}


# ---------------------------------------------------------------------------------------------------- TFLite
def convert_frozen_graph(pb: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], dest: Path) -> Path:
    """from_frozen_graph after checking every name against the graph (wrong names -> the closest ones)."""
    graph_def = tf_graph.load_graph_def(pb)
    for name in inputs:
        tf_graph.resolve_tensor(graph_def, name, str(pb), "input")
    for name in outputs:
        tf_graph.resolve_tensor(graph_def, name, str(pb), "output")
    return convert.frozen_graph_to_tflite(pb, inputs, outputs, dest)


@register("frozen-graph-to-tflite", params=TFLITE_PARAMS,
          summary="the card's frozen graph -> TFLite (from_frozen_graph), cut at the card's outputs, verified")
def frozen_graph_to_tflite(rin: RecipeInput) -> RecipeOutput:
    pb, spec = _source(rin, ModelFormat.TF)
    inputs = _input_shapes(rin.params, spec)
    given = rin.params.get("outputs")
    outputs = list(given) if given is not None else [t.name for t in spec.outputs]
    model = convert_frozen_graph(pb, inputs, outputs, rin.workdir / "model.tflite")
    report = verify(pb, model, rin)
    return RecipeOutput(model=model, verify=report, cut=outputs, cut_reason="card" if "outputs" in rin.params else "",
                        params={"inputs": inputs, "outputs": outputs}, original=pb,
                        notes=[f"converted with TFLiteConverter.from_frozen_graph, outputs {', '.join(outputs)}"])


def tflite_tensor_named(path: Path, name: str, shape: Sequence[int]) -> str | None:
    """The TFLite tensor of `shape` that carries TF tensor `name` ('a/b', 'a/b1', or 'x;a/b;y' after op fusion).

    The shape filter matters: the converter also names constants after the op that used them (the squeeze's [2]
    shape tensor is called 'MobilenetV1/Logits/SpatialSqueeze', the activation 'MobilenetV1/Logits/SpatialSqueeze1').
    """
    interp = tflite_model.load_interpreter(path)
    for detail in interp.get_tensor_details():
        parts = detail["name"].split(";")
        named = any(p == name or (p.startswith(name) and p[len(name):].isdigit()) for p in parts)
        if named and [int(d) for d in detail["shape"]] == [int(d) for d in shape]:
            return detail["name"]
    return None


@register("published-tflite", params=PUBLISHED_PARAMS,
          summary="the card's published TFLite, used as is and verified against the original")
def published_tflite(rin: RecipeInput) -> RecipeOutput:
    tflite, tspec = _source(rin, ModelFormat.TFLITE)
    reference = ModelFormat(rin.params["reference_format"])
    original, rspec = _source(rin, reference)
    model = rin.workdir / "model.tflite"
    shutil.copyfile(tflite, model)
    outputs = [t.name for t in tspec.outputs]
    notes = [f"the published {tspec.member or tspec.file}, unchanged; verified against the published "
             f"{reference.value} model"]
    report = verify(original, model, rin)
    logits = rspec.internal.get("logits")
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in tspec.outputs[0].shape]
    inner = tflite_tensor_named(model, logits, shape) if logits else None
    if inner:
        _add_logits_figures(report, original, model, logits, inner, rin)
    return RecipeOutput(model=model, verify=report, cut=outputs, cut_reason="published as is", original=original,
                        params={"reference_format": reference.value}, notes=notes)


def _add_logits_figures(report: ParityReport, original: Path, model: Path, logits: str, inner: str,
                        rin: RecipeInput) -> None:
    """The logits inside the published TFLite vs the original's, as figures without a check.

    Softmax squashes logit errors, so the probabilities alone hide how close the two really are; but the card's
    tolerances are for the published outputs (probabilities), so the logits are reported, not judged.
    """
    extra = verify(original, model, rin, converted_outputs=[inner], pairs={logits: inner})
    stats = extra.metrics.get("outputs", {}).get(inner)
    if stats:
        report.metrics.setdefault("informational", {})[f"logits {logits}"] = stats
        report.notes.append(f"logits (inside the TFLite as {inner!r}, not checked): max abs error "
                            f"{stats['max_abs_error']:.3g}, cosine {stats['cosine']:.7f}")


# ---------------------------------------------------------------------------------------------------- ONNX
def auto_cut(model_path: Path) -> tuple[list[str], str, str]:
    """The cut `edgezoo check --target tidl` proposes: (output tensors, reason, note); no tensors when the whole graph
    runs on TIDL."""
    result = check_model(model_path)
    if result.whole_graph or not result.cut:
        return [], "check --target tidl", "check --target tidl: the whole graph runs on TIDL, nothing cut"
    ops = sorted({f.op for f in result.unsupported})
    note = "check --target tidl: " + (f"ops TIDL cannot run: {', '.join(ops)}" if ops else "cut proposed")
    return list(result.cut), "check --target tidl", note


def _fixed_and_cut(original: Any, params: Mapping[str, Any], simplify: bool, workdir: Path,
                   tag: str) -> tuple[Path, list[str], str, list[str]]:
    """One candidate: batch fixed (+ simplified) + cut. Returns (path, cut, reason, notes)."""
    notes: list[str] = []
    model = onnx_fix_and_cut(original, batch=params.get("batch"), outputs=None, where="original")
    if simplify:
        model = onnx_simplify(model)
    cut_param = params.get("cut")
    if params.get("outputs") is not None:
        outputs, reason = list(params["outputs"]), "card"
    elif cut_param == "auto":
        probe = onnx_model.save(model, workdir / f"{tag}-uncut.onnx")
        outputs, reason, note = auto_cut(probe)
        notes.append(note)
    else:
        outputs, reason = [], ""
    current = onnx_model.output_names(model)
    if outputs and outputs != current:
        model = onnx_fix_and_cut(model, batch=None, outputs=outputs, where="model")
        notes.append(f"outputs cut from {', '.join(current)} to {', '.join(outputs)} ({reason})")
    elif reason:
        notes.append(f"no cut needed ({reason}): outputs stay {', '.join(current)}")
    outputs = onnx_model.output_names(model)
    path = onnx_model.save(model, workdir / f"{tag}.onnx")
    return path, outputs, reason, notes


@register("onnx-fix-and-cut", params=ONNX_PARAMS,
          summary="the card's ONNX, batch fixed and cut at the card's outputs (onnxslim optional), verified")
def onnx_fix_and_cut_recipe(rin: RecipeInput) -> RecipeOutput:
    if rin.params.get("source") is not None:
        # Another published ONNX of the same model (e.g. ResNet50's opset-8 file): --param source=resnet50_v1.onnx
        src = rin.source(rin.params["source"])
    else:
        src, _ = _source(rin, ModelFormat.ONNX)
    original = onnx_model.load(src)
    simplify = rin.params["simplify"]
    plain_notes: list[str] = []
    if simplify:
        path, cut, reason, notes = _fixed_and_cut(original, rin.params, True, rin.workdir, "simplified")
        report = verify(src, path, rin)
        if report.passed:
            return _onnx_output(path, report, cut, reason, notes + ["simplified with onnxslim (parity kept)"], rin, src)
        plain_notes.append("onnxslim result dropped: it failed verification (" + report.failure_summary() + ")")
    path, cut, reason, notes = _fixed_and_cut(original, rin.params, False, rin.workdir, "fixed")
    report = verify(src, path, rin)
    return _onnx_output(path, report, cut, reason, notes + plain_notes, rin, src)


def _onnx_output(path: Path, report: ParityReport, cut: list[str], reason: str, notes: list[str], rin: RecipeInput,
                 src: Path) -> RecipeOutput:
    simplified = any(n.startswith("simplified") for n in notes)
    params = {"batch": rin.params.get("batch"), "simplified": simplified}
    if rin.params.get("cut") is not None:
        params["cut"] = rin.params.get("cut")
    return RecipeOutput(model=path, verify=report, cut=cut, cut_reason=reason, params=params, original=src,
                        notes=notes)
