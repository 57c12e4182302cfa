"""Parity between an original model and its conversion: feed both the same inputs, compare what they compute.

    report = verify_models(Path("resnet50_v1.pb"), Path("model.tflite"), card=card)

Outputs are paired by name (ignoring ':0'); a converted output that is an *internal* tensor of the original (a cut
at the logits) is fetched from the original as an extra output, so logits are compared with logits. What remains is
paired by shape. Classification adds top-1 agreement and top-5 overlap, comparing like with like
(verify/classification.py). Detection is delegated to edgezoo.verify.detection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import EdgezooError, tensor_not_found
from edgezoo.datasets.images import verification_images
from edgezoo.graphs import TensorInfo, base_name
from edgezoo.graphs.runners import load_runner
from edgezoo.verify import VERIFY_THREADS
from edgezoo.verify import classification as cls
from edgezoo.verify import tolerances as tol_names
from edgezoo.verify.detection import verify_detection_models
from edgezoo.verify.feeds import build_feeds
from edgezoo.verify.report import ParityReport
from edgezoo.verify.tensors import align, compare
from edgezoo.zoo.schema import ModelCard, ModelFormat, Preprocess

# Re-exported: the tolerance names live in verify/tolerances.py (one list per task).
DEFAULT_TOLERANCES = tol_names.DEFAULT_TOLERANCES
OPTIONAL_TOLERANCES = tol_names.OPTIONAL_TOLERANCES
KNOWN_TOLERANCES = tol_names.KNOWN_TOLERANCES
TASKS = ("classification", "detection", "tensors")


@dataclass(frozen=True)
class OutputPair:
    original: str
    converted: str
    how: str  # "name", "internal tensor", "shape", "given"


def effective_tolerances(card: ModelCard | None, overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Classification/tensor tolerances: defaults, then the card's, then `overrides` (names checked)."""
    tol = dict(DEFAULT_TOLERANCES)
    if card is not None:
        tol.update(card.tolerances)
    tol_names.check_names(overrides or {}, "classification")
    tol.update({key: float(value) for key, value in (overrides or {}).items()})
    return tol


def _roles(card: ModelCard | None) -> dict[str, str]:
    """base tensor name -> role ("logits", "probabilities", "argmax", ...) from every format of the card."""
    roles: dict[str, str] = {}
    if card is None:
        return roles
    for spec in card.formats.values():
        for t in spec.outputs:
            if t.role:
                roles[base_name(t.name)] = t.role
        for role, name in spec.internal.items():
            roles[base_name(name)] = role
    return roles


def _shape_compatible(a: TensorInfo, b: TensorInfo, loose_classes: bool) -> bool:
    """Same shape up to layout/unit dims (batch ignored); with `loose_classes`, [N,C] vs [N,C+-1] too."""
    sa = [d if isinstance(d, int) and d > 0 else 1 for d in a.shape[1:]]
    sb = [d if isinstance(d, int) and d > 0 else 1 for d in b.shape[1:]]
    if not sa and not sb:
        return a.dtype == b.dtype
    try:
        align(np.zeros([1] + sa), np.zeros([1] + sb))
        return True
    except ValueError:
        pass
    return loose_classes and len(sa) == len(sb) == 1 and abs(sa[0] - sb[0]) == 1


