"""`check --target tidl`: every operator TIDL cannot run (with the reason) and the proposed cut.

The runnable part is grown forward from the graph inputs: a node joins when TIDL supports it (per tidl/ops.py) and
every non-constant input it reads comes from the inputs or from nodes already in. The proposed cut is the set of
tensors where that part ends: tensors it produces that a node outside it reads, or that are graph outputs. On
ResNet50 (tf2onnx) that is exactly the logits, `resnet_model/dense/BiasAdd:0`: the softmax on the class axis and the
2-D ArgMax behind it are not TIDL layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import EdgezooError, RecipeError
from edgezoo.core.report import render_table, to_jsonable
from edgezoo.graphs import onnx_model, tflite_model
from edgezoo.graphs.onnx_values import all_nodes
from edgezoo.ssd.onnx_heads import find_heads
from edgezoo.ssd.onnx_ssd_decode import read_decode
from edgezoo.ssd.onnx_ssd_input import prepare_input
from edgezoo.tidl.ops import NodeView, Verdict, onnx_verdict, tflite_verdict
from edgezoo.zoo.schema import ModelFormat

MAX_SUBGRAPHS = 16  # TIDL offloads at most this many subgraphs
MAX_NAME_LENGTH = 512  # longer tensor names crash the TIDL import
MAX_OPSET = 19  # newest ONNX opset TIDL was validated with


@dataclass(frozen=True)
class Finding:
    node: str
    op: str
    reason: str


@dataclass
class CheckReport:
    file: str
    format: str  # "onnx" | "tflite"
    target: str
    nodes: int  # compute nodes (constants left out)
    runnable: int  # nodes in the TIDL-runnable part connected to the inputs
    unsupported: list[Finding] = field(default_factory=list)
    limited: list[Finding] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)  # tensors where the runnable part ends
    whole_graph: bool = False
    subgraphs: int = 0  # islands of supported nodes TIDL would offload separately
    notes: list[str] = field(default_factory=list)
    detection_tail: int = 0  # SSD: nodes after the heads that TIDL's detection layer replaces

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def render(self) -> str:
        lines = [f"{self.file}: {self.format}, {self.nodes} nodes; target {self.target}"]
        if self.unsupported:
            lines.append(f"{len(self.unsupported)} node(s) TIDL cannot run:")
            lines.append(render_table(["node", "op", "reason"],
                                      [[f.node, f.op, f.reason] for f in self.unsupported]))
        else:
            lines.append("every node is TIDL-runnable")
        for f in self.limited:
            lines.append(f"limited: {f.node} ({f.op}): {f.reason}")
        if self.detection_tail:
            lines.append(f"SSD detection tail: {self.detection_tail} node(s) after the heads become TIDL's detection "
                         "layer (caffe_ssd meta-architecture); they are not listed above")
        if self.whole_graph:
            lines.append("proposed cut: none needed (the whole graph runs on TIDL)")
        elif self.cut:
            lines.append(f"proposed cut ({self.runnable} of {self.nodes} nodes stay on TIDL): " + ", ".join(self.cut))
        else:
            lines.append("proposed cut: none -- nothing TIDL can run is connected to the inputs")
        lines.append(f"TIDL subgraphs if run uncut: {self.subgraphs} (limit {MAX_SUBGRAPHS})")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class _Node:
    """One compute node, format-independent, for the propagation."""

    name: str
    op: str
    inputs: list[str]  # tensor keys ("" = absent optional input)
    outputs: list[str]
    verdict: Verdict


def _propagate(nodes: Sequence[_Node], graph_inputs: Sequence[str], graph_outputs: Sequence[str],
               consts: set[str]) -> tuple[list[int], list[str], int]:
    """Indices of the runnable part, its cut tensors, and the number of supported islands."""
    reach = set(graph_inputs)
    runnable: list[int] = []
    for k, node in enumerate(nodes):
        data = [i for i in node.inputs if i and i not in consts]
        if node.verdict.supported and data and all(i in reach for i in data):
            runnable.append(k)
            reach.update(node.outputs)
    inside = set(runnable)
    readers: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        for i in node.inputs:
            readers.setdefault(i, []).append(k)
    outputs = set(graph_outputs)
    cut = [t for k in runnable for t in nodes[k].outputs
           if t in outputs or any(r not in inside for r in readers.get(t, []))]
    # Islands: supported nodes connected through tensors (union-find).
    parent = {k: k for k, n in enumerate(nodes) if n.verdict.supported}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    producer = {t: k for k, n in enumerate(nodes) for t in n.outputs}
    for k in parent:
        for i in nodes[k].inputs:
            src = producer.get(i)
            if src is not None and src in parent:
                parent[find(k)] = find(src)
    islands = len({find(k) for k in parent})
    return runnable, cut, islands


def _report(path: Path, fmt: str, nodes: list[_Node], graph_inputs: Sequence[str], graph_outputs: Sequence[str],
            consts: set[str], display: Callable[[str], str] = str) -> CheckReport:
    runnable, cut, islands = _propagate(nodes, graph_inputs, graph_outputs, consts)
    report = CheckReport(str(path), fmt, "tidl", len(nodes), len(runnable), subgraphs=islands)
    report.unsupported = [Finding(n.name, n.op, n.verdict.reason) for n in nodes if not n.verdict.supported]
    report.limited = [Finding(n.name, n.op, n.verdict.limited) for n in nodes if n.verdict.limited]
    report.whole_graph = not report.unsupported and len(runnable) == len(nodes)
    report.cut = [display(t) for t in (list(graph_outputs) if report.whole_graph else cut)]
    if islands > MAX_SUBGRAPHS:
        report.notes.append(f"uncut, TIDL would need {islands} subgraphs (limit {MAX_SUBGRAPHS}): cut the graph")
    long_names = [display(t) for n in nodes for t in n.outputs if len(display(t)) >= MAX_NAME_LENGTH]
    if long_names:
        report.notes.append(f"{len(long_names)} tensor name(s) of {MAX_NAME_LENGTH}+ characters crash the TIDL "
                            f"import, e.g. {long_names[0][:60]}...")
    return report


# ----------------------------------------------------------------------------------------------------------------
# ONNX


def _onnx_attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute
            if a.type not in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)}


def _constant_value(node: Any) -> np.ndarray | None:
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_ints", "value_floats"):
            return np.asarray(list(a.ints) if a.name == "value_ints" else list(a.floats))
        if a.name in ("value_int", "value_float"):
            return np.asarray(a.i if a.name == "value_int" else a.f)
    return None


def check_onnx(path: Path) -> CheckReport:
    from onnx import numpy_helper

    path = Path(path)
    model = onnx_model.infer_shapes(onnx_model.load(path))
    opset = onnx_model.opset(model)
    shapes = {name: onnx_model.info(vi).shape if vi.type.tensor_type.HasField("shape") else None
              for name, vi in onnx_model.value_infos(model).items()}
    inits = {i.name: i for i in model.graph.initializer}
    values: dict[str, np.ndarray] = {}
    consts = set(inits)
    graph_inputs = onnx_model.input_names(model)
    graph_outputs = onnx_model.output_names(model)
    nodes: list[_Node] = []

    def value(name: str) -> np.ndarray | None:
        if name in values:
            return values[name]
        init = inits.get(name)
        if init is not None and np.prod(init.dims, dtype=np.int64) <= 4096:  # axes, shapes, scales: small
            values[name] = numpy_helper.to_array(init)
            return values[name]
        return None

    shape_math: set[str] = set()  # tensors computed from a Shape at run time (shape arithmetic)
    for k, node in enumerate(model.graph.node):
        ins = list(node.input)
        data_ins = [i for i in ins if i and i not in consts]
        if node.op_type == "Constant":
            consts.update(node.output)
            v = _constant_value(node)
            if v is not None:
                values.update({o: v for o in node.output})
            continue
        if ins and all((not i) or i in consts for i in ins) and node.op_type not in ("RandomNormal", "RandomUniform"):
            consts.update(node.output)  # folded at import: a constant sub-graph is not a layer
            continue
        view = NodeView(node.op_type, _onnx_attrs(node), [shapes.get(i) if i else None for i in ins],
                        [value(i) if i else None for i in ins], [shapes.get(o) for o in node.output],
                        any(i in graph_inputs for i in ins), any(o in graph_outputs for o in node.output),
                        opset, [(not i) or i in consts for i in ins])
        verdict = onnx_verdict(view, node.domain)
        if node.op_type == "Shape" or (data_ins and all(i in shape_math for i in data_ins)):
            shape_math.update(node.output)
            if node.op_type != "Shape":
                # Gather/Concat/Cast on shape vectors: not layers, but Arm-side work until the shape is folded.
                verdict = Verdict(False, f"{node.op_type} in a run-time shape computation (fed by Shape); fix the "
                                         "batch and simplify the model so it folds to a constant")
        nodes.append(_Node(node.name or f"{node.op_type}_{k}", node.op_type, ins, list(node.output), verdict))
    report = _report(path, "onnx", nodes, graph_inputs, graph_outputs, consts)
    _recognise_ssd_tail(report, model, nodes, path)
    if opset > MAX_OPSET:
        report.notes.append(f"opset {opset}: TIDL was validated with ONNX opset <= {MAX_OPSET}")
    return report


def _recognise_ssd_tail(report: CheckReport, model: Any, nodes: list[_Node], path: Path) -> None:
    """An SSD whose decoding is in the graph (heads -> decode -> NonMaxSuppression): TIDL runs the graph up to the
    heads and its caffe_ssd detection layer does the rest. The cut is then the heads alone -- not the backbone
    feature maps that feed Shape for the heads' reshape targets -- and the tail's ops are not TIDL's problem."""
    if not any(n.op_type == "NonMaxSuppression" for n in all_nodes(model)):
        return
    where = str(path)
    unverified = ""
    try:
        cut = prepare_input(model, where)
        heads = find_heads(cut.model, where=where)
        read_decode(cut.model, heads, where, image=cut.size)  # what export reads: propose only what it takes
    except EdgezooError as exc:
        if "no static shape" not in exc.message:
            report.notes.append("SSD post-processing in the graph (NonMaxSuppression), but export --meta-arch ssd "
                                f"cannot take it as it is: {exc.message}" + (f" -- {exc.hint}" if exc.hint else ""))
            return
        try:  # a symbolic input: the heads can be found, the decoding only read once the input has a size
            cut, heads = None, find_heads(model, where=where)
        except RecipeError:
            return
        unverified = (f"; the decoding is read once the input has a static size: {exc.hint or exc.message} with "
                      "export")
    if cut is not None and cut.cut is not None:
        model = cut.model
        report.notes.append(f"in-graph preprocessing cut off: TIDL's model starts at {cut.cut!r} (" +
                            "; ".join(cut.notes) + ")")
    producers = onnx_model.producers(model)
    head_side: set[str] = set()  # first outputs of the heads' nodes and of everything they are computed from
    queue = [t for h in heads.heads for t in (h.box_tensor, h.class_tensor)]
    while queue:
        node = producers.get(queue.pop())
        if node is None or node.output[0] in head_side:
            continue
        head_side.add(node.output[0])
        queue.extend(i for i in node.input if i)
    keep = {n.name for n in nodes if n.outputs and n.outputs[0] in head_side}
    present = {o for n in model.graph.node for o in n.output}  # the model after any preprocessing cut
    tail = [n for n in nodes if n.name not in keep and n.outputs and n.outputs[0] in present]
    if not any(n.op_type == "NonMaxSuppression" for n in all_nodes(model)):
        return
    report.unsupported = [f for f in report.unsupported if f.node in keep]
    report.limited = [f for f in report.limited if f.node in keep]
    report.cut = [t for h in heads.heads for t in (h.box_tensor, h.class_tensor)]
    report.runnable = len(keep)
    report.whole_graph = False
    report.detection_tail = len(tail)
    report.notes.append(
        f"decodable SSD tail: {len(heads.heads)} box/class head pairs ({heads.layout.name}, {heads.num_classes} "
        f"classes) feed decoding and NonMaxSuppression; TIDL replaces those {len(tail)} nodes with its detection "
        f"layer. Write the model and its meta_arch.prototxt with: edgezoo export --graph {path} --to onnx "
        "--meta-arch ssd" + unverified)


