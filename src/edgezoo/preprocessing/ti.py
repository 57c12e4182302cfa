"""A bundle's config.yaml preprocessing carried out with TI's arithmetic (edgeai-benchmark), not MLPerf's.

MLPerf's variant (bundle_preprocess / mlperf_preprocess) reproduces what MLPerf's reference app feeds the model; this
one reproduces what TI's benchmark feeds it from the same config.yaml (edgeai-benchmark 11.2, read for its documented
behaviour; see docs/TI_CONFIG.md). The steps, in TI's order:

    read        `backend: cv2`: the decoded BGR image flipped to RGB; `backend: pil`: a PIL RGB image (edgezoo decodes
                with OpenCV and hands the pixels to PIL: both decoders give the same pixels for the JPEGs measured)
    resize      on the uint8 image (results rounded to uint8, where MLPerf's SSD pipeline resizes float32 and
                truncates): an int = the short side, the long side int(size * long / short); [h, w] = exact.
                `interpolation` is the backend's own code (cv2: 1 linear, 3 area; PIL: 2 bilinear, 3 bicubic);
                null or 0 means the backend's default (cv2 linear, PIL bilinear), as TI's `x or default`
    crop        top = int((H - h + 1) * 0.5), left = int((W - w + 1) * 0.5) (MLPerf: int((H - h) / 2))
    layout      HWC -> CHW for NCHW; `reverse_channels` flips the channels
    normalise   (x - input_mean) * input_scale in float32 (TI's session), only when both are set; else uint8 pixels

`resize_with_pad` (letterboxing) is not reproduced: no zoo bundle uses it, and a config with it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.core.errors import ConfigError
from edgezoo.preprocessing.bundle import CONFIG_FILE, _size, _triple, bundle_model_id
from edgezoo.preprocessing.steps import (Arithmetic, bgr_to_rgb, center_crop, check_image, crop_origin, from_planes,
                                         normalize_planes, planes_of, resize, short_side_size)

BACKENDS = ("cv2", "pil")
# The backends' defaults for a null (or 0) interpolation: cv2.INTER_LINEAR, PIL.Image.BILINEAR.
DEFAULT_INTERPOLATION = {"cv2": 1, "pil": 2}
# Codes each backend accepts (cv2: NEAREST..LANCZOS4; PIL: NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING).
VALID_INTERPOLATION = {"cv2": range(0, 5), "pil": range(0, 6)}


def ti_resize_size(height: int, width: int, size: int | tuple[int, int]) -> tuple[int, int]:
    """(h, w) TI resizes to: an int is the short side (the other int(size * long / short)), a pair is exact."""
    return short_side_size(height, width, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class TiPreprocess:
    """config.yaml's `preprocess` + session.input_mean / input_scale, as TI's benchmark applies them."""

    resize: int | tuple[int, int] | None  # an int = short side; (h, w) = exact; None = no resize
    crop: tuple[int, int] | None
    backend: str  # "cv2" | "pil"
    interpolation: int  # the backend's own code (null / 0 already replaced by the default, as TI does)
    reverse_channels: bool
    layout: str  # "NHWC" | "NCHW"
    mean: tuple[float, float, float] | None  # None: TI feeds the uint8 pixels (no normaliser)
    scale: tuple[float, float, float] | None
    model_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = CONFIG_FILE) -> "TiPreprocess":
        """Parse as TI's loader reads it; ConfigError "WHERE: preprocess.KEY: ..." for what TI would not run."""
        if not isinstance(config, Mapping) or not isinstance(config.get("preprocess"), Mapping):
            raise ConfigError(f"{where}: no 'preprocess' section", hint="re-export the bundle with edgezoo export")
        pre = config["preprocess"]
        session = config.get("session") if isinstance(config.get("session"), Mapping) else {}
        backend = pre.get("backend", "pil")  # ImageRead's default
        if backend not in BACKENDS:
            raise ConfigError(f"{where}: preprocess.backend must be one of {BACKENDS}, got {backend!r}")
        raw = pre.get("interpolation")
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)
                                or raw not in VALID_INTERPOLATION[backend]):
            raise ConfigError(f"{where}: preprocess.interpolation must be null or a {backend} interpolation code "
                              f"{list(VALID_INTERPOLATION[backend])}, got {raw!r}")
        if pre.get("resize_with_pad"):
            raise ConfigError(f"{where}: preprocess.resize_with_pad is not reproduced by edgezoo's TI semantics",
                              hint="evaluate with --semantics mlperf")
        resize = pre.get("resize")
        if resize is not None:
            pair = _size(resize, f"{where}: preprocess.resize")
            resize = pair[0] if isinstance(resize, int) else pair
        crop = _size(pre["crop"], f"{where}: preprocess.crop") if pre.get("crop") is not None else None
        layout = pre.get("data_layout") or session.get("input_data_layout")
        if layout not in ("NHWC", "NCHW"):
            raise ConfigError(f"{where}: preprocess.data_layout must be NHWC or NCHW, got {layout!r}")
        mean, scale = session.get("input_mean"), session.get("input_scale")
        normalised = mean is not None and scale is not None  # TI's session normalises only with both
        return cls(resize=resize, crop=crop, backend=backend, interpolation=raw or DEFAULT_INTERPOLATION[backend],
                   reverse_channels=bool(pre.get("reverse_channels", False)), layout=layout,
                   mean=_triple(mean, f"{where}: session.input_mean") if normalised else None,
                   scale=_triple(scale, f"{where}: session.input_scale") if normalised else None,
                   model_id=bundle_model_id(dict(config)))

    @property
    def dtype(self) -> str:
        """What TI's session feeds: float32 after its normaliser, else the uint8 pixels."""
        return "float32" if self.mean is not None else "uint8"

    def pixels(self, image_bgr: np.ndarray) -> np.ndarray:
        """Read, resize and crop: the HxWx3 uint8 RGB pixels TI's transforms produce."""
        rgb = bgr_to_rgb(check_image(image_bgr))  # TI: imread's BGR flipped (a grey image has three equal planes)
        if self.backend == "pil":
            return self._pil(rgb)
        if self.resize is not None:
            rgb = resize(rgb, *ti_resize_size(rgb.shape[0], rgb.shape[1], self.resize), self.interpolation)
        return center_crop(rgb, *self.crop, Arithmetic.TI) if self.crop is not None else rgb

    def _pil(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image  # lazy

        img = Image.fromarray(rgb, mode="RGB")
        if self.resize is not None:
            h, w = ti_resize_size(img.height, img.width, self.resize)
            img = img.resize((w, h), resample=Image.Resampling(self.interpolation))
        if self.crop is not None:
            top, left = crop_origin(img.height, img.width, *self.crop, Arithmetic.TI)
            # PIL's crop pads outside the image with zeros (numpy slicing would shorten): TI gets PIL's
            img = img.crop((left, top, left + self.crop[1], top + self.crop[0]))
        return np.asarray(img)

    def apply(self, image_bgr: np.ndarray) -> np.ndarray:
        """One decoded image (BGR, as cv2.imread gives it) -> the model input TI feeds (no batch dimension)."""
        pixels = self.pixels(image_bgr)
        if self.reverse_channels:
            pixels = pixels[..., ::-1]
        planes = planes_of(pixels)
        if self.mean is not None and self.scale is not None:
            # TI: (uint8 tensor - float32 mean) * float32 scale; the same float32 operations plane by plane
            planes = normalize_planes(planes.astype(np.float32), self.mean, self.scale)
        return from_planes(planes, self.layout)
