"""Export the PyTorch SSD structures with the real torch.onnx exporter and store them compact.

    python -m tests.structures.regenerate.torch_structures [NAME ...]     (from the repository root, torch venv)

NVIDIA/MLPerf-style SSD300 (pytorch_ssd300.py) with one ONNX NonMaxSuppression or torchvision's batched_nms, and
torchvision's own ssdlite320_mobilenet_v3_large / ssd300_vgg16 (weights=None), raw ([3,H,W] input, as
torch.onnx.export writes a torchvision detector) or behind the batch-1 wrapper users write.
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from tests.structures.regenerate import compact
from tests.structures.regenerate.pytorch_ssd300 import SSD300, Detector

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@dataclass(frozen=True)
class TorchStructure:
    family: str  # "nvidia-ssd300" | "torchvision"
    arch: str  # backbone for nvidia, torchvision builder name
    classes: int  # class columns, background included
    opset: int
    nms: str = ""  # nvidia: "onnx" | "batched"
    batch1: bool = True  # torchvision: wrapped to take [1,3,H,W]
    size: int = 300


STRUCTURES = {
    "nvidia-ssd300-r18-onnxnms": TorchStructure("nvidia-ssd300", "resnet18", 81, 11, nms="onnx"),
    "nvidia-ssd300-r18-batchednms": TorchStructure("nvidia-ssd300", "resnet18", 81, 17, nms="batched"),
    "nvidia-ssd300-r18-onnxnms-c21": TorchStructure("nvidia-ssd300", "resnet18", 21, 13, nms="onnx"),
    "tv-ssdlite320-c91-raw": TorchStructure("torchvision", "ssdlite320_mobilenet_v3_large", 91, 17, batch1=False,
                                            size=320),
    "tv-ssdlite320-c91": TorchStructure("torchvision", "ssdlite320_mobilenet_v3_large", 91, 17, size=320),
    "tv-ssdlite320-c21": TorchStructure("torchvision", "ssdlite320_mobilenet_v3_large", 21, 11, size=320),
    "tv-ssd300-vgg16-c91": TorchStructure("torchvision", "ssd300_vgg16", 91, 17),
    "tv-ssd300-vgg16-c21-raw": TorchStructure("torchvision", "ssd300_vgg16", 21, 13, batch1=False),
}


class Batch1(nn.Module):
    """The wrapper a user writes so a torchvision detector takes [1,3,H,W] and returns tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):  # noqa: ANN201
        out = self.model(list(x))[0]
        return out["boxes"], out["scores"], out["labels"]


