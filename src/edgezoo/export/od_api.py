"""`export --graph frozen_inference_graph.pb --pipeline-config pipeline.config`: a user's own TF Object Detection API
SSD, converted, verified and bundled like the zoo's SSD-MobileNet.

    export_od_api(Path("exported_model/"), None, "tflite", params={"max_detections": 100})

`graph` is the frozen graph, the OD API export folder holding it (frozen_inference_graph.pb and pipeline.config, at
the top or one folder down, as in the published tarballs) or that folder as a .tar.gz / .tgz (unpacked with the
project's safe unpacker, only those two members). A TF2 export (exporter_main_v2.py: saved_model/ + pipeline.config,
the folder, its saved_model/ or saved_model.pb) is taken through its serving function frozen to a GraphDef in the
staging folder (graphs/tf_saved_model.py): the same routes then apply, without the OD API installed.
`pipeline_config` overrides the one found beside the graph. A file the exporters wrote for TFLite only
(tflite_graph.pb) is refused with the folder to give.
Options are validated before anything is read or written (an archive is scanned, its two members are unpacked into the
bundle's staging folder when the job runs); the bundle lands in <out>/<name>/<target>/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo.bundle.naming import bundle_name
from edgezoo.bundle.staging import sha256_file
from edgezoo.core.errors import ModelFileError
from edgezoo.export.api import ExportJob, ExportResult, run
from edgezoo.export.graph import user_source
from edgezoo.fetch.archive import ArchiveKind, EntryKind, scan
from edgezoo.fetch.unpack import unpack
from edgezoo.graphs import onnx_model, tf_graph
from edgezoo.graphs.onnx_values import all_nodes
from edgezoo.graphs.tf_saved_model import freeze_serving, is_saved_model_dir, refuse_tflite_export
from edgezoo.recipes import get_recipe
from edgezoo.recipes.od_api_ssd import CONFIG, GRAPH
from edgezoo.ssd import ssd_surgery
from edgezoo.verify import tolerances as tol_names
from edgezoo.zoo.schema import ModelFormat, Target

RECIPES = {Target.TFLITE: "od-api-ssd-tflite", Target.ONNX: "od-api-ssd-onnx"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
SAVED_MODEL = "saved_model.pb"
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


@dataclass(frozen=True)
class OdApiSources:
    """Where the frozen graph and the pipeline.config are: files, or members of an archive unpacked at run time."""

    name: str
    files: dict[str, Path] = field(default_factory=dict)  # GRAPH / CONFIG -> a file on disk
    archive: Path | None = None
    members: dict[str, str] = field(default_factory=dict)  # GRAPH / CONFIG -> the member's name in `archive`
    saved_model: Path | None = None  # a TF2 export's saved_model/: its serving function is frozen into GRAPH

    def stage(self, workdir: Path) -> dict[str, Path]:
        """Unpack the archive's members (the project's safe unpacker) next to the recipe's scratch files; freeze a
        TF2 SavedModel's serving function there."""
        if self.saved_model is not None:
            return {GRAPH: freeze_serving(self.saved_model, Path(workdir) / GRAPH)}
        if self.archive is None:
            return {}
        kind = ArchiveKind.ZIP if self.archive.suffix == ".zip" else ArchiveKind.TAR_GZ
        unpack(self.archive, kind, Path(workdir) / "unpacked", list(self.members.values()))
        return {role: Path(workdir) / "unpacked" / member for role, member in self.members.items()
                if role not in self.files}


def _archive_members(archive: Path) -> dict[str, str]:
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
    return wanted


def locate_sources(graph: Path, pipeline_config: Path | None) -> OdApiSources:
    """The frozen graph and pipeline.config a --graph value names; ModelFileError (exit 2) when incomplete. Reads
    (an archive's listing), writes nothing."""
    graph = Path(graph)
    if not graph.exists():
        raise ModelFileError(f"--graph {graph}: no such file or folder", hint=_HINT)
    if graph.name == SAVED_MODEL and graph.is_file():
        graph = graph.parent
    files: dict[str, Path] = {}
    members: dict[str, str] = {}
    saved = None
    if graph.is_dir():
        pb, config = _in_folder(graph, GRAPH), _in_folder(graph, CONFIG)
        name = graph.resolve().name
        if pb is None:
            saved = graph if is_saved_model_dir(graph) else graph / "saved_model"
            if not is_saved_model_dir(saved):
                raise ModelFileError(f"--graph {graph}: no {GRAPH} and no saved_model/ in the folder (top level or "
                                     "one folder down)", hint=_HINT)
            refuse_tflite_export(saved)  # before asking for a pipeline.config it would not help with
            export = saved.parent if saved.name == "saved_model" else saved
            config = config or _in_folder(export, CONFIG)
            name = export.resolve().name
        files = {**({GRAPH: pb} if pb else {}), **({CONFIG: config} if config else {})}
    elif is_archive(graph):
        members = _archive_members(graph)
        name = graph.name[: -len(next(s for s in ARCHIVE_SUFFIXES if graph.name.lower().endswith(s)))]
    elif ModelFormat.of(graph) is ModelFormat.TF:
        refuse_detector_without_route(graph)
        beside = graph.with_name(CONFIG)
        files = {GRAPH: graph, **({CONFIG: beside} if beside.is_file() else {})}
        name = graph.resolve().parent.name if graph.name == GRAPH else graph.stem
    else:
        raise ModelFileError(f"--graph {graph}: with --pipeline-config, --graph takes a frozen graph (.pb), an OD API "
                             "export folder or its .tar.gz", hint=_HINT)
    if pipeline_config is not None:
        if not Path(pipeline_config).is_file():
            raise ModelFileError(f"--pipeline-config {pipeline_config}: no such file", hint="check the path")
        files[CONFIG] = Path(pipeline_config)
    if CONFIG not in files and CONFIG not in members:
        raise ModelFileError(f"--graph {graph}: no {CONFIG} found beside the frozen graph",
                             hint="give it with --pipeline-config PATH")
    return OdApiSources(name or "od-api-ssd", files, graph if members else None, members, saved)