def pair_outputs(original_outputs: Sequence[TensorInfo], original_names: Sequence[str],
                 converted_outputs: Sequence[TensorInfo], given: Mapping[str, str] | None,
                 loose_classes: bool, where: str) -> tuple[list[OutputPair], list[str]]:
    """Pairs (original tensor, converted output) and the converted outputs left without a counterpart."""
    pairs: list[OutputPair] = []
    conv_names = [o.name for o in converted_outputs]
    orig_by_base = {base_name(n): n for n in original_names}
    for o in original_outputs:  # the original's own outputs win over same-named internal tensors
        orig_by_base[base_name(o.name)] = o.name
    for orig, conv in (given or {}).items():
        c = next((n for n in conv_names if base_name(n) == base_name(conv)), None)
        if c is None:
            raise tensor_not_found(conv, conv_names, f"{where} (converted)", "output")
        o = orig_by_base.get(base_name(orig))
        if o is None:
            raise tensor_not_found(orig, original_names, f"{where} (original)", "tensor")
        pairs.append(OutputPair(o, c, "given"))
    done = {p.converted for p in pairs}
    default_names = {o.name for o in original_outputs}
    for c in conv_names:
        if c in done:
            continue
        o = orig_by_base.get(base_name(c))
        if o is not None:
            pairs.append(OutputPair(o, c, "name" if o in default_names else "internal tensor"))
            done.add(c)
    used = {p.original for p in pairs}
    left: list[str] = []
    for info in converted_outputs:
        if info.name in done:
            continue
        candidates = [o for o in original_outputs if o.name not in used and _shape_compatible(o, info, loose_classes)]
        if len(candidates) == 1:
            pairs.append(OutputPair(candidates[0].name, info.name, "shape"))
            used.add(candidates[0].name)
        else:
            left.append(info.name)
    return pairs, left


def _batch_row(value: np.ndarray, batch: int = 1) -> np.ndarray:
    """One input's output as a batch of one (outputs without a batch axis get one; of a fixed batch of copies of
    the same input, the first row)."""
    v = np.asarray(value)
    if batch > 1 and v.ndim and v.shape[0] == batch:
        return v[:1]
    return v if v.ndim and v.shape[0] == 1 else v[None]


def _run_all(runner, feeds: list[dict[str, np.ndarray]], outputs: list[str], batch: int = 1) -> dict[str, np.ndarray]:
    """Every feed through `runner` (batch 1 each, or `batch` copies), each output stacked over the inputs."""
    runs = [runner.run(feed, outputs) for feed in feeds]
    stacked = {}
    for name in outputs:
        rows = [_batch_row(r[name], batch) for r in runs]
        if len({r.shape for r in rows}) > 1:
            raise EdgezooError(f"{runner.path}: output {name} changes shape between inputs "
                               f"({', '.join(str(list(r.shape)) for r in rows[:3])})",
                               hint="compare fixed-size outputs, or use --task detection for detections")
        stacked[name] = np.concatenate(rows)
    return stacked


def _detect_task(pairs: list[OutputPair], orig: dict, conv: dict, roles: dict[str, str]) -> str:
    for p in pairs:
        a = cls.scores(p.original, orig[p.original], roles.get(base_name(p.original), ""))
        b = cls.scores(p.converted, conv[p.converted], roles.get(base_name(p.converted), ""))
        if a and b and (cls.ScoreKind.LOGITS not in (a.kind, b.kind) or (b.num_classes or 0) >= 10):
            return "classification"
    return "tensors"


def _add_tensor_checks(report: ParityReport, label: str, a: np.ndarray, b: np.ndarray, names: tuple[str, str],
                       tol: Mapping[str, float], note: str = "") -> None:
    try:
        stats = compare(a, b, *names)
    except ValueError as exc:
        report.add(f"{label}: shape", float("nan"), 0.0)
        report.notes.append(f"{label}: {exc}")
        return
    data = stats.to_dict()
    if note:
        data["note"] = "; ".join(x for x in (note, stats.note) if x)
    report.metrics["outputs"][label] = data
    if data.get("note"):
        report.notes.append(f"{label}: {data['note']}")
    report.add(f"{label}: max_abs_error", stats.max_abs_error, tol["max_abs_error"], "max")
    report.add(f"{label}: cosine", stats.cosine, tol["min_cosine"], "min")
    if "max_rel_error" in tol:
        report.add(f"{label}: max_rel_error", stats.max_rel_error, tol["max_rel_error"], "max")
    if "max_mean_abs_error" in tol:
        report.add(f"{label}: mean_abs_error", stats.mean_abs_error, tol["max_mean_abs_error"], "max")
    if "min_sqnr_db" in tol:
        report.add(f"{label}: sqnr_db", stats.sqnr_db, tol["min_sqnr_db"], "min")