def _unfold_defaults(model: nn.Module) -> None:
    """Non-default batch-norm statistics and biases, so that the exporter's BN folding and constant de-duplication
    behave as on a trained model (default statistics fold to identical zero biases the exporter then shares)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n) * 0.1)
            module.running_var.copy_(torch.rand(n) + 0.5)
            module.weight.data.copy_(torch.rand(n) * 0.4 + 0.8)
            module.bias.data.copy_(torch.randn(n) * 0.1)
        elif isinstance(module, nn.Conv2d) and module.bias is not None:
            module.bias.data.copy_(torch.randn_like(module.bias) * 0.1)


def build(spec: TorchStructure) -> tuple[nn.Module, tuple, dict]:
    """(module, example args, manifest bits)."""
    if spec.family == "nvidia-ssd300":
        model = Detector(SSD300(spec.arch, spec.classes), spec.nms)
        x = torch.rand(1, 3, 300, 300)
        heads = {"class_re": r"^ssd\.conf\.\d+\.weight$", "box_re": r"^ssd\.loc\.\d+\.weight$", "class_major": True}
        inputs = {"name": "image", "layout": "nchw", "size": [300, 300], **IMAGENET}
        post = {"score_threshold": 0.05, "iou_threshold": 0.5, "max_per_class": 200, "max_total": 200,
                "variances": [0.1, 0.2], "priors": 8732, "prior_form": "cxcywh, size-major per level, clamped"}
        names = (["image"], ["bboxes", "labels", "scores"])
    else:
        builder = getattr(torchvision.models.detection, spec.arch)
        detector = builder(weights=None, weights_backbone=None, num_classes=spec.classes)
        model = Batch1(detector) if spec.batch1 else detector
        x = torch.rand(1, 3, spec.size, spec.size) if spec.batch1 else [torch.rand(3, spec.size, spec.size)]
        last = r"1\." if "ssdlite" in spec.arch else ""
        heads = {"class_re": rf"^(model\.)?head\.classification_head\.module_list\.\d+\.{last}weight$",
                 "box_re": rf"^(model\.)?head\.regression_head\.module_list\.\d+\.{last}weight$",
                 "class_major": False}
        inputs = {"name": "images" if not spec.batch1 else "image", "layout": "nchw" if spec.batch1 else "chw",
                  "size": [spec.size, spec.size]}
        post = {"score_threshold": detector.score_thresh, "iou_threshold": detector.nms_thresh,
                "max_total": detector.detections_per_img, "topk_candidates": detector.topk_candidates,
                "box_coder_weights": list(detector.box_coder.weights),
                "priors": int(sum(detector.anchor_generator.num_anchors_per_location()[i] * s * s for i, s in
                                  enumerate(_feature_sizes(detector, spec.size))))}
        names = ([inputs["name"]], ["boxes", "scores", "labels"])
        x = (x,) if not spec.batch1 else x
    _unfold_defaults(model)
    model.eval()
    args = x if isinstance(x, tuple) else (x,)
    return model, args, {"heads": heads, "input": inputs, "postprocess": post, "io_names": names}


def _feature_sizes(detector: nn.Module, size: int) -> list[int]:
    detector.eval()
    with torch.no_grad():
        feats = detector.backbone(torch.zeros(1, 3, size, size))
    return [f.shape[-1] for f in feats.values()]


def export(name: str) -> None:
    import onnx
    import re

    spec = STRUCTURES[name]
    torch.manual_seed(0)
    start = time.time()
    model, args, bits = build(spec)
    buf = io.BytesIO()
    inputs, outputs = bits.pop("io_names")
    with torch.no_grad():
        torch.onnx.export(model, args, buf, input_names=inputs, output_names=outputs, opset_version=spec.opset,
                          dynamo=False)
    proto = onnx.load_model_from_string(buf.getvalue())
    facts = compact.onnx_facts(proto)
    stripped = compact.strip_onnx(proto)
    heads = bits.pop("heads")
    class_k = sorted(n for n in stripped if re.match(heads["class_re"], n))
    box_k = sorted(n for n in stripped if re.match(heads["box_re"], n))
    if len(class_k) != 6 or len(box_k) != 6:
        raise SystemExit(f"{name}: head kernels not found ({class_k}, {box_k})")
    manifest = {
        "family": spec.family, "exporter": f"torch.onnx.export (TorchScript, opset {spec.opset})",
        "generated_with": {"torch": torch.__version__.split("+")[0],
                           "torchvision": torchvision.__version__.split("+")[0], "onnx": onnx.__version__},
        "generation_seconds": round(time.time() - start, 1),
        "user_file": "model.onnx", "kind": "onnx",
        "refill": {"heads": {"class": class_k, "box": box_k, "columns": spec.classes,
                             "class_major": heads["class_major"]},
                   "scoring": {"softmax": True, "background": 0}, "input": bits["input"]},
        "facts": {**facts, "classes": spec.classes, "postprocess": bits["postprocess"],
                  "batch1_wrapper": spec.batch1 if spec.family == "torchvision" else None},
    }
    compact.write_structure(name, {"model.onnx": {"bytes": proto.SerializeToString(), "stripped": stripped}},
                            manifest)


def main(argv: list[str]) -> None:
    for name in argv or list(STRUCTURES):
        export(name)


if __name__ == "__main__":
    main(sys.argv[1:])
