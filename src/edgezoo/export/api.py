"""The export pipeline, one for every route: a job (a registered recipe, its validated parameters, its sources) ->
`run(job)`: staging folder, recipe (convert + verify), config.yaml, runtime_options.yaml, TI's config check, the TI
package, verify.json, manifest.json, atomic publish (Ctrl-C held during the swap).

    result = export_model(get_card("resnet50"), Target.TFLITE, standin=True)      # a card's route
    result.passed, result.bundle, result.report.render()

The other routes build their job in export/graph.py (--graph), export/od_api.py (TF OD API SSD) and
export/onnx_ssd.py (--meta-arch ssd); export/request.py picks the route for the CLI.

A verified bundle lands at <out>/<model-id>/<target>/; one that failed parity at <target>.failed/ (see
bundle/staging.py), and `passed` is False (the CLI exits 1). Bad input raises an EdgezooError before anything is written.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo import __version__
from edgezoo.bundle import ti_package
from edgezoo.bundle.outputs import safe_name
from edgezoo.bundle.config import (MODEL_NAMES, card_config, deep_merge, runtime_options, runtime_options_manifest,
                                   with_runtime_options)
from edgezoo.bundle.staging import (CONFIG, MANIFEST, RUNTIME_OPTIONS, VERIFY, BundleFile, BundleStaging, describe_file,
                            failed_dir)
from edgezoo.core.errors import EdgezooError, RecipeError, did_you_mean
from edgezoo.export.sources import SourceResolver
from edgezoo.graphs import own_outputs
from edgezoo.recipes import Recipe, get_recipe
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.standins import STANDIN_BANNER, StandinVariant
from edgezoo.tidl import ti_config
from edgezoo.verify.report import ParityReport
from edgezoo.verify.tolerances import check_values, known as known_for_task
from edgezoo.zoo.schema import ModelCard, Target

# Distribution names whose versions go into every manifest (read from package metadata: nothing is imported).
TOOL_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "onnx", "onnxruntime", "ai-edge-litert", "tf2onnx", "onnxslim",
                      "numpy", "protobuf")


@dataclass
class ExportResult:
    model_id: str
    target: Target
    bundle: Path  # where the bundle was written (<target>/ or <target>.failed/)
    report: ParityReport
    files: list[BundleFile]
    recipe: str
    cut: list[str] = field(default_factory=list)
    cut_reason: str = ""
    notes: list[str] = field(default_factory=list)
    standin: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def model_file(self) -> BundleFile:
        return self.files[0]

    def headline(self) -> str:
        prefix = f"{STANDIN_BANNER}: " if self.standin else ""
        status = "PASS" if self.passed else "FAIL"
        return f"{prefix}{status} {self.model_id} -> {self.target.value}: {self.bundle}"


def tool_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"edgezoo": __version__}
    for dist in TOOL_DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ExportJob:
    """One export, validated: nothing in it is checked again, nothing was fetched or written to make it."""

    recipe: Recipe
    target: Target
    name: str  # the bundle goes to <out_dir>/<name>/<target>/
    params: dict[str, Any]  # typed by the recipe's ParamSpecs
    model: dict[str, Any]  # manifest.json "model": id, title, task, card
    out_dir: Path = Path("out")
    card: ModelCard | None = None
    sources: dict[str, Path] = field(default_factory=dict)  # the user's files, by the recipe's source keys
    # Sources put into the staging folder when the job runs (an archive's members), and the card's fetched on demand.
    stage_sources: Callable[[Path], dict[str, Path]] | None = None
    resolver: SourceResolver | None = None
    # The manifest's "sources" for the user's files, from the sources as the recipe got them.
    describe: Callable[[Mapping[str, Path]], list[dict[str, Any]]] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # config.yaml under the recipe's own sections
    standin: bool = False
    variant: StandinVariant | None = None
    tolerances: dict[str, float] = field(default_factory=dict)
    ti_package: bool = False


def run(job: ExportJob) -> ExportResult:
    """Stage, convert + verify with the job's recipe, write and publish the bundle (to <target>.failed/ when parity
    failed). A model the recipe wrote and cannot load is reported as the options' doing, not a corrupt download."""
    # A name taken from a file ("...onnx", "..tar.gz") must stay one folder under --out (bundle.outputs.safe_name);
    # the user's files are inputs that publishing never replaces.
    user_files = [Path(p) for p in job.sources.values()]
    name = safe_name(job.name, user_files[0] if user_files else job.name)
    final = Path(job.out_dir) / name / job.target.value
    started, t0 = _now(), time.monotonic()
    with BundleStaging(final, inputs=user_files) as staging, own_outputs(staging.workdir):
        sources = {**job.sources, **(job.stage_sources(staging.workdir) if job.stage_sources else {})}
        rin = RecipeInput(card=job.card, target=job.target, sources=sources, params=job.params,
                          workdir=staging.workdir, standin=job.standin, tolerances=job.tolerances,
                          resolve_source=job.resolver.resolve if job.resolver else None)
        output = job.recipe(rin)
        _check_output(output, job.recipe.name)
        standin = output.verify.standin = output.verify.standin or job.standin
        manifest = {
            "recipe": {"name": job.recipe.name, "params": {**job.params, **output.params}},
            "model": {**job.model, "id": name},
            "sources": job.resolver.describe() if job.resolver else job.describe(sources) if job.describe else [],
        }
        # TI's tools name the artifact after session.model_id: the bundle's name, whatever the recipe read.
        config = deep_merge(deep_merge(job.config, output.config), {"session": {"model_id": name}})
        result = publish_bundle(staging, final, name, job.target, output, config, manifest, standin,
                                job.variant if standin else None, started, ti_package=job.ti_package)
    result.seconds = time.monotonic() - t0
    return result


