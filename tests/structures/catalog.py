"""The structures: what each one is, which exporter wrote it, and which edgezoo route it should take."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


class Route(str, Enum):
    """`edgezoo export --graph <path> --to ...` routes a structure is expected to take."""

    TFLITE = "tflite"  # --to tflite (TFLite_Detection_PostProcess)
    ONNX_META_ARCH = "onnx+prototxt"  # --to onnx [--meta-arch ssd]: ONNX + TIDL meta_arch.prototxt


class Family(str, Enum):
    OD_API_TF1 = "od-api-tf1"
    OD_API_TF2 = "od-api-tf2"
    TORCHVISION = "torchvision"
    NVIDIA_SSD300 = "nvidia-ssd300"


@dataclass(frozen=True)
class Structure:
    name: str
    family: Family
    description: str
    routes: tuple[Route, ...]
    fullsize: bool = False  # slow to materialise or to convert: tests using it carry @pytest.mark.fullsize
    # (selection.py: which of the others the default run calibrates)

    @property
    def manifest(self) -> dict:
        """structure.json: the exporter, what was stripped, refill hints, facts about the real export."""
        return _manifest(self.name)

    @property
    def exporter(self) -> str:
        return self.manifest["exporter"]

    @property
    def facts(self) -> dict:
        return self.manifest["facts"]


@functools.lru_cache(maxsize=None)
def _manifest(name: str) -> dict:
    return json.loads((DATA / name / "structure.json").read_text())


_ONNX = (Route.ONNX_META_ARCH,)
_OD_API_ROUTES = (Route.TFLITE, Route.ONNX_META_ARCH)

def _tf1(name: str, what: str, fullsize: bool = False) -> tuple[Structure, Structure]:
    """A TF1 OD API model as two user artifacts: the export folder and the tflite_graph.pb (same checkpoint)."""
    return (
        Structure(name, Family.OD_API_TF1, f"{what}: the folder exporter.py writes (frozen_inference_graph.pb with "
                  "uint8 image_tensor, map_fn pre/post-processing, per-class NMS; + pipeline.config)", _OD_API_ROUTES,
                  fullsize=fullsize),
        Structure(name + "-tflite_graph", Family.OD_API_TF1, f"{what}: tflite_graph.pb from "
                  "export_tflite_ssd_graph (default flags: max_detections 10, fast NMS), the same weights",
                  (Route.TFLITE,), fullsize=fullsize),
    )


def _tf2(name: str, what: str) -> tuple[Structure, Structure]:
    """A TF2 OD API model as the two SavedModels users convert: exporter_main_v2's and export_tflite_graph_tf2's."""
    return (
        Structure(name, Family.OD_API_TF2, f"{what}: the folder exporter_main_v2.py writes (saved_model/ with a "
                  "uint8 input_tensor [1,H,W,3] signature + pipeline.config)", _OD_API_ROUTES),
        Structure(name + "-tflite_savedmodel", Family.OD_API_TF2, f"{what}: the SavedModel "
                  "export_tflite_graph_tf2.py writes (float input [1,H,W,3], TFLite_Detection_PostProcess as a "
                  "composite function; max_detections 10)", (Route.TFLITE,)),
    )


STRUCTURES: dict[str, Structure] = {s.name: s for s in (
    Structure("nvidia-ssd300-r18-onnxnms", Family.NVIDIA_SSD300,
              "SSD300 written like NVIDIA DeepLearningExamples / MLPerf (ResNet18 trunk, 81 classes, 8732 priors), "
              "ONE ONNX NonMaxSuppression (opset 11) then TopK(k = Min(200, n)): the NMS-limit case", _ONNX),
    Structure("nvidia-ssd300-r18-batchednms", Family.NVIDIA_SSD300,
              "the same SSD300 post-processed with torchvision.ops.batched_nms: NonMaxSuppression inside an If "
              "(opset 17), score > 0.05 candidates, [:200]", _ONNX),
    Structure("nvidia-ssd300-r18-onnxnms-c21", Family.NVIDIA_SSD300,
              "NVIDIA-style SSD300 with 21 classes (VOC-sized), ONNX NonMaxSuppression, opset 13", _ONNX),
    Structure("tv-ssdlite320-c91-raw", Family.TORCHVISION,
              "torchvision ssdlite320_mobilenet_v3_large (91 classes) exported as is: input [3,320,320], "
              "in-graph GeneralizedRCNNTransform, per-class TopK, batched_nms inside an If", _ONNX),
    Structure("tv-ssdlite320-c91", Family.TORCHVISION,
              "torchvision ssdlite320_mobilenet_v3_large (91 classes) behind the batch-1 wrapper: input "
              "[1,3,320,320], opset 17", _ONNX),
    Structure("tv-ssdlite320-c21", Family.TORCHVISION,
              "torchvision ssdlite320_mobilenet_v3_large, 21 classes, batch-1 wrapper, opset 11", _ONNX),
    Structure("tv-ssd300-vgg16-c91", Family.TORCHVISION,
              "torchvision ssd300_vgg16 (91 classes, 8732 anchors) behind the batch-1 wrapper, opset 17", _ONNX,
              fullsize=True),
    *_tf1("tf1-ssd_mobilenet_v1_coco", "ssd_mobilenet_v1_coco (300x300, 90 classes, 1917 anchors, 1x1 last map, "
          "FusedBatchNormV3, 1x1 box predictor)"),
    *_tf1("tf1-ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco (300x300, 1917 anchors, 3x3 box predictor, 1x1 last "
          "map)"),
    *_tf1("tf1-ssdlite_mobilenet_v2_coco", "ssdlite_mobilenet_v2_coco (300x300, depthwise-separable box predictor: "
          "ClassPredictor_depthwise + 1x1 ClassPredictor)"),
    *_tf1("tf1-ssd_mobilenet_v1_ppn_coco", "ssd_mobilenet_v1_ppn_shared_box_predictor (300x300, 6 levels from max "
          "pooling, WeightSharedConvolutionalBoxPredictor: one kernel feeding six convs, shared tower, 3000 anchors)"),
    *_tf1("tf1-ssd_mobilenet_v1_fpn_320", "ssd_mobilenet_v1_fpn_shared_box_predictor at 320x320 (FPN levels 3-7, "
          "multiscale anchors: 6 per location, 4 tower layers, weight-shared heads)"),
    *_tf1("tf1-ssd_mobilenet_v1_fpn_640", "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640 as published "
          "(51150 anchors)", fullsize=True),
    *_tf1("tf1-ssd_inception_v2_coco", "ssd_inception_v2_coco (300x300, Inception v2 trunk, 3x3 box predictor "
          "without batch norm)"),
    *_tf2("tf2-ssd_mobilenet_v2_320x320_coco17", "TF2 Detection Zoo ssd_mobilenet_v2_320x320_coco17 (Keras "
          "MobileNetV2, resizes to 300x300 despite the name, 1917 anchors)"),
    *_tf2("tf2-ssd_mobilenet_v2_fpnlite_320x320_coco17", "TF2 Detection Zoo ssd_mobilenet_v2_fpnlite_320x320_coco17 "
          "(FPN-lite levels 3-7, weight-shared separable heads, 12804 anchors)"),
    Structure("tv-ssd300-vgg16-c21-raw", Family.TORCHVISION,
              "torchvision ssd300_vgg16, 21 classes, exported as is (input [3,300,300]), opset 13", _ONNX,
              fullsize=True),
)}


def available() -> list[str]:
    """Catalogue entries whose data folder is present."""
    return [name for name in STRUCTURES if (DATA / name / "structure.json").exists()]