def compare_pairs(report: ParityReport, pairs: Sequence[OutputPair], orig: Mapping[str, np.ndarray],
                  conv: Mapping[str, np.ndarray], roles: Mapping[str, str], tol: Mapping[str, float],
                  card: ModelCard | None) -> None:
    """Add the per-output statistics and checks (and the top-k figures for classification) to `report`."""
    primary: tuple[int, cls.ClassScores, cls.ClassScores] | None = None
    rank = {cls.ScoreKind.LOGITS: 0, cls.ScoreKind.PROBABILITIES: 1, cls.ScoreKind.ARGMAX: 2}
    classified: list[tuple[str, cls.ClassScores, cls.ClassScores]] = []
    for p in pairs:
        a, b = orig[p.original], conv[p.converted]
        label = p.converted
        so = sc = None
        if report.task == "classification":
            so = cls.scores(p.original, a, roles.get(base_name(p.original), ""))
            sc = cls.scores(p.converted, b, roles.get(base_name(p.converted), ""))
        if so is None or sc is None:
            _add_tensor_checks(report, label, a, b, (p.original, p.converted), tol)
            continue
        labels = card.labels if card is not None else None
        cls.assign_offsets(so, sc, labels.num_classes if labels else None, labels.offset if labels else None)
        same = cls.like_with_like(so, sc)
        if same is not None:
            _add_tensor_checks(report, label, same[0], same[1], (p.original, p.converted), tol, same[2])
        score = rank[so.kind] + rank[sc.kind]
        classified.append((label, so, sc))
        if primary is None or score < primary[0]:
            primary = (score, so, sc)
    if report.task == "classification":
        if primary is None:
            raise EdgezooError(f"{report.converted}: no classification output (logits, probabilities or argmax) to "
                               "compare", hint="use --task tensors")
        _, so, sc = primary
        top = cls.compare_topk(so, sc, report.inputs)
        report.metrics["classification"] = {
            "compared": top.compared, "images": top.images, "top1_agreement": top.top1_agreement,
            "top5_overlap": top.top5_overlap, "distinct_top1": top.distinct_top1,
            "disagreements": top.disagreements}
        report.add("top1_agreement", top.top1_agreement, tol["min_top1_agreement"], "min")
        # An argmax output compared beside the primary pair still has to agree (it is what the user reads).
        for label, a, b in classified:
            if a is not so and cls.ScoreKind.ARGMAX in (a.kind, b.kind):
                report.add(f"{label}: top1_agreement", cls.compare_topk(a, b).top1_agreement,
                           tol["min_top1_agreement"], "min")
        if top.top5_overlap is not None:
            report.add("top5_overlap", top.top5_overlap, tol["min_top5_overlap"], "min")
        if top.distinct_top1 <= 1 and top.images > 1:
            report.notes.append(f"all {top.images} inputs have the same original top-1: top-1 agreement proves "
                                "little (are the weights realistic?)")


