"""Frozen-graph surgery for TF OD API SSD models: what export_tflite_ssd_graph did, on TF 2.x, without the OD API.

From the published frozen_inference_graph.pb:
1. a new float input `normalized_input_image_tensor` [1, H, W, 3] replaces the output of `Preprocessor/sub`;
2. the box-encoding and class-logit concats are found by following the BoxEncodingPredictor / ClassPredictor head
   nodes forward to the concat they feed (some exports swap `concat` and `concat_1`: names are not trusted);
3. `raw_outputs/box_encodings` [1, N, 4] (squeezed) and `raw_outputs/class_predictions` [1, N, C+1] (the
   pipeline.config's score converter, background column kept) are added, plus an `anchors` Const [N, 4]
   (ycenter, xcenter, h, w);
4. a `TFLite_Detection_PostProcess` NodeDef with every attribute set (the converter accepts missing ones and the
   kernel then misbehaves, so each is validated here), and the graph is cut to what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import ConfigError, RecipeError, tensor_not_found
from edgezoo.detection.tflite_postprocess import PostProcessParams, detection_postprocess
from edgezoo.graphs import base_name, tf_graph, tflite_model

INPUT_NAME = "normalized_input_image_tensor"
BOX_OUTPUT = "raw_outputs/box_encodings"
CLASS_OUTPUT = "raw_outputs/class_predictions"
ANCHORS_NAME = "anchors"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
POSTPROCESS_OUTPUTS = (POSTPROCESS_OP, f"{POSTPROCESS_OP}:1", f"{POSTPROCESS_OP}:2", f"{POSTPROCESS_OP}:3")

_HEAD_RE = re.compile(r"^(?P<prefix>.*?)BoxPredictor(?:_(?P<index>\d+))?/(?P<kind>BoxEncodingPredictor|ClassPredictor)"
                      r"/BiasAdd$")
# Ops through which a head's values flow unchanged in content on their way to the concat.
_PASS_THROUGH = {"Reshape", "Identity", "Squeeze", "ExpandDims", "Transpose"}
# Every attribute the op's NodeDef carries, with its AttrValue field ("i", "f", "b", "list").
POSTPROCESS_ATTRS = {
    "max_detections": "i", "max_classes_per_detection": "i", "detections_per_class": "i", "use_regular_nms": "b",
    "nms_score_threshold": "f", "nms_iou_threshold": "f", "num_classes": "i", "y_scale": "f", "x_scale": "f",
    "h_scale": "f", "w_scale": "f", "_output_quantized": "b", "_output_types": "list",
    "_support_output_type_float_in_quantized_op": "b",
}


def _tf() -> Any:
    import tensorflow as tf  # lazy

    return tf


@dataclass(frozen=True)
class SsdHeads:
    """The SSD box predictor as found in a frozen graph."""

    box_heads: tuple[str, ...]  # BoxPredictor_i/BoxEncodingPredictor/BiasAdd, by layer
    class_heads: tuple[str, ...]
    box_concat: str  # node that concatenates the box encodings of all layers
    class_concat: str


def _consumers(graph_def: Any) -> dict[str, list[tuple[Any, int]]]:
    """node name -> [(consumer NodeDef, input position)] for data inputs."""
    out: dict[str, list[tuple[Any, int]]] = {}
    for node in graph_def.node:
        for pos, inp in enumerate(node.input):
            if inp.startswith("^"):
                continue
            out.setdefault(base_name(inp), []).append((node, pos))
    return out


def _follow_to_concat(head: str, consumers: dict[str, list[tuple[Any, int]]]) -> str | None:
    """The ConcatV2 that a head's values reach through reshapes/identities (data inputs only)."""
    frontier, seen = [head], set()
    while frontier:
        name = frontier.pop()
        if name in seen:
            continue
        seen.add(name)
        for node, pos in consumers.get(name, []):
            if node.op in ("ConcatV2", "Concat"):
                n_values = len([i for i in node.input if not i.startswith("^")]) - 1
                is_value = pos < n_values if node.op == "ConcatV2" else pos >= 1
                if is_value:
                    return node.name
            elif node.op in _PASS_THROUGH and pos == 0:
                frontier.append(node.name)
    return None


