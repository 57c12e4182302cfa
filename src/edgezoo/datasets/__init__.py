"""Datasets in the layouts MLPerf's reference app reads, stand-in datasets, and sample photographs (images).

    open_dataset(root, count=None, skip_bad=False) -> Dataset      layout detection + validation, qsl order
    load_image(sample) -> BGR uint8                                 as cv2.imread; DatasetError names a bad file
    build_standin(kind, out, count=..., seed=0, labeller=None)      a small offline dataset marked STAND-IN

Turning an image into a model input is edgezoo.preprocessing's job. Nothing heavy is imported here: OpenCV and
scikit-image load inside the functions that use them.
"""

from __future__ import annotations

from edgezoo.datasets.layout import (COCO_ANNOTATIONS, COCO_IMAGES, FULL_SIZE, STANDIN_MARKER, VAL_MAP, Dataset,
                                     DatasetKind, Sample)
from edgezoo.datasets.loading import detect_kind, expect_kind, load_image, open_dataset
from edgezoo.datasets.standin import build_standin

__all__ = ["COCO_ANNOTATIONS", "COCO_IMAGES", "FULL_SIZE", "STANDIN_MARKER", "VAL_MAP", "Dataset", "DatasetKind",
           "Sample", "build_standin", "detect_kind", "expect_kind", "load_image", "open_dataset"]
