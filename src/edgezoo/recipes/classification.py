"""Classification recipes: the seed's ResNet50 and MobileNet v1 conversions, each verified against its original.

- `frozen-graph-to-tflite`: TFLiteConverter.from_frozen_graph with the card's inputs/outputs (ResNet50: cut at
  resnet_model/dense/BiasAdd, dropping the softmax/ArgMax tail TIDL cannot run). Verified against the frozen graph
  (the original's logits tensor vs the TFLite's output, plus top-1/top-5 through the label offset).
- `onnx-fix-and-cut`: batch fixed to `batch`, shapes inferred, outputs cut to `outputs` or, with `cut: auto`, to what
  `edgezoo check --target tidl` proposes; `simplify: true` runs onnxslim and keeps the simplified model only when it
  still passes verification against the published ONNX.
- `published-tflite`: the published .tflite as is, verified against the published frozen graph.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.errors import RecipeError
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
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
    from edgezoo.verify.engine import verify_models

    return verify_models(original, converted, card=rin.card, tolerances=_known_tolerances(rin.tolerances),
                         standin=rin.standin, **kwargs)


def _known_tolerances(tolerances: Mapping[str, float]) -> dict[str, float]:
    from edgezoo.verify.engine import KNOWN_TOLERANCES

    return {k: v for k, v in tolerances.items() if k in KNOWN_TOLERANCES}


def _input_shapes(params: Mapping[str, Any], spec: FormatSpec) -> dict[str, list[int]]:
    """`inputs: {name: shape}` from the params, else the format's inputs with dynamic dims set to 1."""
    given = params.get("inputs")
    if given:
        if not isinstance(given, Mapping):
            raise RecipeError(f"params.inputs must map input names to shapes, got {given!r}")
        return {str(k): [int(d) for d in v] for k, v in given.items()}
    return {t.name: [d if isinstance(d, int) and d > 0 else 1 for d in t.shape] for t in spec.inputs}


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RecipeError(f"params.{what} must be a list of tensor names, got {value!r}")


# ---------------------------------------------------------------------------------------------------- TFLite
def convert_frozen_graph(pb: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], dest: Path) -> Path:
    """from_frozen_graph after checking every name against the graph (wrong names -> the closest ones)."""
    from edgezoo.convert import frozen_graph_to_tflite
    from edgezoo.graphs import tf_graph

    graph_def = tf_graph.load_graph_def(pb)
    for name in inputs:
        tf_graph.resolve_tensor(graph_def, name, str(pb), "input")
    for name in outputs:
        tf_graph.resolve_tensor(graph_def, name, str(pb), "output")
    return frozen_graph_to_tflite(pb, inputs, outputs, dest)


@register("frozen-graph-to-tflite")
def frozen_graph_to_tflite(rin: RecipeInput) -> RecipeOutput:
    pb, spec = _source(rin, ModelFormat.TF)
    inputs = _input_shapes(rin.params, spec)
    outputs = _names(rin.params.get("outputs") or [t.name for t in spec.outputs], "outputs")
    model = convert_frozen_graph(pb, inputs, outputs, rin.workdir / "model.tflite")
    report = verify(pb, model, rin)
    return RecipeOutput(model=model, verify=report, cut=outputs, cut_reason="card" if "outputs" in rin.params else "",
                        params={"inputs": inputs, "outputs": outputs}, original=pb,
                        notes=[f"converted with TFLiteConverter.from_frozen_graph, outputs {', '.join(outputs)}"])


@register("published-tflite")
def published_tflite(rin: RecipeInput) -> RecipeOutput:
    tflite, tspec = _source(rin, ModelFormat.TFLITE)
    reference = ModelFormat(str(rin.params.get("reference_format", "tf")))
    original, _ = _source(rin, reference)
    model = rin.workdir / "model.tflite"
    shutil.copyfile(tflite, model)
    report = verify(original, model, rin)
    outputs = [t.name for t in tspec.outputs]
    return RecipeOutput(model=model, verify=report, cut=outputs, cut_reason="published as is", original=original,
                        params={"reference_format": reference.value},
                        notes=[f"the published {tspec.member or tspec.file}, unchanged; verified against the "
                               f"published {reference.value} model"])


# ---------------------------------------------------------------------------------------------------- ONNX
def auto_cut(model_path: Path) -> tuple[list[str], str]:
    """The cut `edgezoo check --target tidl` proposes: (output tensors, why)."""
    from edgezoo.tidl import check_model  # the engine's TIDL op check

    result = check_model(model_path)
    cut = list(result.proposed_cut or [])
    reason = "check --target tidl"
    unsupported = sorted({f.op for f in getattr(result, "findings", []) if not getattr(f, "supported", True)})
    if unsupported:
        reason += " (not runnable on TIDL: " + ", ".join(unsupported) + ")"
    return cut, reason


def _fixed_and_cut(original: Any, params: Mapping[str, Any], simplify: bool, workdir: Path,
                   tag: str) -> tuple[Path, list[str], str, list[str]]:
    """One candidate: batch fixed (+ simplified) + cut. Returns (path, cut, reason, notes)."""
    from edgezoo.convert import onnx_fix_and_cut, onnx_simplify
    from edgezoo.graphs import onnx_model

    notes: list[str] = []
    batch = params.get("batch", 1)
    model = onnx_fix_and_cut(original, batch=None if batch in (None, "none") else int(batch), outputs=None,
                             where="original")
    if simplify:
        model = onnx_simplify(model)
    cut_param = params.get("cut")
    if params.get("outputs"):
        outputs, reason = _names(params["outputs"], "outputs"), "card"
    elif cut_param == "auto":
        probe = onnx_model.save(model, workdir / f"{tag}-uncut.onnx")
        outputs, reason = auto_cut(probe)
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


@register("onnx-fix-and-cut")
def onnx_fix_and_cut_recipe(rin: RecipeInput) -> RecipeOutput:
    from edgezoo.graphs import onnx_model

    src, _ = _source(rin, ModelFormat.ONNX)
    original = onnx_model.load(src)
    simplify = bool(rin.params.get("simplify", False))
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
    params = {"batch": rin.params.get("batch", 1), "simplified": simplified}
    if rin.params.get("cut") is not None:
        params["cut"] = rin.params.get("cut")
    return RecipeOutput(model=path, verify=report, cut=cut, cut_reason=reason, params=params, original=src,
                        notes=notes)