def find_heads(graph_def: Any, where: str = "graph") -> SsdHeads:
    """Heads and their concats, by structure. RecipeError when the graph has no SSD box predictor."""
    heads: dict[str, dict[int, str]] = {"BoxEncodingPredictor": {}, "ClassPredictor": {}}
    for node in graph_def.node:
        m = _HEAD_RE.match(node.name)
        if m:
            heads[m.group("kind")][int(m.group("index") or 0)] = node.name
    box, cls = heads["BoxEncodingPredictor"], heads["ClassPredictor"]
    if not box or not cls:
        raise RecipeError(f"{where}: no SSD box predictor heads found (nodes named "
                          "'BoxPredictor_<i>/BoxEncodingPredictor/BiasAdd' and '.../ClassPredictor/BiasAdd')",
                          hint="this is not a TF OD API SSD frozen graph, or its heads were renamed")
    if sorted(box) != sorted(cls) or sorted(box) != list(range(len(box))):
        raise RecipeError(f"{where}: box and class heads do not pair up: BoxEncodingPredictor layers {sorted(box)}, "
                          f"ClassPredictor layers {sorted(cls)}")
    consumers = _consumers(graph_def)
    concats = {}
    for kind, found in heads.items():
        targets = {_follow_to_concat(found[i], consumers) for i in sorted(found)}
        if len(targets) != 1 or None in targets:
            raise RecipeError(f"{where}: the {kind} heads do not feed one concat (found {sorted(map(str, targets))})",
                              hint="the graph's box predictor is not the TF OD API's convolutional one")
        concats[kind] = targets.pop()
    if concats["BoxEncodingPredictor"] == concats["ClassPredictor"]:
        raise RecipeError(f"{where}: box and class heads feed the same concat {concats['ClassPredictor']!r}")
    return SsdHeads(tuple(box[i] for i in sorted(box)), tuple(cls[i] for i in sorted(cls)),
                    concats["BoxEncodingPredictor"], concats["ClassPredictor"])


def postprocess_node_def(params: PostProcessParams, inputs: Sequence[str] = (BOX_OUTPUT, CLASS_OUTPUT, ANCHORS_NAME),
                         name: str = POSTPROCESS_OP) -> Any:
    """The TFLite_Detection_PostProcess NodeDef, every attribute set (validated first)."""
    tf = _tf()
    params.validate(name)
    node = tf.compat.v1.NodeDef(name=name, op=POSTPROCESS_OP, input=list(inputs))
    attr = node.attr
    attr["max_detections"].i = int(params.max_detections)
    attr["max_classes_per_detection"].i = int(params.max_classes_per_detection)
    attr["detections_per_class"].i = int(params.detections_per_class)
    attr["use_regular_nms"].b = bool(params.use_regular_nms)
    attr["nms_score_threshold"].f = float(params.nms_score_threshold)
    attr["nms_iou_threshold"].f = float(params.nms_iou_threshold)
    attr["num_classes"].i = int(params.num_classes)
    attr["y_scale"].f = float(params.y_scale)
    attr["x_scale"].f = float(params.x_scale)
    attr["h_scale"].f = float(params.h_scale)
    attr["w_scale"].f = float(params.w_scale)
    attr["_output_quantized"].b = True
    attr["_output_types"].list.type.extend([tf.float32.as_datatype_enum] * 4)
    attr["_support_output_type_float_in_quantized_op"].b = True
    validate_postprocess_node(node)
    return node


