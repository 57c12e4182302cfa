"""A TF2 SavedModel's serving function as a frozen GraphDef, so the frozen-graph routes (structure analysis, surgery,
TFLite conversion, parity) take TF2 exports as they take TF1 ones -- without the code that built the model.

`freeze_serving(saved_model_dir, dest)`: the `serving_default` signature with its variables folded into constants
(convert_variables_to_constants_v2), each signature output also reachable under its signature name (an Identity
node: detection_boxes, detection_scores, detection_classes, num_detections for a TF OD API export), the input under
the signature's input name. The serving function's graph is checked against the op allow-list
(graphs/tf_op_policy.py) before any of it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgezoo.core.errors import ModelFileError
from edgezoo.graphs import base_name, tf_graph
from edgezoo.graphs.tf_op_policy import check_graph_ops

SIGNATURE = "serving_default"


def is_saved_model_dir(folder: Path) -> bool:
    return (Path(folder) / "saved_model.pb").is_file()


def _tflite_friendly(graphs: list[Any]) -> bool:
    """Whether the SavedModel is the one export_tflite_graph_tf2.py writes for the TFLite converter: its
    post-processing is a placeholder function implementing TFLite_Detection_PostProcess (TF computes zeros)."""
    for graph_def in graphs:
        for fn in graph_def.library.function:
            implements = fn.attr.get("_implements")
            if implements is not None and "TFLite_Detection_PostProcess" in str(implements):
                return True
    return False


def _saved_model_graphs(saved_model_dir: Path) -> list[Any]:
    """Every GraphDef in the SavedModel's proto (the meta graph and its function library), for the op check."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(saved_model_dir) / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"{path}: not a valid SavedModel ({' '.join(str(exc).split())[:120]})",
                             hint="give the folder the TF exporter wrote (saved_model.pb + variables/)") from None
    if not proto.meta_graphs:
        raise ModelFileError(f"{path}: a SavedModel without a graph", hint="export the model again")
    return [m.graph_def for m in proto.meta_graphs]


def _without_unused_placeholders(graph_def: Any) -> Any:
    """Freezing lowers control flow and leaves placeholders nothing reads ('unused_control_flow_input_N'): drop
    them, so the image is the graph's one input."""

    read = {base_name(i.lstrip("^")) for n in graph_def.node for i in n.input}
    unused = [n for n in graph_def.node if n.op == "Placeholder" and n.name not in read]
    for n in unused:
        graph_def.node.remove(n)
    return graph_def


def refuse_tflite_export(saved_model_dir: Path) -> None:
    """ModelFileError when the SavedModel is the one export_tflite_graph_tf2.py writes for the TFLite converter (read
    from saved_model.pb alone: nothing is loaded or run)."""
    if _tflite_friendly(_saved_model_graphs(Path(saved_model_dir))):
        raise ModelFileError(f"{saved_model_dir}: the SavedModel export_tflite_graph_tf2.py writes for the TFLite "
                             "converter (its post-processing is a placeholder TF computes as zeros: nothing to verify "
                             "a conversion against)", hint="give the folder exporter_main_v2.py writes (saved_model/ "
                                                           "+ pipeline.config): edgezoo builds the TFLite "
                                                           "post-processing itself")


def freeze_serving(saved_model_dir: Path, dest: Path) -> Path:
    """See the module docstring. ModelFileError when there is no serving signature or it does not freeze."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2


    saved_model_dir = Path(saved_model_dir)
    where = str(saved_model_dir)
    refuse_tflite_export(saved_model_dir)
    tf_graph._tf()  # quiet TF's start-up
    try:
        loaded = tf.saved_model.load(str(saved_model_dir))
    except Exception as exc:  # noqa: BLE001 -- TF raises many types for a broken SavedModel
        raise ModelFileError(f"{where}: the SavedModel does not load ({' '.join(str(exc).split())[:160]})",
                             hint="give the folder the TF exporter wrote (saved_model.pb + variables/)") from None
    signatures = dict(getattr(loaded, "signatures", {}))
    if SIGNATURE not in signatures:
        raise ModelFileError(f"{where}: no '{SIGNATURE}' signature (has: {', '.join(signatures) or 'none'})",
                             hint="export it with the TF Object Detection API's exporter_main_v2.py")
    fn = signatures[SIGNATURE]
    # the allow-list of ops (graphs/tf_op_policy.py) on the serving function, before anything of it runs
    check_graph_ops(fn.graph.as_graph_def(), where, variables=True)
    frozen = convert_variables_to_constants_v2(fn)
    graph_def = _without_unused_placeholders(frozen.graph.as_graph_def())
    names = {n.name for n in graph_def.node}
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict) or len(outputs) != len(frozen.outputs):
        raise ModelFileError(f"{where}: the '{SIGNATURE}' signature returns no named outputs",
                             hint="export it with the TF Object Detection API's exporter_main_v2.py")
    # the frozen function's outputs are the signature's, flattened (a dict flattens in sorted key order)
    for key, tensor in zip(sorted(outputs), frozen.outputs):
        if key in names:
            continue
        node = graph_def.node.add()
        node.name = key
        node.op = "Identity"
        node.input.append(tensor.name.removesuffix(":0"))
        node.attr["T"].type = tensor.dtype.as_datatype_enum
    dest = Path(dest)
    dest.write_bytes(graph_def.SerializeToString())
    return dest
