"""Images -> model inputs exactly as a card's `preprocess` section says (the MLPerf reference pipelines).

Classification (MLPerf): resize the short side to `resize` keeping the aspect ratio, centre-crop `crop`, then
(x - mean) * scale. Detection: resize directly to (height, width). A uint8 model input (SSD-MobileNet's image_tensor)
receives the resized pixels cast back to uint8 (truncating, as the MLPerf reference does); float inputs get the
normalised values.
"""

from __future__ import annotations

import numpy as np

from edgezoo.preprocessing.steps import Arithmetic, center_crop
from edgezoo.zoo.schema import Preprocess


def _cv2():
    import cv2  # lazy: OpenCV is heavy

    return cv2


def resize_image(image: np.ndarray, spec: Preprocess) -> np.ndarray:
    """Resize (and crop) an HxWx3 RGB uint8 image; returns float32 HxWx3 in the card's colour order."""
    cv2 = _cv2()
    interpolation = cv2.INTER_AREA if spec.interpolation == "area" else cv2.INTER_LINEAR
    img = image.astype(np.float32)
    if spec.resize_mode == "direct":
        h, w = spec.resize if isinstance(spec.resize, tuple) else (spec.resize, spec.resize)
        img = cv2.resize(img, (w, h), interpolation=interpolation)
    else:
        short = spec.resize if isinstance(spec.resize, int) else min(spec.resize)
        h, w = img.shape[:2]
        scale = short / min(h, w)
        new_h, new_w = int(round(h * scale)), int(round(w * scale))
        img = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    if spec.crop:
        img = center_crop(img, spec.crop, spec.crop, Arithmetic.MLPERF)
    if spec.color == "BGR":
        img = img[..., ::-1]
    return np.ascontiguousarray(img)


def normalize(pixels: np.ndarray, spec: Preprocess) -> np.ndarray:
    """(x - mean) * scale on HxWx3 float pixels."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    scale = np.asarray(spec.scale, dtype=np.float32)
    return ((pixels - mean) * scale).astype(np.float32)


def to_layout(hwc: np.ndarray, layout: str) -> np.ndarray:
    """HxWx3 -> a batch of one in NHWC or NCHW."""
    batch = hwc[None]
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) if layout == "NCHW" else batch


def preprocess(image: np.ndarray, spec: Preprocess, *, dtype: str | None = None, layout: str | None = None) -> np.ndarray:
    """One image -> a model input batch of 1.

    `dtype`/`layout` override the card's (a converted model may take float where the original took uint8, or NCHW
    where the original was NHWC). uint8 output = resized pixels truncated to uint8; float32 = normalised.
    """
    dtype = dtype or spec.dtype
    layout = layout or spec.layout
    pixels = resize_image(image, spec)
    if dtype == "uint8":
        values = np.clip(pixels, 0, 255).astype(np.uint8)
    else:
        # A float model fed from the uint8 path sees the truncated pixels, as the MLPerf detection reference does.
        base = np.floor(np.clip(pixels, 0, 255)) if spec.dtype == "uint8" else pixels
        values = normalize(base, spec)
    return to_layout(values, layout)
