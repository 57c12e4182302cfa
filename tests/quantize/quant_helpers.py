"""Shared inputs of the quantization tests: a folder of real photographs (scikit-image's) for calibration and the
float bundles / labelled stand-in datasets of the evaluation tests (reduced stand-ins, built once per process)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from tests.evaluation.eval_helpers import bundle, labelled_dataset  # noqa: F401 (re-exported)


@functools.lru_cache(maxsize=None)
def photo_folder() -> Path:
    """The four photographs as JPEG files, in a folder of their own."""
    import cv2

    from edgezoo.datasets.images import photographs

    folder = Path(tempfile.mkdtemp(prefix="edgezoo-quant-photos-"))
    for name, rgb in photographs():
        cv2.imwrite(str(folder / f"{name}.jpg"), np.ascontiguousarray(rgb[..., ::-1]))
    return folder


def photo_inputs(bundle_folder: Path) -> list[np.ndarray]:
    """The photographs preprocessed as the bundle says, batch dimension included."""
    import cv2

    from edgezoo.bundle.reader import read_bundle_preprocess

    pre = read_bundle_preprocess(bundle_folder)
    return [pre.apply(cv2.imread(str(p)))[None] for p in sorted(photo_folder().glob("*.jpg"))]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
