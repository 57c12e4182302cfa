"""What `edgezoo export` is asked, routed and validated: a request -> a plan of export jobs (export/api.py), every
option of every job checked before the first one fetches, builds or writes anything; then the jobs run in order.

Routes: zoo models (the card's recipe for the target); `--graph` a .pb/.onnx with --inputs/--outputs (recipes/graph.py);
`--graph` an OD API SSD (export folder, its .tar.gz, or a .pb with a pipeline.config; export/od_api.py); `--graph`
model.onnx --meta-arch ssd (export/onnx_ssd.py). Recipe options can be given as flags, shortcuts for
--param NAME=VALUE (`ExportRequest.flags`) checked by the recipe's ParamSpecs; a model whose recipe does not declare one
refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo import zoo
from edgezoo.core.errors import EdgezooError
from edgezoo.export.api import ExportJob, ExportResult, card_job, run
from edgezoo.export.graph import graph_job
from edgezoo.export.od_api import SAVED_MODEL, is_archive, od_api_job, refuse_detector_without_route
from edgezoo.export.onnx_ssd import RECIPE as META_ARCH_RECIPE
from edgezoo.export.onnx_ssd import onnx_ssd_job
from edgezoo.export.report import SkippedRow
from edgezoo.recipes import get_recipe
from edgezoo.recipes.od_api_ssd import CONFIG
from edgezoo.recipes.params import check_shapes
from edgezoo.standins import StandinVariant
from edgezoo.zoo.schema import ModelCard

def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class ExportRequest:
    target: str
    models: Sequence[str] = ()
    every_model: bool = False  # --all
    graph: Path | None = None
    inputs: str | None = None  # "NAME:1x224x224x3[,NAME:SHAPE]"
    outputs: str | None = None  # "NAME[,NAME]"
    pipeline_config: Path | None = None
    meta_arch: str | None = None
    out: Path = Path("out")
    standin: bool = False
    variant: str = "full"
    mirror: str | None = None
    offline: bool = False
    tolerances: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # --param NAME=VALUE
    flags: Mapping[str, Any] = field(default_factory=dict)  # recipe parameters given as flags (--max-detections)
    ti_package: bool = False

    def given(self) -> dict[str, Any]:
        """--param values and recipe flags in one mapping; the same name given both ways is ambiguous."""
        for name in self.flags:
            if name in self.params:
                raise EdgezooError(f"{flag(name)} and --param {name} both given", hint="give it once")
        return {**self.params, **self.flags}

    def origin(self, name: str) -> str:
        """A parameter as the user spelt it, for messages."""
        return flag(name) if name in self.flags else f"--param {name}" if name in self.params else f"the card's {name}"


@dataclass
class ExportPlan:
    jobs: list[ExportJob]
    skipped: list[SkippedRow] = field(default_factory=list)
    single: bool = True  # one export asked for: its error is the run's (exit 2), not a row of the table
    failed: int = 0  # jobs that ended in an error so far


def parse_inputs(text: str | None) -> dict[str, list[int]]:
    """'a:1x224x224x3,b:1x10' -> {'a': [1,224,224,3], 'b': [1,10]} (names may contain ':0'), sizes range-checked."""
    if not text:
        raise EdgezooError("--graph needs --inputs NAME:SHAPE, e.g. --inputs input:1x224x224x3")
    out: dict[str, list[int]] = {}
    for item in text.split(","):
        name, sep, shape = item.strip().rpartition(":")
        try:
            dims = [int(d) for d in shape.lower().split("x")]
        except ValueError:
            dims = []
        if not sep or not name or not dims or any(d <= 0 for d in dims):
            raise EdgezooError(f"--inputs {item.strip()!r}: expected NAME:DIMxDIMx..., e.g. input:1x224x224x3",
                               hint="shapes must be static and positive")
        out[name] = dims
    return check_shapes(out, "--inputs")


def plan(request: ExportRequest) -> ExportPlan:
    """The jobs a request asks for, every option checked (EdgezooError, exit 2); nothing fetched or written."""
    if request.graph is None:
        return _zoo_plan(request)
    if request.models or request.every_model:
        raise EdgezooError("--graph exports one file: give no MODEL and no --all with it")
    if request.meta_arch:
        return ExportPlan([_meta_arch_job(request)])
    beside = not (request.inputs or request.outputs) and (request.graph.with_name(CONFIG).is_file()
                                                          or request.graph.name == SAVED_MODEL)
    if request.pipeline_config is not None or request.graph.is_dir() or is_archive(request.graph) or beside:
        return ExportPlan([_od_api_job(request)])
    if request.flags:
        name = next(iter(request.flags))
        raise EdgezooError(f"{flag(name)} applies to {_takers(name)}, not to --graph",
                           hint="--graph takes --param opset=N, nchw=true (.pb -> onnx) or simplify=true "
                                "(.onnx -> onnx)")
    if not (request.inputs or request.outputs):
        refuse_detector_without_route(request.graph)  # a detector file that has its own route says which
    if not request.outputs:
        raise EdgezooError("--graph needs --outputs NAME[,NAME]")
    outputs = [o.strip() for o in request.outputs.split(",") if o.strip()]
    return ExportPlan([graph_job(request.graph, parse_inputs(request.inputs), outputs, request.target,
                                 out_dir=request.out, tolerances=request.tolerances, params=request.params,
                                 ti_package=request.ti_package)])


def run_plan(plan: ExportPlan, on_result: Callable[[ExportResult], None],
             on_error: Callable[[ExportJob, EdgezooError], None]) -> list[ExportResult]:
    """Run the jobs in order. With several, an error ends that job only (a failed row; `on_error` says it)."""
    results = []
    for job in plan.jobs:
        try:
            result = run(job)
        except EdgezooError as exc:
            if plan.single:
                raise
            plan.failed += 1
            on_error(job, exc)
            plan.skipped.append(SkippedRow(job.name, job.target.value, f"error: {exc}", failed=True))
            continue
        on_result(result)
        results.append(result)
    return results


def _od_api_job(request: ExportRequest) -> ExportJob:
    if request.inputs or request.outputs:
        raise EdgezooError("--inputs/--outputs do not apply to an OD API SSD (its heads and input are found in the "
                           "graph)", hint="drop them")
    return od_api_job(request.graph, request.pipeline_config, request.target, out_dir=request.out,
                      params=request.given(), tolerances=request.tolerances, ti_package=request.ti_package,
                      origin=request.origin)


def _meta_arch_job(request: ExportRequest) -> ExportJob:
    if request.target != "onnx":
        raise EdgezooError(f"--meta-arch {request.meta_arch} writes an ONNX model and a prototxt: use --to onnx")
    if request.outputs:
        raise EdgezooError("--meta-arch keeps the model's own outputs: give no --outputs",
                           hint="TIDL runs the graph up to the heads the prototxt names")
    declared = {p.name for p in get_recipe(META_ARCH_RECIPE).params}
    for name in request.flags:
        if name not in declared:
            raise EdgezooError(f"{flag(name)} does not apply to --meta-arch {request.meta_arch}",
                               hint="its parameters: " + ", ".join(sorted(declared)))
    inputs = parse_inputs(request.inputs) if request.inputs else None
    return onnx_ssd_job(request.graph, inputs=inputs, out_dir=request.out, tolerances=request.tolerances,
                        params=request.given(), meta_arch=request.meta_arch, ti_package=request.ti_package,
                        origin=request.origin)


def _cards(request: ExportRequest) -> list[ModelCard]:
    if request.every_model:
        if request.models:
            raise EdgezooError("give model names or --all, not both")
        return list(zoo.all_cards())
    if not request.models:
        raise EdgezooError("no model given", hint="name one or more models (see 'edgezoo list'), use --all, "
                                                  "or --graph FILE for your own")
    cards: dict[str, ModelCard] = {}
    for name in request.models:
        card = zoo.get_card(name)
        cards.setdefault(card.id, card)
    return list(cards.values())


def _zoo_plan(request: ExportRequest) -> ExportPlan:
    """Named models: a flag their recipe does not take is an error. --all: models without a recipe for the target
    are skipped, each option goes to the recipes that declare it, and one that no recipe declares is an error."""
    cards = _cards(request)
    out = ExportPlan([], single=len(cards) == 1)
    given = request.given()
    declared_anywhere: set[str] = set()
    for card in cards:
        spec = next((r for t, r in card.recipes.items() if t.value == request.target), None)
        if spec is None:
            reason = f"no recipe for {request.target} (card targets: {', '.join(t.value for t in card.recipes) or '-'})"
            if not request.every_model:
                raise EdgezooError(f"{card.id}: {reason}")
            out.skipped.append(SkippedRow(card.id, request.target, reason))
            continue
        declared = {p.name for p in get_recipe(spec.name).params}
        declared_anywhere |= declared
        if request.every_model:
            mine = {k: v for k, v in given.items() if k in declared}
        else:
            for name in request.flags:
                if name not in declared:
                    raise EdgezooError(f"{flag(name)} applies to {_takers(name)}, not to {card.id} ({request.target})",
                                       hint=f"drop it; recipe {spec.name} takes: " + ", ".join(sorted(declared)))
            mine = given
        out.jobs.append(card_job(card, request.target, out_dir=request.out, standin=request.standin,
                                 variant=StandinVariant(request.variant), mirror=request.mirror,
                                 offline=request.offline, params=mine, tolerances=request.tolerances,
                                 ti_package=request.ti_package, origin=request.origin))
    unused = [name for name in given if name not in declared_anywhere]
    if request.every_model and unused and out.jobs:
        takers = f" (it applies to {_takers(unused[0])})" if unused[0] in request.flags else ""
        raise EdgezooError(f"{request.origin(unused[0])}: no recipe of the exported models takes it{takers}",
                           hint="'edgezoo info MODEL' lists each recipe's parameters")
    return out


def _takers(name: str) -> str:
    """'ssd-mobilenet-v1 (tflite, onnx)': the zoo models whose recipes declare parameter `name`."""
    found = []
    for card in zoo.all_cards():
        targets = [t.value for t, r in card.recipes.items() if any(p.name == name for p in get_recipe(r.name).params)]
        if targets:
            found.append(f"{card.id} ({', '.join(targets)})")
    return ", ".join(found) or "no model"
