"""Build TF2 OD API SSDs (TF2 Detection Zoo configurations) with the OD API's TF2 builder and exporters.

    TF_USE_LEGACY_KERAS=1 python -m tests.structures.regenerate.od_api_tf2 [NAME ...]   (repo root, OD API venv)

For each configuration (od_api_configs.TF2): model_builder.build (Keras), seeded values for every variable, a
tf.train.Checkpoint, then exporter_lib_v2.export_inference_graph (input_type image_tensor -> saved_model/ +
pipeline.config, what exporter_main_v2.py writes) and export_tflite_graph_lib_tf2.export_tflite_model (the
TFLite-friendly SavedModel export_tflite_graph_tf2.py writes; max_detections 10, fast NMS: the script's defaults).

A SavedModel keeps its weights in variables/: what is stored is saved_model.pb as written, the checkpoint's keys
and its object graph, and (for the refill) the serving function frozen with convert_variables_to_constants_v2,
stripped, with the checkpoint key of every stripped constant (matched by value: seeded values are distinct).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.structures.regenerate import od_api_shims  # noqa: E402

od_api_shims.install(tf1=False)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from object_detection import export_tflite_graph_lib_tf2, exporter_lib_v2  # noqa: E402
from object_detection.builders import model_builder  # noqa: E402
from object_detection.protos import pipeline_pb2  # noqa: E402

from tests.structures.regenerate import compact, tf_compact  # noqa: E402
from tests.structures.regenerate.od_api_configs import TF2, pipeline_text  # noqa: E402

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def checkpoint(config, folder: Path, seed: int = 0) -> None:
    size = config.model.ssd.image_resizer.fixed_shape_resizer.height
    model = model_builder.build(config.model, is_training=False)
    image = tf.zeros([1, size, size, 3])
    preprocessed, shapes = model.preprocess(image)
    model.postprocess(model.predict(preprocessed, shapes), shapes)
    rng = np.random.default_rng(seed)
    for var in model.variables:
        shape = var.shape.as_list()
        name = var.name
        if var.dtype != tf.float32 or not shape:
            continue
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gamma" in name:
            value = rng.uniform(0.8, 1.2, shape)
        else:
            value = rng.standard_normal(shape) * (0.03 if len(shape) > 1 else 0.1)
        var.assign(value.astype(np.float32))
    tf.train.Checkpoint(model=model).save(str(folder / "ckpt"))


def frozen_serving(saved_model: Path):
    """The serving_default function of a SavedModel as a frozen GraphDef, and its input / output names."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(str(saved_model))
    fn = loaded.signatures["serving_default"]
    frozen = convert_variables_to_constants_v2(fn)
    gd = frozen.graph.as_graph_def()
    inputs = [t.name for t in frozen.inputs]
    outputs = {name: t.name for name, t in zip(sorted(fn.structured_outputs), frozen.outputs)}
    return gd, inputs, outputs, {k: [d if d is not None else -1 for d in v.shape.as_list()]
                                 for k, v in fn.structured_input_signature[1].items()}


def checkpoint_values(variables_prefix: Path) -> tuple[dict[str, np.ndarray], dict[str, list], bytes]:
    reader = tf.train.load_checkpoint(str(variables_prefix))
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    values = {k: reader.get_tensor(k) for k in shapes if k != OBJECT_GRAPH_KEY}
    object_graph = reader.get_tensor(OBJECT_GRAPH_KEY)
    return values, {k: [list(shapes[k]), dtypes[k].name] for k in values}, object_graph


def saved_model_files(folder: Path, consts: dict[str, np.ndarray], stripped: dict[str, list]) -> tuple[dict, dict]:
    """(files for write_structure, manifest of the checkpoint) for the SavedModel in `folder`."""
    values, keys, object_graph = checkpoint_values(folder / "variables" / "variables")
    key_to_const = {}
    kept = {}
    for key, value in values.items():
        match = [c for c in stripped if consts[c].shape == value.shape and np.array_equal(consts[c], value)]
        if len(match) == 1:
            key_to_const[key] = match[0]
        elif value.nbytes <= 4096:
            kept[key] = value.tolist()  # small and not a weight of the serving function (e.g. a counter)
        else:
            raise ValueError(f"checkpoint key {key} {value.shape}: {len(match)} frozen constants hold its values")
    files = {"saved_model/saved_model.pb": {"bytes": (folder / "saved_model.pb").read_bytes()},
             "saved_model/variables/object_graph": {"bytes": object_graph}}
    manifest = {"keys": keys, "weights": key_to_const, "kept": kept}
    return files, manifest