def refuse_detector_without_route(path: Path) -> None:
    """`--graph FILE` with no --inputs/--outputs: when FILE is a detector the SSD routes take in another form, say
    which form and how (ModelFileError); otherwise return (the generic route's own message follows)."""
    path = Path(path)
    if ModelFormat.of(path) is ModelFormat.ONNX and path.is_file():
        model = onnx_model.load(path)
        if any(n.op_type == "NonMaxSuppression" for n in all_nodes(model)):
            raise ModelFileError(f"--graph {path}: an ONNX detector with its post-processing (NonMaxSuppression)",
                                 hint=f"export it for TIDL with --meta-arch ssd: edgezoo export --graph {path} "
                                      "--to onnx --meta-arch ssd")
    elif ModelFormat.of(path) is ModelFormat.TF and path.is_file():
        graph_def = tf_graph.load_graph_def(path)
        if any(n.op == ssd_surgery.POSTPROCESS_OP for n in graph_def.node):
            raise ModelFileError(f"--graph {path}: export_tflite_ssd_graph's tflite_graph.pb (it ends in "
                                 f"{ssd_surgery.POSTPROCESS_OP}, which TF cannot run: nothing to verify a "
                                 "conversion against)", hint="give the export folder exporter.py wrote "
                                 "(frozen_inference_graph.pb + pipeline.config): edgezoo rebuilds that "
                                 "post-processing itself (max_detections 4000, regular NMS) and verifies it")


def _describe(path: Path, role: str, given: Path) -> dict[str, Any]:
    """A manifest source entry; `given` is what the user named (an archive's members are read from a scratch copy)."""
    return {**user_source(path), "file": role, "given": str(Path(given).resolve())}


def od_api_job(graph: Path, pipeline_config: Path | None, target: Target | str, *, out_dir: Path = Path("out"),
               params: Mapping[str, Any] | None = None, tolerances: Mapping[str, float] | None = None,
               standin: bool = False, ti_package: bool = False,
               origin: Callable[[str], str] = lambda n: f"param {n}") -> ExportJob:
    """The job that converts, verifies and bundles an OD API SSD into <out_dir>/<name>/<target>/."""
    target = Target(target)
    recipe = get_recipe(RECIPES[target])
    # Options first: nothing is read with a value that is invalid.
    typed = recipe.validate(dict(params or {}), f"--graph {Path(graph).name}", origin)
    tol_names.check_names(tolerances or {}, tol_names.DETECTION)
    tol_names.check_values(tolerances or {})
    found = locate_sources(Path(graph), pipeline_config)
    origin = found.saved_model / SAVED_MODEL if found.saved_model else found.archive or found.files[GRAPH]
    name, _ = bundle_name(Path(out_dir), found.name, target.value, [sha256_file(origin)])

    def describe(got: Mapping[str, Path]) -> list[dict[str, Any]]:
        graph_source = _describe(origin, f"saved_model/{SAVED_MODEL}", Path(graph)) if found.saved_model \
            else _describe(got[GRAPH], GRAPH, Path(graph))
        return [graph_source, _describe(got[CONFIG], CONFIG, Path(graph))]

    return ExportJob(recipe=recipe, target=target, name=name, params=typed, out_dir=Path(out_dir),
                     model={"id": name, "title": f"{found.name} (TF OD API SSD)", "task": "detection",
                            "card": None},
                     sources=dict(found.files), stage_sources=found.stage,
                     describe=describe,
                     standin=standin, tolerances=dict(tolerances or {}), ti_package=ti_package)


def export_od_api(graph: Path, pipeline_config: Path | None, target: Target | str, **options: Any) -> ExportResult:
    """Convert, verify and bundle an OD API SSD (see the module docstring; options: od_api_job's)."""
    return run(od_api_job(graph, pipeline_config, target, **options))
