"""MLPerf's per-model preprocessing (vision/classification_and_detection/python/dataset.py), step for step.

    resnet50-v1.5      pre_process_vgg: BGR->RGB, short side to int(100 * 224 / 87.5) = 256 keeping the aspect
                       ratio with int() truncation, cv2.INTER_AREA on the uint8 image, centre crop 224, float32,
                       minus [123.68, 116.78, 103.94].
    mobilenet-v1       pre_process_mobilenet: the same geometry with cv2.INTER_LINEAR (on uint8), then
                       ((x / 255) - 0.5) * 2.
    ssd-mobilenet-v1   pre_process_coco_mobilenet: float32, GRAY2RGB when one channel, BGR->RGB, cv2.resize to
                       300x300 INTER_LINEAR on the float image, then cast to uint8 (truncation).
    ssd-resnet34-1200  pre_process_coco_resnet34: as above to 1200x1200 (stays float), / 255 - ImageNet mean,
                       / ImageNet std.

The arithmetic is done in MLPerf's order and dtypes, so the values are the same bits as the reference's. Output: one
image, HWC (or CHW with layout="NCHW", MLPerf's need_transpose), no batch dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgezoo import zoo
from edgezoo.core.errors import DatasetError
from edgezoo.preprocessing.steps import Arithmetic, bgr_to_rgb, center_crop, check_image, from_planes, planes_of
from edgezoo.preprocessing.steps import short_side_size as aspect_resize_size
from edgezoo.zoo.schema import MlperfPipeline

__all__ = ["MlperfPipeline", "ModelPreprocess", "mlperf_preprocess", "model_preprocess", "default_layout",
           "check_image", "aspect_resize_size", "center_crop", "coco_resize", "Arithmetic"]


@dataclass(frozen=True)
class ModelPreprocess:
    pipeline: MlperfPipeline
    height: int
    width: int
    mean: tuple[float, ...]  # pre_process_vgg's per-channel mean: the card's


# resize_with_aspectratio's default: the crop is 87.5 % of the resized short side.
CROP_PERCENT = 87.5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _cv2():
    import cv2  # lazy: OpenCV is heavy

    return cv2


def model_preprocess(model_id: str) -> ModelPreprocess:
    """The MLPerf pipeline of a zoo model (id or alias), as its card's mlperf section says."""
    card = zoo.get_card(model_id)
    if card.mlperf is None:
        raise DatasetError(f"{card.id}: MLPerf's reference app has no preprocessing for this model",
                           hint="models with one: " + ", ".join(c.id for c in zoo.all_cards() if c.mlperf))
    return ModelPreprocess(card.mlperf.preprocess, *card.mlperf.size, mean=card.preprocess.mean)


def default_layout(model_id: str) -> str:
    """The layout of the card's preprocessing ("NHWC" or "NCHW")."""
    return zoo.get_card(model_id).preprocess.layout


def mlperf_preprocess(image_bgr: np.ndarray, model_id: str, *, layout: str | None = None) -> np.ndarray:
    """One decoded image (as cv2.imread returns it) -> the model's input, exactly as MLPerf's reference app makes it.

    layout: "NHWC" -> HxWxC, "NCHW" -> CxHxW (default: the card's). dtype: uint8 for ssd-mobilenet-v1, else float32.
    """
    spec = model_preprocess(model_id)
    layout = layout or default_layout(model_id)
    if layout not in ("NHWC", "NCHW"):
        raise DatasetError(f"layout must be NHWC or NCHW, got {layout!r}")
    image = check_image(image_bgr)
    if spec.pipeline in (MlperfPipeline.VGG, MlperfPipeline.MOBILENET):
        out = _classification(image, spec)
    elif spec.pipeline is MlperfPipeline.COCO_MOBILENET:
        out = coco_resize(image, spec.height, spec.width).astype(np.uint8)
    else:
        return _imagenet_normalised(coco_resize(image, spec.height, spec.width), layout)
    return np.ascontiguousarray(out.transpose(2, 0, 1)) if layout == "NCHW" else out


def _classification(image: np.ndarray, spec: ModelPreprocess) -> np.ndarray:
    cv2 = _cv2()
    rgb = bgr_to_rgb(image)
    interpolation = cv2.INTER_AREA if spec.pipeline is MlperfPipeline.VGG else cv2.INTER_LINEAR
    short_h, short_w = int(100.0 * spec.height / CROP_PERCENT), int(100.0 * spec.width / CROP_PERCENT)
    h, w = aspect_resize_size(rgb.shape[0], rgb.shape[1], short_h, short_w)
    resized = cv2.resize(rgb, (w, h), interpolation=interpolation)  # on uint8, as MLPerf
    # dataset.center_crop: int() of the half-differences (steps.Arithmetic.MLPERF)
    pixels = center_crop(resized, spec.height, spec.width, Arithmetic.MLPERF).astype(np.float32)
    if spec.pipeline is MlperfPipeline.VGG:
        pixels -= np.array(spec.mean, dtype=np.float32)
    else:
        pixels /= 255.0
        pixels -= 0.5
        pixels *= 2
    return pixels


def coco_resize(image: np.ndarray, height: int, width: int, interpolation: int | None = None) -> np.ndarray:
    """dataset.maybe_resize: float32, GRAY2RGB for one channel, BGR->RGB, resize (INTER_LINEAR) to height x width."""
    cv2 = _cv2()
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    flag = cv2.INTER_LINEAR if interpolation is None else interpolation
    return cv2.resize(pixels, (width, height), interpolation=flag)


def _imagenet_normalised(pixels: np.ndarray, layout: str) -> np.ndarray:
    """pre_process_coco_resnet34's (x / 255 - mean) / std, one colour plane at a time.

    Each step is the same float32 elementwise operation as MLPerf's broadcast over HxWx3, so the bits are the same;
    on contiguous planes it runs several times faster (1200x1200 images make this the costly step)."""
    planes = planes_of(pixels)
    planes /= np.float32(255.0)
    for channel, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD)):
        planes[channel] -= np.float32(mean)
        planes[channel] /= np.float32(std)  # MLPerf divides by std: not the same bits as times 1 / std
    return from_planes(planes, layout)