def export(name: str) -> None:
    start = time.time()
    model = TF2[name]
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Merge(pipeline_text(model), config)
    keep = os.environ.get("ODGEN_KEEP")
    work = Path(keep) / name if keep else Path(tempfile.mkdtemp(prefix=f"odapi-{name}-"))
    built = 0.0
    if not (work / "tflite" / "saved_model" / "saved_model.pb").exists():
        (work / "ckpt").mkdir(parents=True, exist_ok=True)
        checkpoint(config, work / "ckpt")
        built = time.time()
        exporter_lib_v2.export_inference_graph("image_tensor", config, str(work / "ckpt"), str(work / "export"))
        export_tflite_graph_lib_tf2.export_tflite_model(config, str(work / "ckpt"), str(work / "tflite"),
                                                        max_detections=10, use_regular_nms=False)
    gd, inputs, outputs, signature = frozen_serving(work / "export" / "saved_model")
    facts = {**tf_compact.graph_facts(gd), "serving_inputs": inputs, "serving_outputs": outputs,
             "signature_inputs": signature, "classes": config.model.ssd.num_classes, "size": model.size}
    stripped, consts = tf_compact.strip_graph_def(gd)
    heads = tf_compact.head_kernels(stripped, gd, config.model.ssd.num_classes)
    input_name = inputs[0].split(":")[0]
    refill = {"heads": heads, "scoring": {"softmax": False, "background": 0},
              "input": {"name": input_name, "layout": "nhwc", "size": [model.size, model.size], "dtype": "uint8"}}
    files, ckpt = saved_model_files(work / "export" / "saved_model", consts, stripped)
    files["serving_function.pb"] = {"bytes": gd.SerializeToString(), "stripped": stripped}
    files["pipeline.config"] = {"text": (work / "export" / "pipeline.config").read_text()}
    versions = {"tensorflow": tf.__version__, "object-detection-by-ovi": "0.0.1",
                "tf-models-official": "2.20.0", "tf-keras": "2.21.0"}
    seconds = round(time.time() - start, 1) if built else None
    compact.write_structure(name, files, {
        "family": "od-api-tf2", "exporter": "object_detection.exporter_lib_v2.export_inference_graph (image_tensor)",
        "generated_with": versions, "generation_seconds": seconds, "user_file": "", "kind": "tf2-export",
        "checkpoint": ckpt, "refill": refill, "facts": facts})
    # the TFLite-friendly SavedModel: same checkpoint, other functions; its keys point at the same constants
    lite_gd, lite_inputs, lite_outputs, lite_signature = frozen_serving(work / "tflite" / "saved_model")
    lite_files, lite_ckpt = saved_model_files(work / "tflite" / "saved_model", consts, stripped)
    lite_facts = {**tf_compact.graph_facts(lite_gd), "serving_inputs": lite_inputs, "serving_outputs": lite_outputs,
                  "signature_inputs": lite_signature, "classes": config.model.ssd.num_classes, "size": model.size}
    compact.write_structure(name + "-tflite_savedmodel", lite_files, {
        "family": "od-api-tf2", "exporter": "object_detection.export_tflite_graph_lib_tf2.export_tflite_model "
        "(max_detections 10, use_regular_nms false)", "generated_with": versions, "generation_seconds": seconds,
        "user_file": "", "kind": "tf2-tflite-savedmodel", "checkpoint": lite_ckpt,
        "weights_from": {"structure": name, "file": "serving_function.pb"}, "refill": refill, "facts": lite_facts})


def main(argv: list[str]) -> None:
    for name in argv or list(TF2):
        export(name)


if __name__ == "__main__":
    main(sys.argv[1:])
