"""Build TF1 OD API SSDs with the OD API's own model builder and exporters, and store them compact.

    TF_USE_LEGACY_KERAS=1 python -m tests.structures.regenerate.od_api_tf1 [NAME ...]   (repo root, OD API venv)

For each configuration (od_api_configs.TF1): model_builder.build in a tf.compat.v1 graph, seeded values for every
variable, a checkpoint, then exporter.export_inference_graph (input_type image_tensor -> the export folder users
have: frozen_inference_graph.pb + pipeline.config) and export_tflite_ssd_graph_lib.export_tflite_graph
(tflite_graph.pb with TFLite_Detection_PostProcess, the script's default flags).
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

od_api_shims.install(tf1=True)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from object_detection import export_tflite_ssd_graph_lib, exporter  # noqa: E402
from object_detection.builders import model_builder  # noqa: E402
from object_detection.protos import pipeline_pb2  # noqa: E402

from tests.structures.regenerate import compact, tf_compact  # noqa: E402
from tests.structures.regenerate.od_api_configs import TF1, pipeline_text  # noqa: E402

v1 = tf.compat.v1


def checkpoint(config, prefix: Path, seed: int = 0) -> None:
    """Build the model as training would leave it and save every variable with seeded values."""
    size = config.model.ssd.image_resizer.fixed_shape_resizer.height
    with tf.Graph().as_default() as graph:
        model = model_builder.build(config.model, is_training=False)
        images = v1.placeholder(tf.float32, [1, size, size, 3])
        preprocessed, shapes = model.preprocess(images)
        model.postprocess(model.predict(preprocessed, shapes), shapes)
        v1.train.get_or_create_global_step()  # the exporter restores it
        rng = np.random.default_rng(seed)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for var in v1.global_variables():
                shape = var.shape.as_list()
                name = var.op.name
                if name.endswith("moving_variance"):
                    value = rng.uniform(0.5, 1.5, shape)
                elif name.endswith("gamma"):
                    value = rng.uniform(0.8, 1.2, shape)
                elif var.dtype.base_dtype != tf.float32 or not shape:
                    continue
                else:
                    value = rng.standard_normal(shape) * (0.03 if len(shape) > 1 else 0.1)
                var.load(value.astype(np.float32), sess)
            v1.train.Saver().save(sess, str(prefix))


def export(name: str) -> None:
    start = time.time()
    text = pipeline_text(TF1[name])
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Merge(text, config)
    # ODGEN_KEEP=folder keeps the exports there and reuses them (re-compacting without rebuilding)
    keep = os.environ.get("ODGEN_KEEP")
    work = Path(keep) / name if keep else Path(tempfile.mkdtemp(prefix=f"odapi-{name}-"))
    prefix = work / "ckpt" / "model.ckpt"
    built = frozen_s = tflite_s = 0.0
    if not (work / "tflite" / "tflite_graph.pb").exists():
        prefix.parent.mkdir(parents=True, exist_ok=True)
        checkpoint(config, prefix)
        built = time.time()
        with tf.Graph().as_default():
            exporter.export_inference_graph("image_tensor", config, str(prefix), str(work / "export"))
        frozen_s = time.time() - built
        with tf.Graph().as_default():
            export_tflite_ssd_graph_lib.export_tflite_graph(config, str(prefix), str(work / "tflite"),
                                                            add_postprocessing_op=True, max_detections=10,
                                                            max_classes_per_detection=1)
        tflite_s = time.time() - built - frozen_s
    frozen = tf_compact.load_graph_def(work / "export" / "frozen_inference_graph.pb")
    tflite = tf_compact.load_graph_def(work / "tflite" / "tflite_graph.pb")
    model = TF1[name]
    versions = {"tensorflow": tf.__version__, "object-detection-by-ovi": "0.0.1", "tf-slim": "1.1.0"}
    frozen_facts = tf_compact.graph_facts(frozen)
    anchors = tf_compact.anchor_count(frozen, model.size)
    frozen_stripped, frozen_values = tf_compact.strip_graph_def(frozen)
    heads = tf_compact.head_kernels(frozen_stripped, frozen, config.model.ssd.num_classes)
    refill = {"heads": heads, "scoring": {"softmax": False, "background": 0},
              "input": {"name": "image_tensor", "layout": "nhwc", "size": [model.size, model.size],
                        "dtype": "uint8"}}
    facts = {**frozen_facts, "classes": config.model.ssd.num_classes, "size": model.size,
             "anchors": anchors}
    pipeline = (work / "export" / "pipeline.config").read_text()
    compact.write_structure(name, {
        "frozen_inference_graph.pb": {"bytes": frozen.SerializeToString(), "stripped": frozen_stripped},
        "pipeline.config": {"text": pipeline}},
        {"family": "od-api-tf1", "exporter": "object_detection.exporter.export_inference_graph (image_tensor)",
         "generated_with": versions, "generation_seconds": round(frozen_s + built - start, 1) if built else None,
         "user_file": "", "kind": "tf1-export", "refill": refill, "facts": facts})
    tflite_stripped, _ = tf_compact.strip_graph_def(tflite)
    weights_from = tf_compact.same_values(tflite_stripped, _values_of(work / "tflite" / "tflite_graph.pb"),
                                          frozen_values)
    tflite_facts = {**tf_compact.graph_facts(tflite), "classes": config.model.ssd.num_classes,
                    "postprocess_attrs": tf_compact.postprocess_attrs(tflite)}
    tflite_refill = {**refill, "input": {"name": "normalized_input_image_tensor", "layout": "nhwc",
                                         "size": [model.size, model.size], "scale": 2.0 / 255.0,
                                         "mean": [1.0, 1.0, 1.0]}}
    compact.write_structure(name + "-tflite_graph", {
        "tflite_graph.pb": {"bytes": tflite.SerializeToString(), "stripped": tflite_stripped}},
        {"family": "od-api-tf1", "exporter": "object_detection.export_tflite_ssd_graph_lib.export_tflite_graph "
         "(add_postprocessing_op, max_detections 10, max_classes_per_detection 1)",
         "generated_with": versions, "generation_seconds": round(tflite_s, 1) if built else None, "user_file": "tflite_graph.pb",
         "kind": "tf1-tflite-graph", "weights_from": {"structure": name, "file": "frozen_inference_graph.pb",
                                                      "names": {k: v for k, v in weights_from.items() if k != v}},
         "refill": tflite_refill, "facts": tflite_facts})


def _values_of(path: Path) -> dict[str, np.ndarray]:
    _, values = tf_compact.strip_graph_def(tf_compact.load_graph_def(path))
    return values


def main(argv: list[str]) -> None:
    for name in argv or list(TF1):
        export(name)


if __name__ == "__main__":
    main(sys.argv[1:])
