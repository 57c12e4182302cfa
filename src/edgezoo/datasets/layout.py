"""What a dataset is once opened: its kind, its samples in MLPerf's query-sample-library order, and the layout facts.

The layouts are the ones MLPerf's reference app reads (vision/classification_and_detection):
  ImageNet  DIR/val_map.txt ("relative/path.JPEG label" per line, label 0..999), images relative to DIR;
  COCO      DIR/annotations/instances_val2017.json, images under DIR/val2017/.

`Sample.index` is the qsl_idx MLPerf's accuracy scripts use for the image: its 0-based line in val_map.txt, or its
position in the annotations' "images" list. It stays that even when images are skipped (`--skip-bad`), so an
accuracy log written with `Sample.index` is scored by tools/accuracy-imagenet.py / accuracy-coco.py against the
unmodified dataset files. (MLPerf's own loader drops missing images and renumbers the rest, which silently shifts
every later index against val_map.txt; edgezoo does not reproduce that.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class DatasetKind(str, Enum):
    IMAGENET = "imagenet"
    COCO = "coco"


VAL_MAP = "val_map.txt"
COCO_ANNOTATIONS = Path("annotations") / "instances_val2017.json"
COCO_IMAGES = "val2017"
# Written by the stand-in builder at the dataset root; its presence makes Dataset.standin true.
STANDIN_MARKER = "STAND-IN.txt"
# The real datasets' sizes: a run on fewer images is a subset, and MLPerf targets are judged only on the full set.
FULL_SIZE = {DatasetKind.IMAGENET: 50_000, DatasetKind.COCO: 5_000}
# The dataset a card's `labels.dataset` names.
KIND_OF_LABELS = {"imagenet": DatasetKind.IMAGENET, "coco": DatasetKind.COCO}


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    label: the val_map label 0..999 (ImageNet), else None. image_id: the COCO image id, else None.
    height/width: the size the annotations record (COCO: what scoring uses to turn normalised boxes into pixels);
    0 for ImageNet, whose val_map.txt records no sizes (classification scoring never needs them).
    """

    index: int
    path: Path
    label: int | None
    image_id: int | None
    height: int
    width: int


@dataclass
class Dataset:
    """An opened dataset: `samples` in qsl order (see the module doc for what `Sample.index` means)."""

    kind: DatasetKind
    root: Path
    samples: list[Sample]
    full_size: int
    standin: bool = False
    annotations_path: Path | None = None  # COCO only
    category_ids: list[int] = field(default_factory=list)  # COCO only: file order, as COCO.getCatIds() returns it
    skipped: list[str] = field(default_factory=list)  # images left out with skip_bad, relative to root
    index_file: Path | None = None  # val_map.txt or the annotations file
    dropped: set[int] = field(default_factory=set)  # qsl_idx of samples found unreadable later (record_skip)

    def __len__(self) -> int:
        return len(self.samples)

    def record_skip(self, sample: Sample) -> None:
        """Count an image left out while evaluating (load_image raised DatasetError and --skip-bad is on). The sample
        stays in `samples` (its qsl_idx is still valid); the caller simply produces no record for it. Call it from
        the one thread that collects results."""
        name = sample.path.relative_to(self.root).as_posix() if sample.path.is_relative_to(self.root) \
            else str(sample.path)
        if sample.index not in self.dropped:
            self.dropped.add(sample.index)
            self.skipped.append(name)

    @property
    def usable(self) -> int:
        """Images that can be scored: the samples minus those record_skip() dropped."""
        return len(self.samples) - len(self.dropped)

    @property
    def is_full(self) -> bool:
        """True when every image of a full-size dataset is here: only then is an MLPerf target judged."""
        return not self.skipped and len(self.samples) == self.full_size

    def describe(self) -> str:
        """"imagenet: 50,000 images" / "coco: 24 of 5,000 images (subset), 1 skipped, STAND-IN"."""
        count = f"{self.usable:,} images" if self.is_full else f"{self.usable:,} of {self.full_size:,} images (subset)"
        extras = [f"{len(self.skipped)} skipped"] if self.skipped else []
        extras += ["STAND-IN"] if self.standin else []
        return ", ".join([f"{self.kind.value}: {count}", *extras])
