"""`export --graph FILE`: a user's own frozen graph or ONNX model, exported like a zoo model by the recipe its suffix
and the target select (recipes/graph.py).

    export_graph(Path("my.pb"), {"images": [1, 160, 160, 3]}, ["head/scores"], "tflite")

Everything is checked before any work: the file's kind, the pairing, the parameters (the recipe's ParamSpecs), the
tolerances and every tensor name (wrong names -> the closest ones, exit 2, nothing written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.staging import sha256_file
from edgezoo.core.errors import ModelFileError, RecipeError
from edgezoo.export.api import ExportJob, ExportResult, run
from edgezoo.recipes import get_recipe
from edgezoo.recipes.graph import GRAPH, ROUTES, check_names
from edgezoo.verify import tolerances as tol_names
from edgezoo.zoo.schema import ModelFormat, Target


def user_source(path: Path, standin: bool = False) -> dict[str, Any]:
    """The manifest's record of a file the user gave."""
    path = Path(path)
    return {"file": path.name, "path": str(path.resolve()), "size": path.stat().st_size,
            "sha256": sha256_file(path), "source": "user", "standin": standin}


def graph_job(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], target: Target | str, *,
              out_dir: Path = Path("out"), tolerances: Mapping[str, float] | None = None,
              params: Mapping[str, Any] | None = None, ti_package: bool = False,
              origin: Any = lambda n: f"--param {n}") -> ExportJob:
    """The job that converts, verifies and bundles a user's model into <out_dir>/<file stem>/<target>/."""
    path, target = Path(path), Target(target)
    source = ModelFormat.of(path)
    if source not in (ModelFormat.TF, ModelFormat.ONNX):
        raise ModelFileError(f"{path}: --graph takes a frozen graph (.pb) or an ONNX model (.onnx)",
                             hint="TFLite models are already a target format: use 'edgezoo check' / 'verify'")
    if not outputs:
        raise RecipeError("--outputs is empty", hint="name the tensors the exported model should end at")
    if (source, target) not in ROUTES:
        raise RecipeError(f"{path}: ONNX -> TFLite is not supported", hint="export ONNX models with --to onnx")
    recipe = get_recipe(ROUTES[(source, target)])
    given = {**dict(params or {}), "inputs": dict(inputs), "outputs": list(outputs)}
    typed = recipe.validate(given, f"--graph {path.suffix} -> {target.value}",
                            lambda n: f"--{n}" if n in ("inputs", "outputs") else origin(n))
    tol_names.check_names(tolerances or {}, "tensors")
    tol_names.check_values(tolerances or {})
    check_names(path, typed["inputs"], typed["outputs"])
    return ExportJob(recipe=recipe, target=target, name=path.stem, params=typed, out_dir=Path(out_dir),
                     model={"id": path.stem, "title": path.name, "task": "tensors", "card": None},
                     sources={GRAPH: path}, describe=lambda got: [user_source(got[GRAPH])],
                     tolerances=dict(tolerances or {}), ti_package=ti_package)


def export_graph(path: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], target: Target | str,
                 **options: Any) -> ExportResult:
    """Convert, verify and bundle a user's own model (options: graph_job's)."""
    return run(graph_job(path, inputs, outputs, target, **options))
