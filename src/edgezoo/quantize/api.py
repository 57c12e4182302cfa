"""`quantize_bundle(...)`: a float bundle -> a quantized bundle next to it, with what the quantization costs.

    out/<model>/<scheme>/   model.tflite | model.onnx (tidl-preview: the float model TIDL imports, plus
                            tidl_preview.onnx, the simulation), runtime_options.yaml set for the scheme,
                            config.yaml (the float bundle's preprocessing), manifest.json, quantize.json

Every check (bundle kind, scheme, dataset kind, calibration images) runs before anything is written; the bundle is
staged and published atomically (edgezoo.bundle.staging.BundleStaging). With `max_drop`, a bundle whose measured drop is
larger goes to <scheme>.failed/ and never replaces a good one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo.bundle.config import MODEL_NAMES, with_runtime_options
from edgezoo.bundle.outputs import OutputKind, check_destination
from edgezoo.bundle.reader import Bundle, check_input_size, read_bundle
from edgezoo.bundle.staging import CONFIG, MANIFEST, RUNTIME_OPTIONS, BundleStaging, failed_dir
from edgezoo.core.errors import EdgezooError, disk_full, is_disk_full
from edgezoo.core.progress import step
from edgezoo.datasets import expect_kind, open_dataset
from edgezoo.distributed import check_ray_target
from edgezoo.evaluation.on_ray import ray_predictor
from edgezoo.graphs.runners import load_runner
from edgezoo.quantize.calibration import DEFAULT_FRAMES, load_calibration
from edgezoo.quantize.cost import Score, ScoringSet, model_subject, score
from edgezoo.quantize.onnx_layers import backbone_nodes, meta_arch_heads, quant_layers, tensor_ranges
from edgezoo.quantize.onnx_qdq import quantize_onnx_qdq
from edgezoo.quantize.schemes import SOURCE_TARGET, ScaleType, Scheme, SchemeError, runtime_options
from edgezoo.quantize.sensitivity import (LayerSensitivity, SixteenBitProposal, propose_16bit, rank_layers, save_model,
                                          sqnr_per_layer)
from edgezoo.quantize.tflite_int8 import quantize_tflite_int8
from edgezoo.quantize.tidl_preview import NOT_REPRODUCED, REPRODUCED, build_preview
from edgezoo.zoo.schema import ModelFormat, Target

REPORT = "quantize.json"
PREVIEW_MODEL = "tidl_preview.onnx"


class QuantizeError(EdgezooError):
    """A bundle cannot be quantized as asked."""


@dataclass
class QuantizeResult:
    model: str
    scheme: str
    scale_type: int
    bundle: Path
    frames: int
    calibration_seconds: float
    standin: bool
    scores: list[Score] = field(default_factory=list)
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    sixteen_bit: SixteenBitProposal | None = None
    max_drop: float | None = None
    passed: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def drop(self) -> float | None:
        """Float metric - quantized metric (positive = worse), of the artifact written."""
        deltas = [s.delta for s in self.scores[1:] if s.delta is not None]
        return round(-deltas[-1], 3) if deltas else None


def _check_kind(bundle: Path, model: Path, scheme: Scheme, manifest: dict[str, Any]) -> None:
    if manifest.get("quantization"):
        raise QuantizeError(f"{bundle}: is already a quantized bundle ({manifest['quantization'].get('scheme')})",
                            hint="quantize the float bundle it was made from")
    wanted = SOURCE_TARGET[scheme]
    if model.suffix.lower() != f".{wanted}":
        raise SchemeError(f"{bundle}: {scheme.value} quantizes {wanted} bundles, this one holds {model.name}",
                          hint=f"export the model with --to {wanted} and quantize that bundle")


def quantize_bundle(bundle: Path, calibration: Path, *, scheme: Scheme | str = Scheme.TIDL_PREVIEW,
                    frames: int = DEFAULT_FRAMES, out: Path | None = None, power_of_2: bool = False,
                    scale_type: ScaleType | int | None = None, dataset: Path | None = None,
                    count: int | None = None, max_drop: float | None = None, sensitivity: bool = False,
                    target_drop: float | None = None, ray: str | None = None,
                    ray_actors: int | None = None, allow_edited: bool = False) -> QuantizeResult:
    """Quantize a float bundle with `scheme`; measure the cost on `dataset` when given.

    `ray`: "auto" or HOST:PORT runs the inference of the measuring passes (float vs quantized, sensitivity probes,
    16-bit search) on Ray actors (edgezoo.distributed), same figures as locally; calibration stays local (one pass
    over a few frames). The float bundle is read and checked by edgezoo.bundle.reader (`allow_edited`: accept files
    that differ from its manifest)."""
    scheme = Scheme(scheme)
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise QuantizeError(f"{bundle}: not a bundle folder", hint="point at a folder written by 'edgezoo export'")
    source = read_bundle(bundle, allow_edited=allow_edited)
    config, model, manifest = source.config, source.model, source.manifest
    if not (source.folder / RUNTIME_OPTIONS).is_file():
        raise QuantizeError(f"{bundle}: no {RUNTIME_OPTIONS}", hint="export the bundle again")
    _check_kind(bundle, model, scheme, manifest)
    scale = _scale_type(scheme, power_of_2, scale_type)
    needs_data = sensitivity or target_drop is not None or max_drop is not None
    if needs_data and dataset is None:
        raise QuantizeError("--max-drop, --sensitivity and --target-drop measure accuracy: they need --dataset",
                            hint="pass --dataset DIR (it may be the calibration folder)")
    if (sensitivity or target_drop is not None) and scheme is not Scheme.TIDL_PREVIEW:
        raise QuantizeError(f"--sensitivity / --target-drop work on the TIDL preview, not on {scheme.value}",
                            hint="add --scheme tidl-preview")
    if ray is not None:
        if dataset is None:
            raise QuantizeError("--ray runs the --dataset passes on Ray: it needs --dataset",
                                hint="pass --dataset DIR, or drop --ray (calibration always runs here)")
        check_ray_target(ray)
    card = source.card()
    base_options, header = source.runtime_options, source.runtime_options_header
    data = None
    if dataset is not None:
        data = open_dataset(dataset, count=count)
        expect_kind(data, card.labels.dataset, str(bundle))
    final = (Path(out) / card.id if out is not None else bundle.parent) / scheme.value
    inputs = [p for p in (bundle, calibration, dataset) if p is not None]
    check_destination(final, OutputKind.BUNDLE, inputs)  # before calibrating
    preprocess = source.preprocess
    dtype = _input_dtype(source)
    calib = load_calibration(calibration, frames, preprocess.apply, dtype)
    result = QuantizeResult(card.id, scheme.value, int(scale), final, len(calib), 0.0, source.standin,
                            max_drop=max_drop)
    for note in source.notes:  # what allow_edited let through
        step(note)
        result.notes.append(note)
    try:
        with BundleStaging(final, inputs=inputs) as staging:
            t0 = time.perf_counter()
            artifact, preview, state = _quantize(scheme, source, calib.inputs, staging.workdir, scale, result)
            result.calibration_seconds = round(time.perf_counter() - t0, 3)
            if data is not None:
                with _predictor(ray, ray_actors) as predict:
                    _measure(result, source, artifact, preview, state, data, preprocess, dtype, calib.inputs,
                             staging.workdir, scale, sensitivity, target_drop, predict)
            names = result.sixteen_bit.names if result.sixteen_bit and result.sixteen_bit.reached else None
            header += f"# quantized: {scheme.value}, scale type {int(scale)}, {len(calib)} calibration frames\n"
            files = [staging.add_file(artifact, MODEL_NAMES[Target(ModelFormat.of(model).value)])]
            if preview is not None:
                files.append(staging.add_file(preview, PREVIEW_MODEL))
            options = runtime_options(base_options, scheme, scale, len(calib), names)
            files.append(staging.add_yaml(RUNTIME_OPTIONS, options, header=header, compact=False))
            # config.yaml stands alone for TI's loader: the float bundle's, with THESE options inline.
            files.append(staging.add_yaml(CONFIG, with_runtime_options(_without_inline_options(config), options),
                                          header=header))
            result.passed = max_drop is None or result.drop is None or result.drop <= max_drop
            dest = final if result.passed else failed_dir(final)
            result.bundle = dest
            staging.add_json(REPORT, result)
            staging.add_json(MANIFEST, {
                **manifest, "quantization": {"scheme": scheme.value, "scale_type": int(scale), "float_bundle":
                                             str(bundle), "calibration": str(calibration), "frames": len(calib),
                                             "files": [f.name for f in files]},
                "outputs": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files]})
            staging.commit(dest)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(exc, final.parent, "writing the quantized bundle") from None
        raise QuantizeError(f"{final}: cannot write the quantized bundle ({exc.strerror or exc})",
                            hint="choose a writable --out folder") from None
    return result


def _scale_type(scheme: Scheme, power_of_2: bool, scale_type: ScaleType | int | None) -> ScaleType:
    if scheme is Scheme.TFLITE_INT8:
        if power_of_2 or scale_type not in (None, ScaleType.TFLITE_PREQUANTIZED):
            raise QuantizeError("tflite-int8 has TensorFlow's own scales (TIDL scale type 3): --power-of-2 and "
                                "--scale-type do not apply", hint="drop them, or use --scheme onnx-qdq")
        return ScaleType.TFLITE_PREQUANTIZED
    if scheme is Scheme.ONNX_QDQ:
        if scale_type is not None:
            raise QuantizeError("onnx-qdq takes --power-of-2 (scale type 1) or not (type 4), not --scale-type",
                                hint="drop --scale-type")
        return ScaleType.POWER_OF_2 if power_of_2 else ScaleType.ASYMMETRIC_PER_CHANNEL
    if power_of_2 and scale_type not in (None, ScaleType.POWER_OF_2):
        raise QuantizeError("--power-of-2 and --scale-type disagree", hint="give one of them")
    chosen = ScaleType.POWER_OF_2 if power_of_2 else ScaleType(scale_type if scale_type is not None else 0)
    if chosen is ScaleType.TFLITE_PREQUANTIZED:
        raise QuantizeError("--scale-type 3 is TFLite's pre-quantized models, not a preview of TIDL's calibration",
                            hint="use 0, 1 or 4 (or --scheme tflite-int8)")
    return chosen


def _predictor(ray: str | None, actors: int | None) -> Any:
    """A context yielding ScoringSet's predict: None (here, in this process) or Ray actors' for the whole run."""
    import contextlib

    if ray is None:
        return contextlib.nullcontext()

    return ray_predictor(ray, actors=actors)


def _input_dtype(bundle: Bundle) -> str:
    """The dtype calibration frames take; the config's image size checked against the model's input first."""

    info = load_runner(bundle.model).inputs[0]
    check_input_size(bundle, info.shape)
    return "uint8" if info.dtype == "uint8" else "float32"


@dataclass
class _PreviewState:
    """What the preview was built from, kept for the sensitivity probes (calibrated once)."""

    float_model: Any
    layers: list[Any]
    ranges: dict[str, tuple[float, float]]


def _quantize(scheme: Scheme, bundle: Bundle, inputs: Any, work: Path, scale: ScaleType,
              result: QuantizeResult) -> tuple[Path, Path | None, _PreviewState | None]:
    """(the artifact, the preview model, the preview's inputs), written into the staging work folder. `bundle`: the
    float bundle as bundle.reader read it."""
    model = bundle.model
    if scheme is Scheme.TFLITE_INT8:

        return quantize_tflite_int8(bundle, inputs, work / "int8.tflite"), None, None
    if scheme is Scheme.ONNX_QDQ:

        dest = work / "qdq.onnx"
        quantize_onnx_qdq(model, dest, inputs, power_of_2=scale is ScaleType.POWER_OF_2,
                          heads=meta_arch_heads(bundle))
        return dest, None, None
    import onnx

    float_model = onnx.load(str(model))
    heads = meta_arch_heads(bundle)
    layers = quant_layers(float_model, backbone_nodes(float_model, heads) if heads else None)
    if heads:
        result.notes.append("only the backbone and heads are quantized: meta_arch.prototxt decodes the heads")
    if len(layers) <= 1:
        raise SchemeError(f"{model}: no layer TIDL quantizes (Conv, Gemm, eltwise, ...) was found",
                          hint="the preview needs a float ONNX image model")
    ranges = tensor_ranges(float_model, [layer.name for layer in layers], inputs)
    preview = build_preview(float_model, layers, ranges, scale)
    result.notes += [f"reproduced: {step}" for step in REPRODUCED] + [f"not reproduced: {s}" for s in NOT_REPRODUCED]
    return model, save_model(preview.model, work / PREVIEW_MODEL), _PreviewState(float_model, layers, ranges)


def _measure(result: QuantizeResult, bundle: Bundle, artifact: Path, preview: Path | None,
             state: _PreviewState | None, data: Any,
             preprocess: Any, dtype: str, calib_inputs: Any, work: Path, scale: ScaleType, sensitivity: bool,
             target_drop: float | None, predict: Any) -> None:
    scoring = ScoringSet(data, lambda image: preprocess.apply(image, dtype=dtype), predict)
    float_subject = model_subject(bundle, bundle.model, work)
    float_score, float_records = score(float_subject, scoring)
    float_score.what = f"{bundle.folder} (float)"
    quant_subject = model_subject(bundle, preview or artifact, work)
    quant_score, _ = score(quant_subject, scoring, float_records, float_score.value)
    quant_score.what = f"{result.scheme} (scale type {result.scale_type})"
    result.scores = [float_score, quant_score]
    if state is None or not (sensitivity or target_drop is not None):
        return
    _sensitivity(result, bundle, state, work, scoring, float_score.value, quant_score.value, calib_inputs, scale,
                 target_drop)


def _sensitivity(result: QuantizeResult, bundle: Bundle, state: _PreviewState, work: Path, scoring: Any,
                 float_value: float, quant_value: float, calib_inputs: Any, scale: ScaleType,
                 target_drop: float | None) -> None:
    float_model, layers, ranges = state.float_model, state.layers, state.ranges
    full = build_preview(float_model, layers, ranges, scale).model
    sqnr = sqnr_per_layer(float_model, full, layers, calib_inputs)
    counter = iter(range(1_000_000))

    def metric_of(keep_float: tuple[str, ...] = (), sixteen_bit: tuple[str, ...] = ()) -> float:
        probe = build_preview(float_model, layers, ranges, scale, keep_float=keep_float, sixteen_bit=sixteen_bit)
        path = save_model(probe.model, work / f"probe-{next(counter)}.onnx")
        value = score(model_subject(bundle, path, work), scoring)[0].value
        path.unlink()
        return value

    result.sensitivity = rank_layers(layers, sqnr, lambda layer: metric_of(keep_float=(layer.name,)), quant_value)
    if target_drop is not None:
        def drop_with(names: list[str]) -> tuple[float, float]:
            value = metric_of(sixteen_bit=tuple(names)) if names else quant_value
            return value, float_value - value

        result.sixteen_bit = propose_16bit(result.sensitivity, target_drop, drop_with)


def _without_inline_options(config: dict[str, Any]) -> dict[str, Any]:
    """The float config without its inline runtime options (the loader keys are added back with the new ones)."""
    session = {k: v for k, v in (config.get("session") or {}).items() if k != "runtime_options"}
    return {**config, "session": session}
