"""What a structure's graph input takes, and photographs prepared for it (calibration and checks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Calibration uses the verification photographs the product itself uses (edgezoo.datasets.images.PHOTOGRAPHS);
# the checks also look at photographs the refill never saw.
UNSEEN_PHOTOGRAPHS = ("hubble_deep_field", "immunohistochemistry", "retina")


@dataclass(frozen=True)
class InputSpec:
    """layout: "chw" (torchvision's raw export: one [3,H,W] image), "nchw" or "nhwc"; dtype "float32" or "uint8";
    pixels in [0, 255] become (pixels * scale - mean) / std per channel (uint8 inputs take the resized pixels)."""

    name: str
    layout: str
    size: tuple[int, int]
    dtype: str = "float32"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def from_json(cls, d: dict) -> InputSpec:
        return cls(name=d["name"], layout=d["layout"], size=tuple(d["size"]), dtype=d.get("dtype", "float32"),
                   scale=d.get("scale", 1.0 / 255.0), mean=tuple(d.get("mean", (0.0,) * 3)),
                   std=tuple(d.get("std", (1.0,) * 3)))

    def feed(self, image_rgb: np.ndarray) -> np.ndarray:
        """One image (uint8 HxWx3 RGB, any size) as this input wants it, with its batch axis unless "chw"."""
        import cv2

        h, w = self.size
        resized = cv2.resize(image_rgb, (w, h), interpolation=cv2.INTER_AREA)
        if self.dtype == "uint8":
            x = resized.astype(np.uint8)
        else:
            x = (resized.astype(np.float32) * self.scale - np.float32(self.mean)) / np.float32(self.std)
            x = x.astype(np.float32)
        if self.layout == "nhwc":
            return x[None]
        x = x.transpose(2, 0, 1)
        return x if self.layout == "chw" else x[None]


def photographs(names: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """Photographs shipped with scikit-image as uint8 RGB arrays (the product's verification set by default)."""
    from edgezoo.datasets.images import PHOTOGRAPHS
    from edgezoo.datasets.images import photographs as load

    return [image for _name, image in load(names or PHOTOGRAPHS)]