def validate_postprocess_node(node: Any) -> PostProcessParams:
    """Every attribute present with the right kind and a sane value; returns the parameters it encodes."""
    where = f"{node.name} ({node.op})"
    for attr_name, kind in POSTPROCESS_ATTRS.items():
        if attr_name not in node.attr:
            raise ConfigError(f"{where}: attribute {attr_name!r} is missing",
                              hint="the TFLite converter accepts it but the kernel then reads garbage")
        field = node.attr[attr_name].WhichOneof("value")
        if field != kind:
            raise ConfigError(f"{where}: attribute {attr_name!r} is {field or 'empty'}, expected {kind}")
    if list(node.attr["_output_types"].list.type) != [1, 1, 1, 1]:  # DT_FLOAT x 4
        raise ConfigError(f"{where}: _output_types must be four DT_FLOAT")
    if len(node.input) != 3:
        raise ConfigError(f"{where}: needs 3 inputs (box encodings, class predictions, anchors), has {len(node.input)}")
    a = node.attr
    return PostProcessParams(
        max_detections=a["max_detections"].i, nms_score_threshold=a["nms_score_threshold"].f,
        nms_iou_threshold=a["nms_iou_threshold"].f, num_classes=a["num_classes"].i,
        max_classes_per_detection=a["max_classes_per_detection"].i, detections_per_class=a["detections_per_class"].i,
        use_regular_nms=a["use_regular_nms"].b, y_scale=a["y_scale"].f, x_scale=a["x_scale"].f,
        h_scale=a["h_scale"].f, w_scale=a["w_scale"].f).validate(where)


def _const_node(name: str, value: np.ndarray) -> Any:
    tf = _tf()
    node = tf.compat.v1.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return node


def _node(name: str, op: str, inputs: Sequence[str], **types: int) -> Any:
    """A NodeDef whose attributes are all dtypes (T, Tshape, ...)."""
    tf = _tf()
    node = tf.compat.v1.NodeDef(name=name, op=op, input=list(inputs))
    for key, value in types.items():
        node.attr[key].type = value
    return node


def replace_input(graph_def: Any, tensor: str, shape: Sequence[int], where: str = "graph",
                  name: str = INPUT_NAME) -> Any:
    """A copy of graph_def where a new float Placeholder `name` stands for `tensor` (its consumers rewired)."""
    tf = _tf()
    target = base_name(tensor)
    names = [n.name for n in graph_def.node]
    if target not in set(names):
        raise tensor_not_found(target, names, where, "node (normalized input)")
    if name in set(names):
        raise RecipeError(f"{where}: the graph already has a node named {name!r}")
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        for k, inp in enumerate(node.input):
            if not inp.startswith("^") and base_name(inp) == target and inp in (target, f"{target}:0"):
                node.input[k] = name
    ph = out.node.add(name=name, op="Placeholder")
    ph.attr["dtype"].type = tf.float32.as_datatype_enum
    ph.attr["shape"].shape.CopyFrom(tf.TensorShape(list(shape)).as_proto())
    return out


@dataclass(frozen=True)
class SurgeryResult:
    graph_def: Any
    heads: SsdHeads
    feature_maps: tuple[tuple[int, int], ...]  # (rows, cols) per head
    boxes_per_location: tuple[int, ...]
    num_anchors: int
    class_columns: int  # num_classes + 1 when a background column is present