# ----------------------------------------------------------------------------------------------------------------
# TFLite


def check_tflite(path: Path) -> CheckReport:
    path = Path(path)
    graph = tflite_model.read_graph(path)
    tensors = graph.tensors[0] if graph.tensors else []
    key = lambda i: f"t{i}"  # noqa: E731 -- TFLite tensors are indices; names may repeat
    consts = {key(t.index) for t in tensors if t.is_constant}
    graph_inputs = [key(i) for i in graph.inputs[0]] if graph.inputs else []
    graph_outputs = [key(i) for i in graph.outputs[0]] if graph.outputs else []
    nodes: list[_Node] = []
    for op in (o for o in graph.ops if o.subgraph == 0):
        ins = [key(i) if i >= 0 else "" for i in op.inputs]
        view = NodeView(op.op, op.options, [tensors[i].shape if i >= 0 else None for i in op.inputs],
                        [tensors[i].constant if i >= 0 else None for i in op.inputs],
                        [tensors[i].shape for i in op.outputs], any(x in graph_inputs for x in ins),
                        any(key(o) in graph_outputs for o in op.outputs), 0,
                        [i < 0 or key(i) in consts for i in op.inputs])
        nodes.append(_Node(op.name(graph), op.op, ins, [key(o) for o in op.outputs], tflite_verdict(view)))
    report = _report(path, "tflite", nodes, graph_inputs, graph_outputs, consts,
                     display=lambda t: tensors[int(t[1:])].name)
    if len(graph.tensors) > 1:
        report.notes.append(f"{len(graph.tensors) - 1} extra subgraph(s) (control flow) were not checked")
    return report


def check_model(path: Path, target: str = "tidl") -> CheckReport:
    """The TIDL support report for an .onnx or .tflite file."""
    path = Path(path)
    if target != "tidl":
        raise EdgezooError(f"unknown target {target!r}", hint="targets: tidl")
    fmt = ModelFormat.of(path)
    if fmt is ModelFormat.ONNX:
        return check_onnx(path)
    if fmt is ModelFormat.TFLITE:
        return check_tflite(path)
    raise EdgezooError(f"{path}: 'check' reads .onnx and .tflite files, not {path.suffix or 'files without a suffix'}",
                       hint="convert it first, e.g. 'edgezoo export --graph FILE ... --to onnx'")


def proposed_cut(path: Path) -> list[str]:
    """The tensors the TIDL-ready model should end at (the graph outputs when nothing needs cutting)."""
    return check_model(path).cut
