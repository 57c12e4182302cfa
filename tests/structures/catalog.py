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
              "torchvision ssd300_vgg16 (91 classes, 8732 anchors) behind the batch-1 wrapper, opset 17", _ONNX),
    Structure("tv-ssd300-vgg16-c21-raw", Family.TORCHVISION,
              "torchvision ssd300_vgg16, 21 classes, exported as is (input [3,300,300]), opset 13", _ONNX,
              fullsize=True),
)}


def available() -> list[str]:
    """Catalogue entries whose data folder is present."""
    return [name for name in STRUCTURES if (DATA / name / "structure.json").exists()]