def head_shapes(graph_def: Any, heads: SsdHeads, input_shape: Sequence[int],
                where: str = "graph") -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], int, int]:
    """Static shapes at a fixed input size: feature maps, boxes per location, anchors, class columns."""
    graph = tf_graph.import_graph(graph_def)
    maps, per_loc = [], []
    for box, cls in zip(heads.box_heads, heads.class_heads):
        bs = graph.get_tensor_by_name(f"{box}:0").shape.as_list()
        cs = graph.get_tensor_by_name(f"{cls}:0").shape.as_list()
        if len(bs) != 4 or any(d is None for d in bs[1:]) or bs[3] % 4:
            raise RecipeError(f"{where}: head {box} has shape {bs} at input {list(input_shape)}, expected "
                              "[1, rows, cols, boxes*4]")
        maps.append((int(bs[1]), int(bs[2])))
        per_loc.append(int(bs[3]) // 4)
        if cs[1:3] != bs[1:3] or cs[3] is None or cs[3] % per_loc[-1]:
            raise RecipeError(f"{where}: class head {cls} has shape {cs}, box head {box} has {bs}")
    classes = {int(graph.get_tensor_by_name(f"{c}:0").shape.as_list()[3]) // k
               for c, k in zip(heads.class_heads, per_loc)}
    if len(classes) != 1:
        raise RecipeError(f"{where}: class heads disagree on the number of classes: {sorted(classes)}")
    n = sum(h * w * k for (h, w), k in zip(maps, per_loc))
    return tuple(maps), tuple(per_loc), n, classes.pop()


def build_tflite_graph(graph_def: Any, *, normalized_input: str, input_size: tuple[int, int],
                       anchors_center: np.ndarray, params: PostProcessParams, score_converter: str = "SIGMOID",
                       logit_scale: float = 1.0, where: str = "graph", expected_box_concat: str | None = None,
                       notes: list[str] | None = None, heads: SsdHeads | None = None) -> SurgeryResult:
    """The export_tflite_ssd_graph equivalent: a GraphDef ending in TFLite_Detection_PostProcess.

    `heads`: found beforehand (ssd/od_api_graph.py, by structure); default: by the published head names."""
    tf = _tf()
    heads = heads or find_heads(graph_def, where)
    if expected_box_concat and notes is not None and base_name(expected_box_concat) != heads.box_concat:
        notes.append(f"box encodings come from {heads.box_concat!r}, not {base_name(expected_box_concat)!r} as the "
                     "card says (found by following the BoxEncodingPredictor heads)")
    shape = [1, int(input_size[0]), int(input_size[1]), 3]
    g = replace_input(graph_def, normalized_input, shape, where)
    maps, per_loc, n, columns = head_shapes(g, heads, shape, where)
    if columns not in (params.num_classes, params.num_classes + 1):
        raise RecipeError(f"{where}: the class heads give {columns} scores per box; pipeline.config num_classes is "
                          f"{params.num_classes}", hint="expected num_classes + 1 (with background)")
    anchors_center = np.asarray(anchors_center, dtype=np.float32)
    if anchors_center.shape != (n, 4):
        raise RecipeError(f"{where}: {anchors_center.shape[0]} anchors for {n} boxes predicted by the heads "
                          f"(feature maps {list(maps)}, boxes per location {list(per_loc)})",
                          hint="the pipeline.config's anchor generator does not match the graph")
    int32 = tf.int32.as_datatype_enum
    f32 = tf.float32.as_datatype_enum
    g.node.extend([
        _const_node("raw_outputs/box_shape", np.array([1, n, 4], np.int32)),
        _node(BOX_OUTPUT, "Reshape", [heads.box_concat, "raw_outputs/box_shape"], T=f32, Tshape=int32),
        _const_node("raw_outputs/class_shape", np.array([1, n, columns], np.int32)),
        _node("raw_outputs/class_logits", "Reshape", [heads.class_concat, "raw_outputs/class_shape"], T=f32,
              Tshape=int32),
    ])
    logits = "raw_outputs/class_logits"
    if logit_scale != 1.0:
        g.node.extend([_const_node("raw_outputs/inv_logit_scale", np.array(1.0 / logit_scale, np.float32)),
                       _node("raw_outputs/scale_logits", "Mul", [logits, "raw_outputs/inv_logit_scale"], T=f32)])
        logits = "raw_outputs/scale_logits"
    converter_op = {"SIGMOID": "Sigmoid", "SOFTMAX": "Softmax", "IDENTITY": "Identity"}.get(score_converter)
    if converter_op is None:
        raise ConfigError(f"{where}: unknown score converter {score_converter!r}")
    g.node.append(_node(CLASS_OUTPUT, converter_op, [logits], T=f32))
    g.node.append(_const_node(ANCHORS_NAME, anchors_center))
    g.node.append(postprocess_node_def(params))
    cut = tf.compat.v1.graph_util.extract_sub_graph(g, [POSTPROCESS_OP])
    return SurgeryResult(cut, heads, maps, per_loc, n, columns)


def convert_to_tflite(graph_def: Any, dest: Path, input_size: tuple[int, int] | None, workdir: Path,
                      inputs: dict[str, list[int]] | None = None, representative: Any = None) -> Path:
    """TF 2.x conversion with the custom op allowed and all four outputs named (naming one keeps only boxes).

    `representative` (calibration frames): int8 post-training quantization of every builtin op that has an int8
    kernel (float fallback for the rest); TFLite_Detection_PostProcess stays a float custom op."""
    tf = _tf()
    pb = Path(workdir) / "tflite_graph.pb"
    pb.write_bytes(graph_def.SerializeToString())
    shapes = inputs or {INPUT_NAME: [1, int(input_size[0]), int(input_size[1]), 3]}
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(pb), input_arrays=list(shapes), output_arrays=list(POSTPROCESS_OUTPUTS), input_shapes=shapes)
    converter.allow_custom_ops = True
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        data = converter.convert()
    except Exception as exc:  # the converter raises ConverterError / RuntimeError with multi-line MLIR dumps
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"TFLite conversion failed: {first[:300]}") from None
    dest = Path(dest)
    dest.write_bytes(data)
    return dest