def card_job(card: ModelCard, target: Target | str, *, out_dir: Path = Path("out"), standin: bool = False,
             variant: StandinVariant = StandinVariant.FULL, mirror: str | None = None, offline: bool = False,
             params: Mapping[str, Any] | None = None, tolerances: Mapping[str, float] | None = None,
             ti_package: bool = False, origin: Callable[[str], str] = lambda n: f"param {n}") -> ExportJob:
    """A zoo model's export: the card's recipe for `target`, the card's params under `params` (ParamError, exit 2,
    before anything is fetched or written); sources fetched (or stand-ins built) when the recipe asks for them."""
    target = Target(target)
    spec = card.recipe(target)  # CardError naming the targets when the card has none for this one
    recipe = get_recipe(spec.name)
    typed = recipe.validate({**dict(spec.params), **dict(params or {})}, card.id, origin)
    check_tolerances(card, tolerances or {})
    return ExportJob(recipe=recipe, target=target, name=card.id, params=typed, out_dir=Path(out_dir), card=card,
                     model={"id": card.id, "title": card.title, "task": card.task.value,
                            "card": Path(card.source).name},
                     resolver=SourceResolver(card, mirror=mirror, offline=offline, standin=standin, variant=variant),
                     config=card_config(card, target), standin=standin, variant=variant,
                     tolerances={**dict(card.tolerances), **dict(tolerances or {})}, ti_package=ti_package)


def export_model(card: ModelCard, target: Target | str, **options: Any) -> ExportResult:
    """Fetch, convert, verify and bundle one model for one target (`ti_package`: also in TI's package layout);
    the options are card_job's."""
    return run(card_job(card, target, **options))


def check_tolerances(card: ModelCard, given: Mapping[str, float]) -> None:
    """A misspelt --tolerance must not be silently ignored: names are the card's or those of its task's parity; values
    must be in the name's range (a negative error or a cosine of 2 would fail or pass every model)."""

    known = list(dict.fromkeys([*card.tolerances, *known_for_task(card.task.value)]))
    for name in given:
        if name not in known:
            raise EdgezooError(f"{card.id}: unknown tolerance {name!r}",
                               hint=did_you_mean(name, known) + " known: " + ", ".join(known))
    check_values(given, card.id)


def _check_output(output: Any, recipe: str) -> None:
    if not isinstance(output, RecipeOutput) or not isinstance(output.verify, ParityReport):
        raise RecipeError(f"recipe {recipe!r} returned no RecipeOutput with a ParityReport",
                          hint="this is a bug in the recipe")


