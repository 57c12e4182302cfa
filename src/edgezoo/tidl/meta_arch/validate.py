"""Validate a caffe_ssd meta-architecture prototxt against the ONNX graph it will be imported with.

TIDL's importer does these checks unkindly or not at all: a head name that matches nothing gives "Number of OD
backbone nodes = 0" and a hang; a missing step or input size exits silently; a wrong variance or output count exits;
a name of 512+ characters crashes it. Here every problem is collected with its field path and what was expected,
then reported together: `validate_meta_arch` returns the list (errors and warnings), `check_meta_arch` raises one
ConfigError listing every error.

Grids come from shape inference with the model's input fixed to in_height x in_width (as TIDL compiles it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgezoo.core.errors import ConfigError, RecipeError, closest
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import find_heads, fix_image_input
from edgezoo.tidl.meta_arch.priors import priors_per_location
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, MetaArch

MAX_NAME = 511  # TIDL's importer crashes on names of 512 characters or more


@dataclass(frozen=True)
class Problem:
    field: str  # e.g. "caffe_ssd.prior_box_param[2].variance"
    message: str  # what is wrong and what was expected
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class _Graph:
    """What the checks need from the model: first outputs, node names, outputs, inputs and inferred shapes."""

    def __init__(self, model: Any, in_h: int | None, in_w: int | None) -> None:
        self.outputs = onnx_model.output_names(model)
        self.inputs = onnx_model.graph_inputs(model)
        self.first_output: dict[str, Any] = {}
        self.other_output: dict[str, tuple[Any, int]] = {}
        self.by_node_name: dict[str, Any] = {}
        for node in model.graph.node:
            if node.output:
                self.first_output.setdefault(node.output[0], node)
            for k, out in enumerate(node.output[1:], 1):
                self.other_output[out] = (node, k)
            if node.name:
                self.by_node_name[node.name] = node
        self.input_hw = self._input_hw()
        fixed = model
        if in_h and in_w and self.input_hw != (in_h, in_w):
            fixed = fix_image_input(model, in_h, in_w)
        inferred = onnx_model.infer_shapes(fixed)
        self.shapes = {n: onnx_model.info(v).shape for n, v in onnx_model.value_infos(inferred).items()}
        self.inits = {i.name for i in model.graph.initializer}

    def _input_hw(self) -> tuple[Any, Any] | None:
        if len(self.inputs) != 1:
            return None
        dims = self.inputs[0].type.tensor_type.shape.dim
        if len(dims) != 4:
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims[2:])  # type: ignore

    def channels_grid(self, tensor: str) -> tuple[int | None, tuple[int, int] | None]:
        shape = self.shapes.get(tensor)
        if not shape or len(shape) != 4:
            return None, None
        c = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else None
        hw = (shape[2], shape[3]) if all(isinstance(d, int) and d > 0 for d in shape[2:]) else None
        return c, hw  # type: ignore[return-value]


def _check_tensor(g: _Graph, name: str, path: str, expected: str | None = None) -> list[Problem]:
    if len(name) > MAX_NAME:
        return [Problem(path, f"name of {len(name)} characters; TIDL's importer crashes on 512 or more "
                              "(rename the tensor; edgezoo export does it)")]
    if name in g.first_output:
        node = g.first_output[name]
        if node.op_type != "Conv":
            return [Problem(path, f"{name!r} is the output of a {node.op_type} node {node.name!r}; SSD heads are "
                                  "the Conv outputs before the Reshape", "warning")]
        return []
    if name in g.other_output:
        node, k = g.other_output[name]
        return [Problem(path, f"{name!r} is output {k} of node {node.name!r}; TIDL matches only a node's FIRST "
                              f"output (expected {node.output[0]!r})")]
    if name in g.by_node_name:
        node = g.by_node_name[name]
        return [Problem(path, f"{name!r} is a node NAME; TIDL matches output tensor names: expected "
                              f"{node.output[0]!r} (the first output of {node.op_type} {name!r})")]
    if expected:  # the head found by structure at this position beats any spelling guess
        node = g.first_output.get(expected)
        hint = f"; the graph's head at this position is {expected!r} (first output of {node.op_type} " \
               f"{node.name!r})" if node is not None else f"; expected {expected!r}"
    else:
        near = closest(name, g.first_output)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    return [Problem(path, f"no node's first output is named {name!r} (TIDL would report 'Number of OD backbone "
                          f"nodes = 0' and hang){hint}")]


def _check_priors(ssd: CaffeSsd, g: _Graph, num_classes: int | None) -> list[Problem]:
    problems = []
    in_h, in_w = ssd.in_height, ssd.in_width
    for k, p in enumerate(ssd.prior_box_param):
        path = f"caffe_ssd.prior_box_param[{k}]"
        step_h, step_w = p.effective_steps()
        if step_h is None or step_w is None:
            problems.append(Problem(f"{path}.step", "missing: set step (or step_h and step_w) in input pixels; "
                                                    "TIDL's importer exits silently without it"))
        if len(p.variance) != 4:
            problems.append(Problem(f"{path}.variance", f"{len(p.variance)} value(s) given, exactly 4 expected "
                                                        "(e.g. 0.1 0.1 0.2 0.2)"))
        if not p.min_size:
            problems.append(Problem(f"{path}.min_size", "missing: at least one min_size is required"))
        if p.max_size and len(p.max_size) != len(p.min_size):
            problems.append(Problem(f"{path}.max_size", f"{len(p.max_size)} given for {len(p.min_size)} min_size; "
                                                        "expected one per min_size or none"))
        for i, (lo, hi) in enumerate(zip(p.min_size, p.max_size)):
            if hi <= lo:
                problems.append(Problem(f"{path}.max_size[{i}]", f"{hi} must be larger than min_size {lo}"))
            if not float(hi).is_integer():
                problems.append(Problem(f"{path}.max_size[{i}]", f"{hi} is cast to int ({int(hi)}) by TIDL",
                                        "warning"))
        if any(r <= 0 for r in p.aspect_ratio):
            problems.append(Problem(f"{path}.aspect_ratio", "aspect ratios must be positive"))
        if k >= len(ssd.box_input) or not p.min_size:
            continue
        anchors = priors_per_location(p)
        for kind, tensors, rows in (("box_input", ssd.box_input, 4), ("class_input", ssd.class_input, num_classes)):
            if k >= len(tensors) or rows is None:
                continue
            channels, grid = g.channels_grid(tensors[k])
            if channels is not None and channels != anchors * rows:
                problems.append(Problem(
                    f"caffe_ssd.{kind}[{k}]",
                    f"{tensors[k]!r} has {channels} channels; prior_box_param[{k}] gives {anchors} priors per "
                    f"location, so {anchors} x {rows} = {anchors * rows} channels are expected"))
            if kind == "box_input" and grid is not None and step_h and step_w and in_h and in_w:
                img_h, img_w = p.image_size(in_h, in_w)
                # Caffe's PriorBox takes the grid from the head and the step only spaces the centres: Caffe's own
                # SSD300 has a 38x38 head at step 8 (300 / 8 = 37.5). A grid that is neither floor nor ceil of
                # image / step is a wrong step.
                want = (int(img_h / step_h + 1e-6), int(img_w / step_w + 1e-6))  # type: ignore[operator]
                fits = all(abs(g - img / s) < 1 - 1e-6 or g == w for g, img, s, w in
                           zip(grid, (img_h, img_w), (step_h, step_w), want))  # type: ignore[arg-type]
                if not fits:
                    problems.append(Problem(
                        f"{path}.step", f"head {tensors[k]!r} is a {grid[0]}x{grid[1]} grid but image/step = "
                                        f"{img_h}/{step_h} x {img_w}/{step_w} gives {want[0]}x{want[1]}"))
                elif abs(img_w / step_w - grid[1]) > 1e-3 or abs(img_h / step_h - grid[0]) > 1e-3:
                    problems.append(Problem(
                        f"{path}.step", f"image/step = {img_w / step_w:.4g} is not the grid size {grid[1]}: prior "
                                        f"centres drift by up to {(grid[1] - 0.5) * abs(step_w / img_w - 1 / grid[1]):.3g}"
                                        f" of the image (step {img_w / grid[1]:.6g} would centre them on the cells)",
                        "warning"))
    return problems


def validate_meta_arch(meta: MetaArch, model: Any) -> list[Problem]:
    """Every problem of `meta` (a parsed prototxt) against `model` (an ONNX ModelProto), errors and warnings."""
    if len(meta.caffe_ssd) != 1:
        return [Problem("caffe_ssd", f"{len(meta.caffe_ssd)} blocks; exactly one is expected for ONNX SSD "
                                     "(object_detection:meta_arch_type 3)")]
    ssd = meta.caffe_ssd[0]
    problems: list[Problem] = []
    if meta.name is None:
        problems.append(Problem("name", "missing (a required field of TIDLMetaArch)"))
    for key in ("in_width", "in_height"):
        value = getattr(ssd, key)
        if value is None:
            problems.append(Problem(f"caffe_ssd.{key}", "missing: set the network input size in pixels; TIDL's "
                                                        "importer exits silently without it"))
        elif value <= 0:
            problems.append(Problem(f"caffe_ssd.{key}", f"must be positive, got {value}"))
    g = _Graph(model, ssd.in_height, ssd.in_width)
    if g.input_hw and ssd.in_height and ssd.in_width:
        for key, have, want in (("in_height", g.input_hw[0], ssd.in_height), ("in_width", g.input_hw[1],
                                                                               ssd.in_width)):
            if isinstance(have, int) and have != want:
                problems.append(Problem(f"caffe_ssd.{key}", f"{want} but the model input is {have}"))

    # heads
    heads = _structural_heads(ssd, model)
    n_prior = len(ssd.prior_box_param)
    for key in ("box_input", "class_input"):
        names = getattr(ssd, key)
        found = (heads.box_inputs if key == "box_input" else heads.class_inputs) if heads else []
        if len(names) != n_prior:
            problems.append(Problem(f"caffe_ssd.{key}", f"{len(names)} given; expected one per prior_box_param "
                                                        f"({n_prior})"))
        if found and len(names) != len(found):
            problems.append(Problem(f"caffe_ssd.{key}", f"{len(names)} given; the graph has {len(found)} heads "
                                                        f"({', '.join(found)})"))
        for i, name in enumerate(names):
            problems += _check_tensor(g, name, f"caffe_ssd.{key}[{i}]", found[i] if i < len(found) else None)
    dup = set(ssd.box_input) & set(ssd.class_input)
    if dup:
        problems.append(Problem("caffe_ssd.class_input", f"{sorted(dup)} also listed as box_input"))

    # outputs
    if len(ssd.output) != len(g.outputs):
        problems.append(Problem("caffe_ssd.output", f"{len(ssd.output)} given, the graph has {len(g.outputs)} "
                                                    f"({', '.join(g.outputs)}); the counts must match"))
    for i, name in enumerate(ssd.output):
        if len(name) > MAX_NAME:
            problems.append(Problem(f"caffe_ssd.output[{i}]", f"name of {len(name)} characters (512+ crashes TIDL)"))
        elif name not in g.outputs:
            near = closest(name, g.outputs)
            problems.append(Problem(f"caffe_ssd.output[{i}]", f"{name!r} is not a graph output; expected one of "
                                                              f"{', '.join(g.outputs)}" +
                                    (f" (did you mean {near[0]!r}?)" if near else "")))
    if sorted(ssd.output) == sorted(g.outputs) and list(ssd.output) != g.outputs:
        problems.append(Problem("caffe_ssd.output", f"listed in another order than the graph's ({', '.join(g.outputs)})",
                                "warning"))

    # detection output
    dop = ssd.detection_output_param
    num_classes = dop.num_classes if dop else None
    if dop is None:
        problems.append(Problem("caffe_ssd.detection_output_param", "missing: num_classes, nms_param, code_type, "
                                                                    "keep_top_k and confidence_threshold go there"))
    else:
        base = "caffe_ssd.detection_output_param"
        if dop.num_classes is None or dop.num_classes < 2:
            problems.append(Problem(f"{base}.num_classes", "missing or < 2: the class count including background"))
        if dop.code_type is None:
            problems.append(Problem(f"{base}.code_type", "missing: the schema default is CORNER; set CENTER_SIZE "
                                                         "(or the box coding the model uses) explicitly"))
        if dop.nms_param is None or dop.nms_param.nms_threshold is None:
            problems.append(Problem(f"{base}.nms_param.nms_threshold", "missing (e.g. 0.5)"))
        if dop.nms_param is None or dop.nms_param.top_k is None:
            problems.append(Problem(f"{base}.nms_param.top_k", "missing: candidates per class before NMS",
                                    "warning"))
        if dop.keep_top_k is None:
            problems.append(Problem(f"{base}.keep_top_k", "missing: detections kept after NMS", "warning"))
        if dop.confidence_threshold is None:
            problems.append(Problem(f"{base}.confidence_threshold", "missing: every candidate enters NMS",
                                    "warning"))
        if dop.share_location is False:
            problems.append(Problem(f"{base}.share_location", "false is not supported for ONNX SSD"))
    if ssd.data_layout is None:
        problems.append(Problem("caffe_ssd.data_layout", "missing: INTERLEAVED (channel = coord x boxes + box, "
                                                         "MLPerf ResNet34-SSD) or SEPARATED (box x 4 + coord)"))
    if ssd.score_converter is None:
        problems.append(Problem("caffe_ssd.score_converter", "not set: TIDL uses SOFTMAX", "warning"))
    problems += _check_priors(ssd, g, num_classes)
    if heads is not None:
        problems += _check_structure(ssd, heads)
    return problems


def _structural_heads(ssd: CaffeSsd, model: Any) -> Any:
    """The heads found by structure (onnx_heads), or None for a graph already cut at the heads or an unusual one
    (the name checks still apply then)."""
    num_classes = ssd.detection_output_param.num_classes if ssd.detection_output_param else None
    for wanted in dict.fromkeys((num_classes, None)):
        try:
            return find_heads(model, wanted)
        except RecipeError:
            continue
    return None


def _check_structure(ssd: CaffeSsd, heads: Any) -> list[Problem]:
    """Compare with the heads found by structure: same (prior) order, same layout."""
    problems = []
    if ssd.data_layout is not None and ssd.data_layout != heads.layout:
        problems.append(Problem("caffe_ssd.data_layout", f"{ssd.data_layout.name}, but the graph reshapes its "
                                                         f"heads as {heads.layout.name}"))
    for key, found in (("box_input", heads.box_inputs), ("class_input", heads.class_inputs)):
        given = list(getattr(ssd, key))
        if sorted(given) == sorted(found) and given != found:
            problems.append(Problem(f"caffe_ssd.{key}", f"order differs from the graph's prior order "
                                                        f"({', '.join(found)}): priors would go to the wrong heads"))
    return problems


def errors_of(problems: Sequence[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def check_meta_arch(meta: MetaArch, model: Any, where: str = "prototxt") -> list[Problem]:
    """Raise ConfigError listing every error (field: message; ...); return the warnings."""
    problems = validate_meta_arch(meta, model)
    errors = errors_of(problems)
    if errors:
        raise ConfigError(f"{where}: {len(errors)} problem(s): " + "; ".join(str(p) for p in errors),
                          hint="fix the fields named; 'edgezoo export' generates a valid file from the model")
    return [p for p in problems if p.severity != "error"]
