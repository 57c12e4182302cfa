"""`export --graph frozen_inference_graph.pb --pipeline-config pipeline.config`: a user's own TF Object Detection API
SSD, converted, verified and bundled like the zoo's SSD-MobileNet.

    export_od_api(Path("exported_model/"), None, "tflite", params={"max_detections": 100})

`graph` is the frozen graph, the OD API export folder holding it (frozen_inference_graph.pb and pipeline.config, at
the top or one folder down, as in the published tarballs) or that folder as a .tar.gz / .tgz (unpacked with the
project's safe unpacker, only those two members). A TF2 export (exporter_main_v2.py: saved_model/ + pipeline.config,
the folder, its saved_model/ or saved_model.pb) is taken through its serving function frozen to a GraphDef
(graphs/tf_saved_model.py): the same routes then apply, without the OD API installed. `pipeline_config` overrides
the one found beside the graph.
Options are validated before anything is read or written; the bundle lands in <out>/<name>/<target>/.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgezoo.bundle.config import deep_merge
from edgezoo.bundle.naming import bundle_name
from edgezoo.bundle.staging import BundleStaging, sha256_file
from edgezoo.core.errors import ModelFileError
from edgezoo.export.api import ExportResult, _now, publish_bundle
from edgezoo.fetch.archive import ArchiveKind, EntryKind, scan, unpack
from edgezoo.graphs import onnx_model, tf_graph
from edgezoo.graphs.onnx_values import all_nodes
from edgezoo.graphs.tf_saved_model import freeze_serving, is_saved_model_dir
from edgezoo.recipes import get_recipe
from edgezoo.recipes.base import RecipeInput
from edgezoo.recipes.od_api_ssd import CONFIG, GRAPH
from edgezoo.ssd import ssd_surgery
from edgezoo.verify import tolerances as tol_names
from edgezoo.zoo.schema import Target

RECIPES = {Target.TFLITE: "od-api-ssd-tflite", Target.ONNX: "od-api-ssd-onnx"}
SAVED_MODEL = "saved_model.pb"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_HINT = "give the OD API export folder (frozen_inference_graph.pb + pipeline.config, or TF2's saved_model/ + " \
        "pipeline.config), its .tar.gz, or the .pb with --pipeline-config"


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _in_folder(folder: Path, name: str) -> Path | None:
    """`name` at the top of `folder` or one folder down (a single match)."""
    found = [p for p in (folder / name, *folder.glob(f"*/{name}")) if p.is_file()]
    if len(found) > 1:
        raise ModelFileError(f"{folder}: {len(found)} files named {name} ({', '.join(str(p) for p in found[:3])})",
                             hint="point --graph at the export folder that holds one")
    return found[0] if found else None


def _from_archive(archive: Path, scratch: Path) -> tuple[Path | None, Path | None]:
    kind = ArchiveKind.ZIP if archive.suffix == ".zip" else ArchiveKind.TAR_GZ
    entries = [e for e in scan(archive, kind) if e.kind is EntryKind.FILE]
    wanted = {}
    for name in (GRAPH, CONFIG):
        matches = [e.name for e in entries if e.name == name or e.name.endswith("/" + name)]
        matches = [m for m in matches if m.count("/") <= 1]  # top level or one folder down
        if len(matches) > 1:
            raise ModelFileError(f"{archive}: {len(matches)} members named {name}", hint=_HINT)
        if matches:
            wanted[name] = matches[0]
    if GRAPH not in wanted:
        raise ModelFileError(f"{archive}: no {GRAPH} member (top level or one folder down)", hint=_HINT)
    unpack(archive, kind, scratch / "unpacked", list(wanted.values()))
    return (scratch / "unpacked" / wanted[GRAPH],
            scratch / "unpacked" / wanted[CONFIG] if CONFIG in wanted else None)


def _from_saved_model(folder: Path, config: Path | None, scratch: Path) -> tuple[Path, Path | None, str, Path]:
    """A TF2 export folder (or its saved_model/): its serving function frozen into `scratch`."""
    saved = folder if is_saved_model_dir(folder) else folder / "saved_model"
    if not is_saved_model_dir(saved):
        raise ModelFileError(f"--graph {folder}: no {GRAPH} and no saved_model/ in the folder (top level or one "
                             "folder down)", hint=_HINT)
    export = saved.parent if saved.name == "saved_model" else saved
    if config is None:
        config = _in_folder(export, CONFIG)
    scratch.mkdir(parents=True, exist_ok=True)
    pb = freeze_serving(saved, scratch / GRAPH)
    return pb, config, export.resolve().name, saved / SAVED_MODEL


def locate_sources(graph: Path, pipeline_config: Path | None, scratch: Path) -> tuple[Path, Path, str, Path]:
    """(frozen graph, pipeline.config, model name, the file the graph came from) for a --graph value;
    ModelFileError (exit 2) when incomplete. The last is the frozen graph itself, or a TF2 export's
    saved_model.pb (the frozen graph is then made from it in `scratch`)."""
    graph = Path(graph)
    if not graph.exists():
        raise ModelFileError(f"--graph {graph}: no such file or folder", hint=_HINT)
    if graph.name == SAVED_MODEL and graph.is_file():
        graph = graph.parent
    origin = None
    if graph.is_dir():
        pb, config = _in_folder(graph, GRAPH), _in_folder(graph, CONFIG)
        name = graph.resolve().name
        if pb is None:
            pb, config, name, origin = _from_saved_model(graph, config, scratch)
    elif is_archive(graph):
        pb, config = _from_archive(graph, scratch)
        name = graph.name[: -len(next(s for s in ARCHIVE_SUFFIXES if graph.name.lower().endswith(s)))]
    elif graph.suffix == ".pb":
        refuse_detector_without_route(graph)
        pb = graph
        beside = graph.with_name(CONFIG)
        config = beside if beside.is_file() else None
        name = graph.resolve().parent.name if graph.name == GRAPH else graph.stem
    else:
        raise ModelFileError(f"--graph {graph}: with --pipeline-config, --graph takes a frozen graph (.pb), an OD API "
                             "export folder or its .tar.gz", hint=_HINT)
    if pipeline_config is not None:
        if not Path(pipeline_config).is_file():
            raise ModelFileError(f"--pipeline-config {pipeline_config}: no such file", hint="check the path")
        config = Path(pipeline_config)
    if config is None:
        raise ModelFileError(f"--graph {graph}: no {CONFIG} found beside the frozen graph",
                             hint="give it with --pipeline-config PATH")
    return pb, config, name or "od-api-ssd", origin or pb


def refuse_detector_without_route(path: Path) -> None:
    """`--graph FILE` with no --inputs/--outputs: when FILE is a detector the SSD routes take in another form, say
    which form and how (ModelFileError); otherwise return (the generic route's own message follows)."""
    path = Path(path)
    if path.suffix == ".onnx" and path.is_file():
        model = onnx_model.load(path)
        if any(n.op_type == "NonMaxSuppression" for n in all_nodes(model)):
            raise ModelFileError(f"--graph {path}: an ONNX detector with its post-processing (NonMaxSuppression)",
                                 hint=f"export it for TIDL with --meta-arch ssd: edgezoo export --graph {path} "
                                      "--to onnx --meta-arch ssd")
    elif path.suffix == ".pb" and path.is_file():
        graph_def = tf_graph.load_graph_def(path)
        if any(n.op == ssd_surgery.POSTPROCESS_OP for n in graph_def.node):
            raise ModelFileError(f"--graph {path}: export_tflite_ssd_graph's tflite_graph.pb (it ends in "
                                 f"{ssd_surgery.POSTPROCESS_OP}, which TF cannot run: nothing to verify a "
                                 "conversion against)", hint="give the export folder exporter.py wrote "
                                 "(frozen_inference_graph.pb + pipeline.config): edgezoo rebuilds that "
                                 "post-processing itself (max_detections 4000, regular NMS) and verifies it")


def _describe(path: Path, role: str, given: Path) -> dict[str, Any]:
    """A manifest source entry; `given` is what the user named (an archive's members are read from a scratch copy)."""
    return {"file": role, "path": str(path.resolve()), "given": str(Path(given).resolve()),
            "size": path.stat().st_size, "sha256": sha256_file(path), "source": "user", "standin": False}


def export_od_api(graph: Path, pipeline_config: Path | None, target: Target | str, *, out_dir: Path = Path("out"),
                  params: Mapping[str, Any] | None = None, tolerances: Mapping[str, float] | None = None,
                  standin: bool = False, origin: Callable[[str], str] = lambda n: f"param {n}") -> ExportResult:
    """Convert, verify and bundle an OD API SSD into <out_dir>/<name>/<target>/ (see the module docstring)."""
    target = Target(target)
    recipe = get_recipe(RECIPES[target])
    # Options first: nothing is unpacked, loaded or written with a value that is invalid.
    typed = recipe.validate(dict(params or {}), f"--graph {Path(graph).name}", origin)
    tol_names.check_names(tolerances or {}, "detection")
    tol_names.check_values(tolerances or {})
    started, t0 = _now(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgezoo-odapi-") as tmp:
        pb, config, name, source = locate_sources(Path(graph), pipeline_config, Path(tmp))
        described = [_describe(source, source.name if source == pb else f"saved_model/{SAVED_MODEL}", Path(graph)),
                     _describe(config, CONFIG, Path(graph))]
        name, renamed = bundle_name(out_dir, name, target.value, [d["sha256"] for d in described])
        final = Path(out_dir) / name / target.value
        with BundleStaging(final) as staging:
            rin = RecipeInput(card=None, target=target, sources={GRAPH: pb, CONFIG: config}, params=typed,
                              workdir=staging.workdir, standin=standin, tolerances=dict(tolerances or {}))
            output = recipe(rin)
            output.verify.standin = output.verify.standin or standin
            output.verify.original = str(source)
            if source != pb:
                output.notes.append(f"TF2 export: the serving function of {source.parent} frozen to a GraphDef "
                                    "(variables as constants) is what was converted and verified against")
            if renamed:
                output.notes.append(renamed)
            manifest = {
                "recipe": {"name": recipe.name, "params": {**typed, **output.params}},
                "model": {"id": name, "title": f"{name} (TF OD API SSD)", "task": "detection", "card": None},
                "sources": described,
            }
            config = deep_merge(output.config, {"session": {"model_id": name}})
            result = publish_bundle(staging, final, name, target, output, config, manifest, standin, None, started)
    result.seconds = time.monotonic() - t0
    return result

