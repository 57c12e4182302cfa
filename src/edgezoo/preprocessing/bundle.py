"""A bundle's config.yaml preprocessing (edgezoo.bundle.config writes it in TI's schema) -> model inputs.

config.yaml states it the way TI's configs do: `preprocess` holds get_transform_base's parameters (resize an int =
short side, [h, w] = exact; interpolation an OpenCV flag, null = linear, 3 = area), `session` holds input_mean,
input_scale and model_id. A bundle is evaluated with that preprocessing, carried out with MLPerf's geometry so that a
bundle whose config repeats its card's preprocessing sees what the original sees in MLPerf's reference app:

    short_side  BGR->RGB, short side to `resize` keeping the aspect ratio (int() truncation), `interpolation`
                ("area" = cv2.INTER_AREA, else INTER_LINEAR) on the uint8 image, centre crop `crop`
                (dataset.center_crop's arithmetic);
    direct      float32, GRAY2RGB when needed, BGR->RGB, resize to `resize` [h, w]; when the model's card takes uint8
                pixels (ssd-mobilenet-v1) the resized pixels are truncated to uint8 first, as MLPerf's reference does.
Then RGB->BGR when `reverse_channels`, and for a float input (x - mean) * scale; for a uint8 input the pixels.

The normalisation is config.yaml's (x - mean) * scale in float32, not MLPerf's own arithmetic order, so float inputs
can differ from mlperf_preprocess() by float32 rounding (a few 1e-7 relative); geometry and pixels are identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo import zoo
from edgezoo.core.errors import ConfigError, UnknownModelError
from edgezoo.preprocessing.mlperf import coco_resize
from edgezoo.preprocessing.steps import (Arithmetic, bgr_to_rgb, center_crop, check_image, from_planes,
                                         normalize_planes, planes_of, resize, short_side_size)

CONFIG_FILE = "config.yaml"
_RESIZE_MODES = ("short_side", "direct")
_INTERPOLATIONS = ("linear", "area")
# TI's interpolation values (OpenCV flags; null = the backend's default, linear) -> edgezoo's names.
_CV2_FLAGS = {None: "linear", 1: "linear", 3: "area"}


def bundle_model_id(config: dict[str, Any]) -> str | None:
    """The zoo model id a config.yaml names: TI's schema keeps it in session.model_id; bundles written before it
    (and their mean/scale in preprocess) kept it in model_info."""
    session = config.get("session") if isinstance(config.get("session"), dict) else {}
    info = config.get("model_info") if isinstance(config.get("model_info"), dict) else {}
    found = session.get("model_id") or info.get("model_id")
    return str(found) if found else None


@dataclass(frozen=True)
class BundlePreprocess:
    """The preprocessing a bundle's config.yaml states (validated)."""

    resize_mode: str  # "short_side" | "direct"
    resize: tuple[int, int]  # short side (twice) for short_side, (height, width) for direct
    crop: tuple[int, int] | None
    interpolation: str  # "linear" | "area"
    reverse_channels: bool  # RGB -> BGR
    mean: tuple[float, float, float]
    scale: tuple[float, float, float]
    layout: str  # "NHWC" | "NCHW"
    pixels_uint8: bool  # resized pixels truncated to uint8 before normalising (the card's input is uint8)
    model_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = CONFIG_FILE) -> "BundlePreprocess":
        """Parse the `preprocess` section; ConfigError "WHERE: preprocess.KEY: ..." when it is unusable."""
        if not isinstance(config, Mapping) or not isinstance(config.get("preprocess"), Mapping):
            raise ConfigError(f"{where}: no 'preprocess' section", hint="re-export the bundle with edgezoo export")
        pre = config["preprocess"]
        session = config.get("session") if isinstance(config.get("session"), Mapping) else {}
        mode = pre.get("resize_mode", "short_side" if isinstance(pre.get("resize"), int) else "direct")
        if mode not in _RESIZE_MODES:
            raise ConfigError(f"{where}: preprocess.resize_mode must be one of {_RESIZE_MODES}, got {mode!r}")
        raw = pre.get("interpolation")
        is_flag = raw is None or (isinstance(raw, int) and not isinstance(raw, bool))
        interpolation = _CV2_FLAGS.get(raw, raw) if is_flag else raw  # edgezoo's older bundles wrote the names
        if interpolation not in _INTERPOLATIONS:
            raise ConfigError(f"{where}: preprocess.interpolation must be null, 1 (linear) or 3 (area), "
                              f"got {pre.get('interpolation')!r}")
        resize = _size(pre.get("resize"), f"{where}: preprocess.resize")
        if mode == "short_side" and resize[0] != resize[1]:
            raise ConfigError(f"{where}: preprocess.resize must be one number (the short side) with "
                              f"resize_mode short_side, got {pre.get('resize')!r}")
        crop = _size(pre["crop"], f"{where}: preprocess.crop") if pre.get("crop") is not None else None
        layout = pre.get("data_layout") or session.get("input_data_layout")
        if layout not in ("NHWC", "NCHW"):
            raise ConfigError(f"{where}: preprocess.data_layout must be NHWC or NCHW, got {layout!r}")
        model_id = bundle_model_id(config)
        mean = ("session.input_mean", session["input_mean"]) if "input_mean" in session else \
            ("preprocess.mean", pre.get("mean", 0.0))
        scale = ("session.input_scale", session["input_scale"]) if "input_scale" in session else \
            ("preprocess.scale", pre.get("scale", 1.0))
        return cls(resize_mode=mode, resize=resize, crop=crop, interpolation=interpolation,
                   reverse_channels=bool(pre.get("reverse_channels", False)),
                   mean=_triple(mean[1], f"{where}: {mean[0]}"), scale=_triple(scale[1], f"{where}: {scale[0]}"),
                   layout=layout, pixels_uint8=_card_takes_uint8(model_id), model_id=model_id)

    def apply(self, image_bgr: np.ndarray, *, dtype: str = "float32") -> np.ndarray:
        """One decoded image -> one model input (HWC or CHW per `layout`, no batch dim) of `dtype`."""
        import cv2  # lazy: OpenCV is heavy

        image = check_image(image_bgr)
        if dtype not in ("float32", "uint8"):
            raise ConfigError(f"a model input of dtype {dtype} cannot be fed from images",
                              hint="image models take float32 or uint8")
        flag = cv2.INTER_AREA if self.interpolation == "area" else cv2.INTER_LINEAR
        if self.resize_mode == "short_side":  # MLPerf's classification: resized on uint8
            rgb = bgr_to_rgb(image)
            pixels = resize(rgb, *short_side_size(rgb.shape[0], rgb.shape[1], *self.resize), flag).astype(np.float32)
        else:  # MLPerf's detection: resized in float32, truncated to uint8 where the card takes uint8
            pixels = coco_resize(image, *self.resize, interpolation=flag)
            if self.pixels_uint8 or dtype == "uint8":
                pixels = pixels.astype(np.uint8).astype(np.float32)
        if self.crop is not None and self.crop != pixels.shape[:2]:
            pixels = center_crop(pixels, *self.crop, Arithmetic.MLPERF)
        if self.reverse_channels:
            pixels = pixels[..., ::-1]
        planes = planes_of(pixels)
        planes = planes.astype(np.uint8) if dtype == "uint8" else normalize_planes(planes, self.mean, self.scale)
        return from_planes(planes, self.layout)


def _size(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return value[0], value[1]
    raise ConfigError(f"{where}: must be a positive size or [height, width], got {value!r}")


def _triple(value: Any, where: str) -> tuple[float, float, float]:
    values = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if (isinstance(values, Sequence) and not isinstance(values, str) and len(values) in (1, 3)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        floats = [float(v) for v in values]
        return (floats[0],) * 3 if len(floats) == 1 else (floats[0], floats[1], floats[2])
    raise ConfigError(f"{where}: must be a number or 3 numbers, got {value!r}")


def _card_takes_uint8(model_id: Any) -> bool:
    if not isinstance(model_id, str):
        return False
    try:
        return zoo.get_card(model_id).preprocess.dtype == "uint8"
    except UnknownModelError:
        return False
