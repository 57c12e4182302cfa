"""`export --graph model.onnx --to onnx --meta-arch ssd`: a user's ONNX SSD (decoding in the graph) bundled like a zoo
model: model.onnx + meta_arch.prototxt + runtime_options.yaml + config.yaml + manifest.json + verify.json.

    export_onnx_ssd(Path("resnet34-ssd1200.onnx"), out_dir=Path("out"), params={"top_k": 200})

The conversion is the recipe `generic-onnx-ssd-meta-arch` (recipes/onnx_ssd.py); this module validates options and
--inputs before any work. The bundle lands in OUT/<file stem>/onnx/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.naming import bundle_name
from edgezoo.bundle.provenance import is_standin
from edgezoo.bundle.staging import sha256_file
from edgezoo.core.errors import ModelFileError, RecipeError
from edgezoo.export.api import ExportJob, ExportResult, run
from edgezoo.export.graph import user_source
from edgezoo.recipes import get_recipe
from edgezoo.recipes.graph import GRAPH, check_names
from edgezoo.verify import tolerances as tol_names
from edgezoo.zoo.schema import ModelFormat, Target

META_ARCHS = ("ssd",)
RECIPE = "generic-onnx-ssd-meta-arch"


def onnx_ssd_job(path: Path, *, inputs: Mapping[str, Sequence[int]] | None = None, out_dir: Path = Path("out"),
                 tolerances: Mapping[str, float] | None = None, params: Mapping[str, Any] | None = None,
                 meta_arch: str = "ssd", ti_package: bool = False,
                 origin: Callable[[str], str] = lambda n: f"--param {n}") -> ExportJob:
    """The job that converts, verifies and bundles an ONNX SSD into <out_dir>/<file stem>/onnx/."""
    path = Path(path)
    if meta_arch not in META_ARCHS:
        raise RecipeError(f"--meta-arch {meta_arch!r}: not supported", hint="supported: " + ", ".join(META_ARCHS))
    if ModelFormat.of(path) is not ModelFormat.ONNX:
        raise ModelFileError(f"{path}: --meta-arch ssd takes an ONNX model with its decoding in the graph",
                             hint="TF OD API SSDs: --graph frozen_inference_graph.pb --pipeline-config FILE")
    recipe = get_recipe(RECIPE)
    given = {**dict(params or {}), **({"inputs": dict(inputs)} if inputs else {})}
    typed = recipe.validate(given, "--graph .onnx --meta-arch ssd",
                            lambda n: "--inputs" if n == "inputs" else origin(n))
    tol_names.check_names(tolerances or {}, tol_names.DETECTION)
    tol_names.check_values(tolerances or {})
    if typed.get("inputs"):
        check_names(path, typed["inputs"], [])
    # model.onnx from two folders must not land on one bundle (bundle/naming.py)
    name, _ = bundle_name(Path(out_dir), path.stem, Target.ONNX.value, [sha256_file(path)] if path.is_file() else [])
    return ExportJob(recipe=recipe, target=Target.ONNX, name=name, params=typed, out_dir=Path(out_dir),
                     model={"id": name, "title": path.name, "task": "detection", "card": None},
                     sources={GRAPH: path}, describe=lambda got: [user_source(got[GRAPH], is_standin(got[GRAPH]))],
                     tolerances=dict(tolerances or {}), ti_package=ti_package)


def export_onnx_ssd(path: Path, **options: Any) -> ExportResult:
    """Convert, verify and bundle an ONNX SSD (options: onnx_ssd_job's)."""
    return run(onnx_ssd_job(path, **options))
