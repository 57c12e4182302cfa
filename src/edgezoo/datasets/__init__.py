"""Datasets in the layouts MLPerf's reference app reads, its per-model preprocessing, and stand-in datasets.

    open_dataset(root, count=None, skip_bad=False) -> Dataset      layout detection + validation, qsl order
    load_image(sample) -> BGR uint8                                 as cv2.imread; DatasetError names a bad file
    mlperf_preprocess(image_bgr, model_id, layout=None)             exactly python/dataset.py's pipeline
    read_bundle_preprocess(bundle).apply(image_bgr, dtype=...)      a bundle's config.yaml preprocessing
    build_standin(kind, out, count=..., seed=0, labeller=None)      a small offline dataset marked STAND-IN

Nothing heavy is imported here: OpenCV and scikit-image load inside the functions that use them.
"""

from __future__ import annotations

from edgezoo.datasets.bundle_preprocess import BundlePreprocess, read_bundle_preprocess
from edgezoo.datasets.layout import (COCO_ANNOTATIONS, COCO_IMAGES, FULL_SIZE, STANDIN_MARKER, VAL_MAP, Dataset,
                                     DatasetKind, Sample)
from edgezoo.datasets.loading import detect_kind, expect_kind, load_image, open_dataset
from edgezoo.datasets.mlperf_preprocess import MlperfPipeline, mlperf_preprocess, model_preprocess
from edgezoo.datasets.standin import build_standin

__all__ = ["COCO_ANNOTATIONS", "COCO_IMAGES", "FULL_SIZE", "STANDIN_MARKER", "VAL_MAP", "BundlePreprocess", "Dataset",
           "DatasetKind", "MlperfPipeline", "Sample", "build_standin", "detect_kind", "expect_kind", "load_image",
           "mlperf_preprocess", "model_preprocess", "open_dataset", "read_bundle_preprocess"]

