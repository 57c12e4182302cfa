"""Calibration frames: a folder of images or a dataset folder -> the bundle's model inputs (its config.yaml
preprocessing), checked for count and decodability before anything is quantized."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgezoo.core.errors import EdgezooError
from edgezoo.datasets import COCO_ANNOTATIONS, VAL_MAP, Sample, load_image, open_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_FRAMES = 20  # TIDL's advanced_options:calibration_frames default
MIN_FRAMES = 2  # one frame gives ranges that describe that picture only


class CalibrationError(EdgezooError):
    """The calibration folder cannot provide the frames asked for."""


@dataclass(frozen=True)
class CalibrationSet:
    source: Path
    files: tuple[Path, ...]
    inputs: tuple[np.ndarray, ...]  # one preprocessed model input per file, batch dimension included

    def __len__(self) -> int:
        return len(self.inputs)


def list_images(folder: Path) -> list[Path]:
    """The images to calibrate on: a dataset folder's samples in qsl order, else every image file below `folder`
    in sorted order (so the same folder always gives the same frames)."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise CalibrationError(f"calibration folder {folder} {what}",
                               hint="pass a folder of images or a dataset folder as --calibration")
    if (folder / VAL_MAP).is_file() or (folder / COCO_ANNOTATIONS).is_file():
        return [sample.path for sample in open_dataset(folder).samples]
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_calibration(folder: Path, frames: int, preprocess, dtype: str) -> CalibrationSet:
    """The first `frames` images of `folder`, decoded and preprocessed (`preprocess(image_bgr, dtype=...)`).

    Too few images is an error saying how many were found and how many are needed; an image that does not decode
    is an error naming it (a calibration set silently missing frames would give other scales)."""
    if frames < MIN_FRAMES:
        raise CalibrationError(f"--frames {frames}: at least {MIN_FRAMES} calibration frames are needed")
    files = list_images(folder)
    if len(files) < frames:
        raise CalibrationError(f"calibration folder {folder}: {len(files)} image(s) found, {frames} needed",
                               hint=f"add images ({', '.join(IMAGE_SUFFIXES[:3])}, ...) or lower --frames")
    chosen = tuple(files[:frames])
    inputs = []
    for index, path in enumerate(chosen):
        try:
            image = load_image(Sample(index=index, path=path, label=None, image_id=None, height=0, width=0))
        except EdgezooError as exc:
            raise CalibrationError(f"calibration {exc.message}",
                                   hint="remove or replace it in the calibration folder") from None
        inputs.append(np.asarray(preprocess(image, dtype=dtype))[None])
    return CalibrationSet(Path(folder), chosen, tuple(inputs))
