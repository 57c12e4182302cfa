"""Verification feeds: the same images, preprocessed once per model in the layout and dtype that model expects.

With a card, preprocessing is the card's. Without one (DEFAULT, documented in `edgezoo verify --help`): each image
is resized directly to the model's input height x width (224 x 224 when dynamic), RGB, and scaled to [-1, 1]
((x - 127.5) / 127.5); uint8 inputs get the resized pixels. Inputs that are not images (rank != 4 or no 3-channel
axis) get seeded normal noise of their static shape, identical for both models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgezoo.core.errors import EdgezooError
from edgezoo.graphs import TensorInfo, base_name
from edgezoo.preprocessing.card import preprocess
from edgezoo.zoo.schema import Preprocess

DEFAULT_SIZE = 224
# Every preprocessed input of both models is held in memory at once (the runs compare them pairwise): refuse a feed
# that would need more than this rather than grow until the machine swaps (--random 10^11 reached 13 GB).
FEED_BUDGET_BYTES = 2 << 30


def image_layout(info: TensorInfo) -> str | None:
    """'NHWC' / 'NCHW' for a 4-D input with a 3-channel axis, else None (not an image)."""
    if len(info.shape) != 4:
        return None
    if info.shape[3] == 3:
        return "NHWC"
    if info.shape[1] == 3:
        return "NCHW"
    return None


def spatial_size(info: TensorInfo) -> tuple[int, int] | None:
    layout = image_layout(info)
    if layout is None:
        return None
    h, w = (info.shape[1], info.shape[2]) if layout == "NHWC" else (info.shape[2], info.shape[3])
    return (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else None


def default_preprocess(size: tuple[int, int] | None) -> Preprocess:
    h, w = size or (DEFAULT_SIZE, DEFAULT_SIZE)
    return Preprocess(resize=(h, w), resize_mode="direct", interpolation="linear", crop=None, color="RGB",
                      mean=(127.5, 127.5, 127.5), scale=(1 / 127.5,) * 3, layout="NHWC", dtype="float32")


def describe(spec: Preprocess) -> dict:
    return {"resize": spec.resize, "resize_mode": spec.resize_mode, "interpolation": spec.interpolation,
            "crop": spec.crop, "color": spec.color, "mean": list(spec.mean), "scale": list(spec.scale)}


def pair_inputs(original: Sequence[TensorInfo], converted: Sequence[TensorInfo]) -> list[tuple[TensorInfo, TensorInfo]]:
    """Original input <-> converted input: the only one each, else by name (ignoring ':0')."""
    if len(original) == 1 and len(converted) == 1:
        return [(original[0], converted[0])]
    by_name = {base_name(i.name): i for i in converted}
    pairs = []
    for info in original:
        other = by_name.get(base_name(info.name))
        if other is None:
            raise EdgezooError(f"input {info.name!r} of the original has no counterpart among the converted model's "
                               f"inputs ({', '.join(i.name for i in converted)})",
                               hint="multi-input models must keep their input names")
        pairs.append((info, other))
    return pairs


def _dtype(info: TensorInfo) -> str:
    return "uint8" if info.dtype == "uint8" else "float32"


def _noise(info: TensorInfo, rng: np.random.Generator) -> np.ndarray:
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in info.shape]
    if info.dtype in ("uint8", "int8", "int32", "int64"):
        return rng.integers(0, 100, size=shape).astype(info.dtype)
    return rng.normal(0, 1, size=shape).astype(info.dtype if info.dtype != "unknown" else "float32")


def fixed_batch(info: TensorInfo) -> int:
    """The static batch of an input (1 when dynamic or absent)."""
    first = info.shape[0] if info.shape else None
    return first if isinstance(first, int) and first > 1 else 1


def _batched(value: np.ndarray, info: TensorInfo) -> np.ndarray:
    """A batch-1 value repeated to the input's fixed batch (an export with --param batch=4 takes 4 at once)."""
    batch = fixed_batch(info)
    return np.repeat(value, batch, axis=0) if batch > 1 and value.ndim and value.shape[0] == 1 else value


def _input_bytes(info: TensorInfo, spec: Preprocess) -> int:
    """Bytes of one input for one image: image inputs at the preprocessing size, others at their static shape."""
    itemsize = np.dtype(_dtype(info)).itemsize
    if image_layout(info):
        h, w = spatial_size(info) or spec.resize
        return fixed_batch(info) * int(h) * int(w) * 3 * itemsize
    return int(np.prod([d if isinstance(d, int) and d > 0 else 1 for d in info.shape], dtype=np.int64)) * itemsize


def check_feed_budget(count: int, pairs: Sequence[tuple[TensorInfo, TensorInfo]], spec: Preprocess) -> None:
    """EdgezooError (exit 2) naming the size when `count` inputs for both models would exceed FEED_BUDGET_BYTES."""
    per_image = sum(_input_bytes(o, spec) + _input_bytes(c, spec) for o, c in pairs)
    total = count * per_image
    if total > FEED_BUDGET_BYTES:
        raise EdgezooError(f"verification would hold {total / 2**20:,.0f} MiB of inputs ({count} images x "
                           f"{per_image / 2**20:.2f} MiB for both models); the budget is "
                           f"{FEED_BUDGET_BYTES / 2**20:,.0f} MiB", hint="use fewer --random images or smaller inputs")


@dataclass
class Feeds:
    names: list[str]  # one per verification input
    original: list[dict[str, np.ndarray]]
    converted: list[dict[str, np.ndarray]]
    preprocess: dict  # what was done, for the report
    batch: int = 1  # > 1: a model has that fixed batch; each input is repeated to fill it (compare row 0)


def build_feeds(original: Sequence[TensorInfo], converted: Sequence[TensorInfo],
                images: Sequence[tuple[str, np.ndarray]], spec: Preprocess | None, seed: int = 0) -> Feeds:
    """One feed per image for each model. `spec` None = the default preprocessing described above."""
    pairs = pair_inputs(original, converted)
    image_pairs = [(o, c) for o, c in pairs if image_layout(o) and image_layout(c)]
    if spec is None:
        size = next((spatial_size(i) for pair in image_pairs for i in pair if spatial_size(i)), None)
        spec = default_preprocess(size)
        how = {"source": "default (no card)", **describe(spec)}
    else:
        how = {"source": "card", **describe(spec)}
    check_feed_budget(len(images), pairs, spec)
    rng = np.random.default_rng(seed)
    feeds = Feeds([], [], [], how)
    if not image_pairs:
        # Nothing image-like: a few seeded random inputs instead of images.
        images = [(f"noise-{seed}-{k}", None) for k in range(max(2, len(images) // 2))]
    feeds.batch = max(fixed_batch(i) for pair in pairs for i in pair) if pairs else 1
    for name, image in images:
        o_feed, c_feed = {}, {}
        for o, c in pairs:
            if image is not None and image_layout(o) and image_layout(c):
                o_feed[o.name] = _batched(preprocess(image, spec, dtype=_dtype(o), layout=image_layout(o)), o)
                c_feed[c.name] = _batched(preprocess(image, spec, dtype=_dtype(c), layout=image_layout(c)), c)
            else:
                # Same values to both; a converted model that changed this input's shape is reported by its runner.
                value = _noise(o, rng)
                o_feed[o.name] = _batched(value, o)
                c_feed[c.name] = _batched(value, c)
        feeds.names.append(name)
        feeds.original.append(o_feed)
        feeds.converted.append(c_feed)
    return feeds
