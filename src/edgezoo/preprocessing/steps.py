"""The arithmetic of "image -> model input", one step at a time, shared by every preprocessing path.

Two arithmetics, named where they differ:

    Arithmetic.MLPERF   MLPerf's reference app (vision/classification_and_detection/python/dataset.py):
                        centre crop at int((H - h) / 2)
    Arithmetic.TI       TI's edgeai-benchmark (preprocess/functional.py): centre crop at int((H - h + 1) * 0.5),
                        one pixel further when H - h is odd

The short-side resize size is the same in both (int() of the long side); the paths differ in what they resize
(uint8 or float32 pixels) and how they normalise, which their own modules state:

    a card's preprocess section (verification, stand-ins)    preprocessing.card
    MLPerf's per-model pipelines, bit for bit (evaluation)  preprocessing.mlperf
    a bundle's config.yaml with MLPerf's arithmetic          preprocessing.bundle (eval, quantize)
    a bundle's config.yaml with TI's arithmetic              preprocessing.ti (eval --semantics ti)
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from edgezoo.core.errors import DatasetError


class Arithmetic(str, Enum):
    """Whose rounding a step follows."""

    MLPERF = "mlperf"
    TI = "ti"


def check_image(image: np.ndarray) -> np.ndarray:
    """A uint8 HxWx3 (BGR) or HxW / HxWx1 (grayscale) array, else DatasetError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise DatasetError(f"an image must be a uint8 numpy array (as cv2.imread returns), got "
                           f"{getattr(image, 'dtype', type(image).__name__)}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))) or min(image.shape[:2]) < 1:
        raise DatasetError(f"an image must be HxWx3 (BGR) or HxW (grayscale), got shape {image.shape}")
    return image


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """A decoded image (BGR, or one grayscale channel given three as imread would) as contiguous RGB uint8."""
    import cv2  # lazy: OpenCV is heavy

    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def short_side_size(height: int, width: int, short_height: int, short_width: int | None = None) -> tuple[int, int]:
    """(h, w) with the short side resized to `short_*` and the long one scaled and truncated with int(): MLPerf's
    resize_with_aspectratio and TI's resize agree on it (a square image takes the width branch in both)."""
    short_width = short_height if short_width is None else short_width
    if height > width:
        return int(short_height * height / width), short_width
    return short_height, int(short_width * width / height)


def crop_origin(height: int, width: int, crop_height: int, crop_width: int,
                arithmetic: Arithmetic = Arithmetic.MLPERF) -> tuple[int, int]:
    """(top, left) of a centre crop in `arithmetic`'s rounding."""
    if arithmetic is Arithmetic.TI:
        return int((height - crop_height + 1) * 0.5), int((width - crop_width + 1) * 0.5)
    return int((height - crop_height) / 2), int((width - crop_width) / 2)


def center_crop(image: np.ndarray, crop_height: int, crop_width: int,
                arithmetic: Arithmetic = Arithmetic.MLPERF) -> np.ndarray:
    """The centre crop of an HxW(xC) array (a view)."""
    top, left = crop_origin(image.shape[0], image.shape[1], crop_height, crop_width, arithmetic)
    return image[top:top + crop_height, left:left + crop_width]


def resize(image: np.ndarray, height: int, width: int, flag: int) -> np.ndarray:
    """cv2.resize to height x width with an OpenCV interpolation flag, in the image's own dtype (uint8 rounds)."""
    import cv2  # lazy: OpenCV is heavy

    return cv2.resize(image, (width, height), interpolation=flag)


def planes_of(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 -> contiguous 3xHxW (per-plane arithmetic on 1200x1200 inputs runs several times faster)."""
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def normalize_planes(planes: np.ndarray, mean: tuple[float, ...], scale: tuple[float, ...]) -> np.ndarray:
    """(x - mean) * scale in float32, in place, one plane at a time (the same float32 operations as a broadcast)."""
    for channel, (m, s) in enumerate(zip(mean, scale)):
        planes[channel] -= np.float32(m)
        planes[channel] *= np.float32(s)
    return planes


def from_planes(planes: np.ndarray, layout: str) -> np.ndarray:
    """3xHxW -> the layout asked for ("NCHW" keeps planes, "NHWC" interleaves), no batch dimension."""
    return planes if layout == "NCHW" else np.ascontiguousarray(planes.transpose(1, 2, 0))
