"""Compact TF GraphDefs: strip the weight constants, record facts (generator side, TF only)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tests.structures.regenerate.compact import MAX_KEPT_BYTES

# op -> the inputs that carry weights
TF_WEIGHT_INPUTS = {
    "Conv2D": (1,), "DepthwiseConv2dNative": (1,), "MatMul": (1,), "BiasAdd": (1,),
    "FusedBatchNorm": (1, 2, 3, 4), "FusedBatchNormV2": (1, 2, 3, 4), "FusedBatchNormV3": (1, 2, 3, 4),
}


def load_graph_def(path: Path):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(Path(path).read_bytes())
    return gd


def _source_const(name: str, nodes: dict) -> str | None:
    """The Const behind `name` through Identity nodes, if any."""
    name = name.split(":")[0].lstrip("^")
    seen = 0
    while name in nodes and nodes[name].op == "Identity" and seen < 10:
        name = nodes[name].input[0].split(":")[0]
        seen += 1
    return name if name in nodes and nodes[name].op == "Const" else None


def weight_consts(gd) -> set[str]:
    nodes = {n.name: n for n in gd.node}
    out = set()
    for node in gd.node:
        for i in TF_WEIGHT_INPUTS.get(node.op, ()):
            if i < len(node.input):
                const = _source_const(node.input[i], nodes)
                if const is not None:
                    out.add(const)
    return out


def strip_graph_def(gd) -> tuple[dict[str, list], dict[str, np.ndarray]]:
    """Empty the float weight Consts of `gd` in place (dtype and shape kept); returns ({name: shape}, values)."""
    import tensorflow as tf

    weights = weight_consts(gd)
    stripped: dict[str, list] = {}
    values: dict[str, np.ndarray] = {}
    for node in gd.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if node.name in weights and tensor.dtype == tf.float32.as_datatype_enum:
            array = tf.make_ndarray(tensor)
            values[node.name] = array
            stripped[node.name] = list(array.shape)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.zeros(0, np.float32)))
            node.attr["value"].tensor.tensor_shape.CopyFrom(tf.TensorShape(array.shape).as_proto())
        else:
            size = len(tensor.tensor_content) or 0
            if size > MAX_KEPT_BYTES:
                raise ValueError(f"kept Const {node.name} is {size} bytes: not a known weight input")
    return stripped, values


def graph_facts(gd) -> dict[str, Any]:
    ops = Counter(n.op for n in gd.node)
    placeholders = {n.name: [d.size for d in n.attr["shape"].shape.dim] for n in gd.node
                    if n.op == "Placeholder"}
    names = {n.name for n in gd.node}
    key = [k for k in ("Preprocessor/sub", "concat", "concat_1", "Squeeze", "Postprocessor/convert_scores",
                       "raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors",
                       "TFLite_Detection_PostProcess", "detection_boxes", "detection_scores", "detection_classes",
                       "num_detections") if k in names]
    return {"ops": dict(sorted(ops.items())), "nodes": len(gd.node), "inputs": placeholders, "key_nodes": key}


def head_kernels(stripped: dict[str, list], gd, num_classes: int) -> dict[str, Any]:
    """The class and box predictor kernels, by the scopes of the convolutions they feed (TF1 slim names them
    BoxPredictor_N/ClassPredictor/weights; a frozen TF2 function names every constant unknown_N)."""
    users: dict[str, list] = {}
    for n in gd.node:
        for ref in n.input:
            if not ref.startswith("^"):
                users.setdefault(ref.split(":")[0], []).append(n)

    def ops_fed(name: str) -> list:
        out = []
        for user in users.get(name, []):
            out += ops_fed(user.name) if user.op == "Identity" else [user]
        return out

    cls, box = [], []
    for name in stripped:
        for op in ops_fed(name):
            if op.op not in ("Conv2D", "MatMul") or op.input[1].split(":")[0] not in _identity_chain(name, users):
                continue
            scopes = op.name.split("/")[:-1]
            predictors = [s for s in scopes if s.split("_")[0].endswith("Predictor")]
            if "ClassPredictor" in scopes:
                cls.append(name)
            elif "BoxEncodingPredictor" in scopes or (predictors and predictors[-1] == "BoxPredictor"):
                box.append(name)
            break
    if not cls or len(cls) != len(box):
        raise ValueError(f"head kernels not found: {cls} {box}")
    return {"class": sorted(cls), "box": sorted(box), "columns": num_classes + 1, "class_major": False}


def _identity_chain(name: str, users: dict) -> set[str]:
    """`name` and the Identity nodes reading it (directly or in a chain)."""
    out = {name}
    for user in users.get(name, []):
        if user.op == "Identity":
            out |= _identity_chain(user.name, users)
    return out


def anchor_count(gd, size: int) -> int:
    """Anchors of an export: rows of its box encodings, from running the (unstripped) graph once."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(gd, name="")
        names = {op.name for op in graph.get_operations()}
        inputs = [n for n in ("image_tensor", "normalized_input_image_tensor") if n in names]
        fetch = next(n for n in ("Squeeze", "raw_outputs/box_encodings", "concat") if n in names)
        dtype = np.uint8 if inputs[0] == "image_tensor" else np.float32
        with tf.compat.v1.Session(graph=graph) as sess:
            out = sess.run(fetch + ":0", {inputs[0] + ":0": np.zeros((1, size, size, 3), dtype)})
    return int(out.shape[1])


def postprocess_attrs(gd) -> dict[str, Any]:
    for node in gd.node:
        if node.op == "TFLite_Detection_PostProcess":
            out = {}
            for key, attr in sorted(node.attr.items()):
                kind = attr.WhichOneof("value")
                if kind in ("i", "f", "b"):
                    out[key] = getattr(attr, kind)
            return out
    return {}


def same_values(stripped: dict[str, list], values: dict[str, np.ndarray],
                source: dict[str, np.ndarray]) -> dict[str, str]:
    """For each stripped constant, the constant of `source` with the same values (same name preferred)."""
    out = {}
    for name in stripped:
        if name in source and np.array_equal(source[name], values[name]):
            out[name] = name
            continue
        match = [k for k, v in source.items() if v.shape == values[name].shape and np.array_equal(v, values[name])]
        if len(match) != 1:
            raise ValueError(f"{name}: {len(match)} constants of the source graph hold its values")
        out[name] = match[0]
    return out
