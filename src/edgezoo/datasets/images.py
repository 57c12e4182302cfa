"""Deterministic verification inputs: real photographs shipped inside scikit-image, plus seeded random images.

Real photographs matter: on random noise a detector finds nothing and a classifier's top-1 is arbitrary, so parity
on them proves little. scikit-image carries its sample photographs in the wheel, so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

# (name, loader attribute in skimage.data) -- colour photographs with objects in them.
PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket")


def photographs(names: tuple[str, ...] = PHOTOGRAPHS) -> list[tuple[str, np.ndarray]]:
    """The named skimage sample photographs as uint8 HxWx3 RGB arrays."""
    from skimage import data  # lazy: scikit-image is heavy

    out = []
    for name in names:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        out.append((name, np.ascontiguousarray(image[..., :3].astype(np.uint8))))
    return out


def random_images(count: int, seed: int = 0, size: tuple[int, int] = (320, 400)) -> list[tuple[str, np.ndarray]]:
    """Seeded image-like random pictures: smooth colour fields plus noise (not white noise, which no model sees)."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(count):
        coarse = rng.uniform(0, 255, size=(h // 40 + 2, w // 40 + 2, 3))
        ys = np.linspace(0, coarse.shape[0] - 1.001, h)
        xs = np.linspace(0, coarse.shape[1] - 1.001, w)
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        smooth = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
                  + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
        noisy = smooth + rng.normal(0, 12, size=smooth.shape)
        out.append((f"random-{seed}-{i}", np.clip(noisy, 0, 255).astype(np.uint8)))
    return out


def verification_images(count_random: int = 2, seed: int = 0,
                        photos: tuple[str, ...] = PHOTOGRAPHS) -> list[tuple[str, np.ndarray]]:
    """The default verification set: the real photographs, then `count_random` seeded random images."""
    return photographs(photos) + random_images(count_random, seed)