def standalone_postprocess_tflite(params: PostProcessParams, num_anchors: int, class_columns: int, dest: Path,
                                  workdir: Path) -> Path:
    """A .tflite holding only the op, its three tensors as inputs: runs the LiteRT kernel on any head values."""
    tf = _tf()
    shapes = {BOX_OUTPUT: [1, num_anchors, 4], CLASS_OUTPUT: [1, num_anchors, class_columns],
              ANCHORS_NAME: [num_anchors, 4]}
    g = tf.compat.v1.GraphDef()
    for name, shape in shapes.items():
        ph = g.node.add(name=name, op="Placeholder")
        ph.attr["dtype"].type = tf.float32.as_datatype_enum
        ph.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())
    g.node.append(postprocess_node_def(params))
    return convert_to_tflite(g, dest, None, workdir, inputs=shapes)


def read_postprocess_ops(tflite_path: Path) -> list[dict[str, Any]]:
    """The TFLite_Detection_PostProcess ops of a .tflite file with their decoded attributes (flexbuffer options)."""
    from flatbuffers import flexbuffers

    tflite_model.load_interpreter(Path(tflite_path))  # clean error when the file is missing or corrupt
    data = Path(tflite_path).read_bytes()
    schema = tflite_model._schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    found = []
    for sub in model.subgraphs or []:
        for op in sub.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            if custom == POSTPROCESS_OP:
                raw = bytes(np.asarray(op.customOptions, dtype=np.uint8)) if op.customOptions is not None else b""
                attrs = dict(flexbuffers.Loads(raw)) if raw else {}
                names = [sub.tensors[i].name.decode() for i in op.outputs]
                found.append({"attributes": attrs, "outputs": names,
                              "inputs": [sub.tensors[i].name.decode() for i in op.inputs]})
    return found


def litert_regular_nms_skipped_classes(workdir: Path, threads: int = 2) -> list[int]:
    """Foreground classes LiteRT's regular NMS loses when run on `threads` threads (measured on a probe model).

    ai-edge-litert 2.3 splits regular NMS over threads whose shared column counter starts at `threads` and is
    pre-incremented, so class index `threads` is never processed (found by edgezoo's parity check). Returns [] when
    the installed LiteRT is correct.
    """
    classes, n = max(threads + 2, 4), 8
    params = PostProcessParams(max_detections=4 * classes, nms_score_threshold=0.5, nms_iou_threshold=0.5,
                               num_classes=classes, detections_per_class=2, use_regular_nms=True)
    path = standalone_postprocess_tflite(params, n, classes + 1, Path(workdir) / "litert_probe.tflite", Path(workdir))
    anchors = np.tile(np.array([[0.5, 0.5, 0.2, 0.2]], np.float32), (n, 1))
    anchors[:, 0] = np.linspace(0.1, 0.9, n)  # separate boxes: no suppression
    enc = np.zeros((n, 4), np.float32)
    scores = np.full((n, classes + 1), 0.9, np.float32)
    want = detection_postprocess(enc, scores, anchors, params)
    interp = tflite_model.load_interpreter(path, num_threads=threads)
    inputs = {d["name"]: d["index"] for d in interp.get_input_details()}
    interp.set_tensor(inputs[BOX_OUTPUT], enc[None])
    interp.set_tensor(inputs[CLASS_OUTPUT], scores[None])
    interp.set_tensor(inputs[ANCHORS_NAME], anchors)
    interp.invoke()
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    count = int(interp.get_tensor(outs[POSTPROCESS_OUTPUTS[3]])[0])
    got = set(interp.get_tensor(outs[POSTPROCESS_OUTPUTS[1]])[0][:count].astype(int).tolist())
    return sorted(set(want.classes[:want.num_detections].astype(int).tolist()) - got)
