"""`export --graph model.onnx --to onnx --meta-arch ssd`: a user's ONNX SSD (decoding in the graph) bundled like a zoo
model: model.onnx + meta_arch.prototxt + runtime_options.yaml + config.yaml + manifest.json + verify.json.

    export_onnx_ssd(Path("resnet34-ssd1200.onnx"), out_dir=Path("out"), params={"top_k": 200})

The conversion is recipes/onnx_ssd.py; this module validates options before any work, fixes the input
shape (--inputs) and writes the bundle atomically into OUT/<file stem>/onnx/.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.config import detector_config
from edgezoo.bundle.naming import bundle_name
from edgezoo.bundle.staging import BundleStaging, sha256_file
from edgezoo.core.errors import ModelFileError, RecipeError
from edgezoo.export.api import ExportResult, _now, publish_bundle
from edgezoo.export.graph import _check_names, _fix_inputs
from edgezoo.graphs import onnx_model, own_outputs
from edgezoo.recipes.onnx_ssd import PARAMS, check_params, export_ssd
from edgezoo.recipes.params import check_shapes, validate_params
from edgezoo.verify import tolerances as tol_names
from edgezoo.zoo.schema import Target

META_ARCHS = ("ssd",)


def export_onnx_ssd(path: Path, *, inputs: Mapping[str, Sequence[int]] | None = None, out_dir: Path = Path("out"),
                    tolerances: Mapping[str, float] | None = None, params: Mapping[str, Any] | None = None,
                    meta_arch: str = "ssd", flags: Collection[str] = ()) -> ExportResult:
    """Convert, verify and bundle an ONNX SSD into <out_dir>/<file stem>/onnx/ (see the module docstring).
    `flags`: the parameters the user gave as CLI flags (--top-k), so that messages name them that way."""
    path = Path(path)
    if meta_arch not in META_ARCHS:
        raise RecipeError(f"--meta-arch {meta_arch!r}: not supported", hint="supported: " + ", ".join(META_ARCHS))
    if path.suffix.lower() != ".onnx":
        raise ModelFileError(f"{path}: --meta-arch ssd takes an ONNX model with its decoding in the graph",
                             hint="TF OD API SSDs: --graph frozen_inference_graph.pb --pipeline-config FILE")
    # Options first: nothing is loaded, converted or written with a value that is invalid.
    typed = validate_params(PARAMS, dict(params or {}), "--graph .onnx --meta-arch ssd",
                            lambda n: "--" + n.replace("_", "-") if n in flags else f"--param {n}")
    check_params(typed)
    fixed = check_shapes(dict(inputs or {}), "--inputs") if inputs else {}
    tol_names.check_names(tolerances or {}, tol_names.DETECTION)
    tol_names.check_values(tolerances or {})
    if fixed:
        _check_names(path, fixed, [])
    model = onnx_model.load(path)
    if fixed:
        model = _fix_inputs(model, fixed)
    name, renamed = bundle_name(out_dir, path.stem, Target.ONNX.value, [sha256_file(path)])
    final = Path(out_dir) / name / Target.ONNX.value
    started, t0 = _now(), time.monotonic()
    with BundleStaging(final) as staging, own_outputs(staging.workdir):
        output = export_ssd(path, model, staging.workdir, typed, tolerances or {}, explicit=set(params or {}))
        if renamed:
            output.notes.append(renamed)
        manifest = {
            "recipe": {"name": "generic-onnx-ssd-meta-arch", "params": {"inputs": dict(fixed), **typed,
                                                                         **output.params}},
            "model": {"id": path.stem, "title": path.name, "task": "detection", "card": None},
            "sources": [{"file": path.name, "path": str(path.resolve()), "size": path.stat().st_size,
                         "sha256": sha256_file(path), "source": "user", "standin": output.verify.standin}],
        }
        pre = output.params["preprocess"]  # the converted model's input: layout, size, pixel normalisation
        config = detector_config(Target.ONNX, path.stem, pre["layout"], pre["size"], pre["mean"], pre["scale"],
                                 output.config)
        result = publish_bundle(staging, final, name, Target.ONNX, output, config, manifest,
                                output.verify.standin, None, started)
    result.seconds = time.monotonic() - t0
    return result
