"""Model card schema: the frozen dataclasses and closed sets a card is made of.

A card is data: published files, tensor specs per format, preprocessing, labels, accuracy, recipes, parity
tolerances and the model's facts in MLPerf's reference app. zoo/parse.py builds them from YAML with a context path
in every error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from edgezoo.core.errors import CardError


class Task(str, Enum):
    CLASSIFICATION = "classification"
    DETECTION = "detection"


class Target(str, Enum):
    """Artifact formats edgezoo exports to."""

    TFLITE = "tflite"
    ONNX = "onnx"


class ModelFormat(str, Enum):
    """Formats a card describes tensors for (the published ones and our targets)."""

    TF = "tf"  # frozen GraphDef
    TFLITE = "tflite"
    ONNX = "onnx"

    @property
    def suffix(self) -> str:
        return _SUFFIXES[self]

    @classmethod
    def of(cls, path: str | Path) -> ModelFormat | None:
        """The format a model file's suffix says (None for any other file): the one suffix -> format map."""
        return next((fmt for fmt, suffix in _SUFFIXES.items() if Path(path).suffix.lower() == suffix), None)


_SUFFIXES = {ModelFormat.TF: ".pb", ModelFormat.TFLITE: ".tflite", ModelFormat.ONNX: ".onnx"}


class HashAlgorithm(str, Enum):
    SHA256 = "sha256"
    MD5 = "md5"




@dataclass(frozen=True)
class Checksum:
    """`sha256:<hex>` / `md5:<hex>`; `known=False` when the card honestly has none (trust on first use)."""

    algorithm: HashAlgorithm | None
    hexdigest: str | None

    @property
    def known(self) -> bool:
        return self.hexdigest is not None

    def __str__(self) -> str:
        return f"{self.algorithm.value}:{self.hexdigest}" if self.known else "unknown"


@dataclass(frozen=True)
class PublishedFile:
    name: str
    url: str
    size: int | None
    checksum: Checksum
    mirrors: tuple[str, ...] = ()
    archive: str | None = None  # "tgz" | "tar.gz" | "zip" | None
    members: tuple[str, ...] = ()  # archive members the recipes use (paths inside the archive)
    opset: int | None = None
    standin: str | None = None  # name of the stand-in builder (edgezoo.standins registry)
    note: str = ""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # -1 or a symbolic name for dynamic dims
    dtype: str
    layout: str = "any"
    role: str = ""  # e.g. "logits", "probabilities", "argmax", "boxes", "scores", "classes", "num_detections"


@dataclass(frozen=True)
class FormatSpec:
    """Where a format's model lives (file, optional archive member) and its tensors."""

    file: str
    member: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    internal: Mapping[str, str] = field(default_factory=dict)  # named internal tensors, e.g. logits

    def output(self, role: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.role == role), None)


@dataclass(frozen=True)
class Preprocess:
    resize: int | tuple[int, int]  # short side (int) or exact (height, width)
    resize_mode: str  # "short_side" | "direct"
    interpolation: str  # "linear" | "area"
    crop: int | None
    color: str  # "RGB" | "BGR"
    mean: tuple[float, ...]
    scale: tuple[float, ...]  # multiplied after subtracting mean: x' = (x - mean) * scale
    layout: str  # "NHWC" | "NCHW"
    dtype: str = "float32"


@dataclass(frozen=True)
class Labels:
    dataset: str  # "imagenet" | "coco"
    num_classes: int  # as the model outputs them (incl. background)
    offset: int  # predicted class index + offset = dataset label
    map: str = ""  # e.g. "coco80to90" for contiguous 1..80 labels


@dataclass(frozen=True)
class Accuracy:
    metric: str
    reference: float
    target: float
    target_fraction: float


class MlperfPipeline(str, Enum):
    """The pre_process_* function of MLPerf's python/dataset.py a model uses."""

    VGG = "pre_process_vgg"
    MOBILENET = "pre_process_mobilenet"
    COCO_MOBILENET = "pre_process_coco_mobilenet"
    COCO_RESNET34 = "pre_process_coco_resnet34"


@dataclass(frozen=True)
class Mlperf:
    """The model in MLPerf's reference app (vision/classification_and_detection): what main.py's SUPPORTED_DATASETS
    entry gives it, and what LoadGen keeps in memory."""

    preprocess: MlperfPipeline
    size: tuple[int, int]  # the model input's (height, width)
    score_threshold: float | None = None  # detections below it are dropped by the post-processing; None: none are
    performance_sample_count: int = 500  # LoadGen's performance sample count (main.py's default: min(count, 500))


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ModelCard:
    id: str
    title: str
    aliases: tuple[str, ...]
    task: Task
    description: str
    files: tuple[PublishedFile, ...]
    formats: Mapping[ModelFormat, FormatSpec]
    preprocess: Preprocess
    labels: Labels
    accuracy: Accuracy
    recipes: Mapping[Target, RecipeSpec]
    tolerances: Mapping[str, float]
    mlperf: Mlperf | None = None  # None: not a model of MLPerf's reference app (no MLPerf preprocessing)
    source: str = ""  # where the card was loaded from

    def file(self, name: str) -> PublishedFile:
        for f in self.files:
            if f.name == name:
                return f
        raise CardError(f"{self.id}: no published file named {name!r}",
                        hint="files: " + ", ".join(f.name for f in self.files))

    def format(self, fmt: ModelFormat | str) -> FormatSpec:
        fmt = ModelFormat(fmt)
        if fmt not in self.formats:
            raise CardError(f"{self.id}: the card describes no {fmt.value} format")
        return self.formats[fmt]

    def recipe(self, target: Target | str) -> RecipeSpec:
        target = Target(target)
        if target not in self.recipes:
            raise CardError(f"{self.id}: no recipe for target {target.value!r}",
                            hint="targets: " + ", ".join(t.value for t in self.recipes))
        return self.recipes[target]