def publish_bundle(staging: BundleStaging, final: Path, model_id: str, target: Target, output: RecipeOutput,
            config: dict[str, Any], manifest: dict[str, Any], standin: bool, variant: StandinVariant | None,
            started: str, *, ti_package: bool = False) -> ExportResult:
    """Write the bundle files into the staging folder and publish it (to <target>.failed/ when parity failed)."""
    report = output.verify
    dest = final if report.passed else failed_dir(final)
    # The report names the model where the user will find it, not the staging folder it was verified in.
    report.converted = str(dest / MODEL_NAMES[target])
    files = [staging.add_file(output.model, MODEL_NAMES[target])]
    files += [staging.add_file(src, name) for name, src in output.extra_files.items()]
    options = runtime_options(output.runtime_options)
    files.append(staging.add_yaml(RUNTIME_OPTIONS, options, header=_yaml_header(standin, model_id, target),
                                  compact=False))
    config = with_runtime_options(config, options)
    ti_config = _ti_config_check(config, staging.dir, output.notes)
    files.append(staging.add_yaml(CONFIG, config, header=_yaml_header(standin, model_id, target)))
    if ti_package:
        files += _ti_package(staging, config, [MODEL_NAMES[target], *output.extra_files], ti_config, report.passed,
                             _yaml_header(standin, model_id, target), output.notes)
    files.append(staging.add_json(VERIFY, report.to_dict()))
    full_manifest = {
        "standin": standin,
        "standin_variant": variant.value if standin and variant else None,
        "banner": STANDIN_BANNER if standin else "",
        "edgezoo_version": __version__,
        "target": target.value,
        **manifest,
        "original": str(output.original) if output.original else None,
        "cut": list(output.cut),
        "cut_reason": output.cut_reason,
        "notes": list(output.notes),
        "runtime_options": runtime_options_manifest(output.runtime_options),
        "ti_config": ti_config,
        "verification": {"passed": report.passed, "failures": report.failure_summary()},
        "tools": tool_versions(),
        "outputs": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
        "started_at": started,
        "finished_at": _now(),
    }
    staging.add_json(MANIFEST, full_manifest)
    dest = staging.commit(dest)
    files.append(describe_file(dest / MANIFEST))
    return ExportResult(model_id=model_id, target=target, bundle=dest, report=report, files=files,
                        recipe=manifest["recipe"]["name"], cut=list(output.cut), cut_reason=output.cut_reason,
                        notes=list(output.notes) + list(report.notes), standin=standin)


def _ti_config_check(config: dict[str, Any], bundle: Path, notes: list[str]) -> dict[str, Any]:
    """Whether TI's own tools load config.yaml as written (edgezoo.tidl.ti_config); a note says so when not."""
    problems = ti_config.problems(config, bundle)
    if problems:
        notes.append(f"config.yaml breaks TI's loader contract in {len(problems)} places (manifest.json ti_config): "
                     "TI's tools will refuse it rather than misread it")
    return {"loadable_by_ti_tools": not problems, "problems": problems,
            "contract": "edgezoo/tidl/ti_config_contract.yaml"}


def _ti_package(staging: BundleStaging, config: dict[str, Any], model_files: list[str], ti_config: dict[str, Any],
                passed: bool, header: str, notes: list[str]) -> list[BundleFile]:
    """--ti-package: only a verified bundle whose config TI's tools load is packaged; a note says why not."""
    if not passed or not ti_config["loadable_by_ti_tools"]:
        notes.append("no TI package written: " + ("parity failed" if not passed else
                                                  "config.yaml is not in TI's schema (manifest.json ti_config)"))
        return []
    package = ti_package.write_package(staging, config, model_files, header)
    notes.append(f"TI package: {package[-1].name} (+ the unpacked folder): param.yaml, model/, artifacts/ "
                 "(empty until TI's import tools compile the model)")
    return package


def _yaml_header(standin: bool, model_id: str, target: Target) -> str:
    banner = f"# {STANDIN_BANNER}: built from stand-in files with random weights, not the published model\n" \
        if standin else ""
    return f"{banner}# edgezoo {__version__}: {model_id} -> {target.value}\n"
