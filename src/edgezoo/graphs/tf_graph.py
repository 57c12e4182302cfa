"""TF frozen GraphDef (.pb): load with clean errors, list names, find inputs/sinks, resolve tensor names, cut."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ModelFileError, tensor_not_found
from edgezoo.graphs import base_name, corrupt, ensure_readable
from edgezoo.graphs.tf_op_policy import check_graph_ops

KIND = "TF frozen graph (.pb)"
# Ops that produce no tensor worth reading: never a default output.
_NOT_OUTPUTS = {"Const", "NoOp", "Assert", "Placeholder", "PlaceholderWithDefault", "VarHandleOp", "SaveV2",
                "RestoreV2"}


def _tf() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter would bury our one-line output
    import tensorflow as tf  # lazy: 5-6 s to import

    return tf


def load_graph_def(path: Path) -> Any:
    """Parse a frozen GraphDef; ModelFileError naming the file when it is missing, truncated or corrupt, and
    UnsafeGraphError when it holds an op outside the allow-list (graphs/tf_op_policy.py): nothing is run then."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    data = ensure_readable(path, KIND)
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        _refuse_saved_model(path, data)
        raise corrupt(path, KIND, str(exc)) from None
    if not graph_def.node:
        _refuse_saved_model(path, data)
        raise corrupt(path, KIND, "no nodes")
    # A truncation that happens to end on a field boundary parses: importing catches the dangling inputs.
    missing = _dangling_inputs(graph_def)
    if missing:
        raise corrupt(path, KIND, f"node inputs refer to missing nodes, e.g. {missing[0]!r}")
    check_graph_ops(graph_def, path)
    return graph_def


SAVED_MODEL_HINT = ("a TF Object Detection API SSD exported for TF2: edgezoo export --graph EXPORT_FOLDER --to tflite "
                    "(the folder holding saved_model/ and pipeline.config); another model: freeze it to a GraphDef "
                    "(convert_variables_to_constants_v2) first")


def is_saved_model(data: bytes) -> bool:
    """Whether the bytes are a SavedModel (saved_model.pb) -- a TF2 export, not a frozen graph."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError):
        return False
    return bool(proto.meta_graphs) and bool(proto.meta_graphs[0].graph_def.node or
                                            proto.meta_graphs[0].signature_def)


def _refuse_saved_model(path: Path, data: bytes) -> None:
    if is_saved_model(data):
        raise ModelFileError(f"{path}: a TF SavedModel (TF2 export), not a frozen graph", hint=SAVED_MODEL_HINT)


def _dangling_inputs(graph_def: Any) -> list[str]:
    names = {n.name for n in graph_def.node}
    return [i for n in graph_def.node for i in n.input if base_name(i.lstrip("^")) not in names]


def node_names(graph_def: Any) -> list[str]:
    return [n.name for n in graph_def.node]


def tensor_names(graph_def: Any) -> list[str]:
    """Candidate names for hints: node names (which stand for their ':0' tensor)."""
    return node_names(graph_def)


def placeholders(graph_def: Any) -> list[str]:
    return [n.name for n in graph_def.node if n.op == "Placeholder"]


def sink_nodes(graph_def: Any) -> list[str]:
    """Nodes whose outputs nothing consumes (the graph's natural outputs), in graph order."""
    consumed = {base_name(i.lstrip("^")) for n in graph_def.node for i in n.input}
    return [n.name for n in graph_def.node if n.name not in consumed and n.op not in _NOT_OUTPUTS]


def resolve_tensor(graph_def: Any, name: str, where: str, what: str = "tensor") -> str:
    """'name' or 'name:k' -> 'name:k' checked against the graph; TensorNameError with close names otherwise."""
    node = base_name(name)
    names = node_names(graph_def)
    if node not in set(names):
        raise tensor_not_found(name, names, where, what)
    return name if name != node else f"{node}:0"


def cut(graph_def: Any, outputs: Sequence[str], where: str = "graph") -> Any:
    """The sub-graph that computes `outputs` (node or tensor names), everything else dropped."""
    tf = _tf()
    nodes = [base_name(resolve_tensor(graph_def, o, where, "output")) for o in outputs]
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def, nodes)


def ops(graph_def: Any) -> dict[str, str]:
    """node name -> op type."""
    return {n.name: n.op for n in graph_def.node}


def import_graph(graph_def: Any, path: Path | None = None) -> Any:
    """A tf.Graph holding `graph_def` under no name prefix; ModelFileError when TF rejects it."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.compat.v1.import_graph_def(graph_def, name="")
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise corrupt(Path(path or "<graph>"), KIND, str(exc)) from None
    return graph


def write_graph_def(graph_def: Any, dest: Path) -> Path:
    dest = Path(dest)
    dest.write_bytes(graph_def.SerializeToString())
    return dest


def consumers(graph_def: Any) -> dict[str, list[str]]:
    """node name -> names of the nodes that read any of its outputs."""
    out: dict[str, list[str]] = {n.name: [] for n in graph_def.node}
    for n in graph_def.node:
        for i in n.input:
            src = base_name(i.lstrip("^"))
            if src in out:
                out[src].append(n.name)
    return out