def verify_models(original: Path, converted: Path, *, card: ModelCard | None = None, task: str | None = None,
                  tolerances: Mapping[str, float] | None = None, pairs: Mapping[str, str] | None = None,
                  converted_outputs: Sequence[str] | None = None,
                  images: Sequence[tuple[str, np.ndarray]] | None = None, preprocess: Preprocess | None = None,
                  count_random: int = 2, seed: int = 0, standin: bool = False,
                  chosen: Mapping[str, Any] | None = None) -> ParityReport:
    """Run `original` and `converted` on the same verification inputs and compare their outputs.

    card: preprocessing, output roles, label offset and tolerances (else the defaults; see verify/feeds.py).
    task: "classification" | "detection" | "tensors" (default: the card's task, else guessed from the outputs).
    tolerances: override the card's/defaults (names: verify/tolerances.py, per task).
    pairs: explicit {original tensor: converted output} pairs, for names that differ.
    converted_outputs: the converted outputs to compare (default: all of its outputs).
    chosen: detection only: output limits the user chose (verify.detection.compare_detectors).
    """
    original, converted = Path(original), Path(converted)
    if task is not None and task not in TASKS:
        raise EdgezooError(f"unknown task {task!r}", hint="tasks: " + ", ".join(TASKS))
    task = task or (card.task.value if card is not None else None)
    if task == "detection":
        # Detection has its own figures, defaults and tolerance names (checked here, before any model is loaded).
        tol_names.check_names(tolerances or {}, "detection")
        return verify_detection_models(original, converted, card=card, tolerances=dict(tolerances or {}),
                                       images=images, standin=standin, count_random=count_random, seed=seed,
                                       chosen=chosen)
    tol = effective_tolerances(card, tolerances)
    if images is None:
        images = verification_images(count_random=count_random, seed=seed)

    runners = []  # closed once their values are read: a TF session holds the graph's buffers
    try:
        conv_runner = load_runner(converted, outputs=converted_outputs, threads=VERIFY_THREADS)
        runners.append(conv_runner)
        orig_probe = load_runner(original, threads=VERIFY_THREADS)
        runners.append(orig_probe)
        roles = _roles(card)
        where = f"{converted.name} vs {original.name}"
        out_pairs, unmatched = pair_outputs(orig_probe.outputs, orig_probe.tensor_names(), conv_runner.outputs, pairs,
                                            loose_classes=task in (None, "classification"), where=where)
        if not out_pairs:
            raise EdgezooError(
                f"{where}: no output of the converted model has a counterpart in the original "
                f"(converted: {', '.join(o.name for o in conv_runner.outputs)}; "
                f"original: {', '.join(o.name for o in orig_probe.outputs)})",
                hint="name the pairs with --pair ORIGINAL_TENSOR=CONVERTED_OUTPUT")
        orig_names = list(dict.fromkeys(p.original for p in out_pairs))
        orig_runner = orig_probe
        if ModelFormat.of(original) is ModelFormat.TFLITE and \
                not set(orig_names) <= {o.name for o in orig_probe.outputs}:
            # LiteRT keeps intermediate tensors only when told so at load time; the other runners fetch any tensor.
            orig_runner = load_runner(original, outputs=orig_names, threads=VERIFY_THREADS)
            runners.append(orig_runner)
        spec = preprocess or (card.preprocess if card is not None else None)
        feeds = build_feeds(orig_runner.inputs, conv_runner.inputs, images, spec, seed=seed)
        orig_values = _run_all(orig_runner, feeds.original, orig_names, feeds.batch)
        conv_values = _run_all(conv_runner, feeds.converted, list(dict.fromkeys(p.converted for p in out_pairs)),
                               feeds.batch)
    finally:
        for runner in runners:
            runner.close()
    task = task or _detect_task(out_pairs, orig_values, conv_values, roles)

    report = ParityReport(original=str(original), converted=str(converted), task=task, standin=standin,
                          inputs=list(feeds.names))
    report.metrics = {"preprocess": feeds.preprocess, "tolerances": tol,
                      "pairs": [{"original": p.original, "converted": p.converted, "matched_by": p.how}
                                for p in out_pairs],
                      "outputs": {}, "not_compared": unmatched}
    if unmatched:
        report.notes.append("not compared (no counterpart in the original): " + ", ".join(unmatched))
    if feeds.batch > 1:
        report.notes.append(f"fixed batch {feeds.batch}: each input repeated {feeds.batch} times, the first row of "
                            "every output compared")
    compare_pairs(report, out_pairs, orig_values, conv_values, roles, tol, card)
    return report
