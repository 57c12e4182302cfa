"""TI's detection post-processing (edgeai-benchmark get_transform_detection_base) from a config.yaml's `postprocess`.

Two halves, because the second needs the image's size and the first only the model's outputs:

    format  (the model's outputs, in the model's output order) -> [N, 6] x1, y1, x2, y2, label, score:
            reshape_list (outputs beyond the list are dropped), shuffle_indices (likewise), then the first three
            concatenated on the last axis (lower-rank tensors get a trailing axis), squeeze of the batch axis when
            squeeze_axis is set, and the formatter's column permutation (dst_indices <- src_indices);
    finish  [N, 6] + the image's height and width -> boxes scaled to pixels (normalized_detections) and clipped to
            [0, W] x [0, H] (DetectionResizePad), then the rows with score >= detection_threshold (DetectionFilter).

The arithmetic is numpy's on the arrays the runtime returned, so dtypes promote as in TI's pipeline (an int64 label
output makes the rows float64). detection_threshold: the config's `postprocess.detection_threshold`; when it is
missing or 0, TI's settings value (0.3 by default: `threshold or settings`). TI's optional keep_top_k is a setting
(detection_keep_top_k, default off), not a config field, and is not applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.core.errors import ConfigError

# edgeai-benchmark settings_base.yaml: detection_threshold 0.3 (what a config without its own threshold gets).
TI_SETTINGS_DETECTION_THRESHOLD = 0.3
# The formatters that permute columns, with their default indices (dst <- src).
_PERMUTATIONS = {"DetectionXYXY2YXYX": ((0, 1, 2, 3), (1, 0, 3, 2)), "DetectionYXYX2XYXY": ((0, 1, 2, 3), (1, 0, 3, 2)),
                 "DetectionYXHW2XYWH": ((0, 1, 2, 3), (1, 0, 3, 2)), "DetectionBoxSL2BoxLS": ((4, 5), (5, 4))}


@dataclass(frozen=True)
class TiDetectionPost:
    reshape_list: tuple[tuple[int, ...], ...] | None
    shuffle_indices: tuple[int, ...] | None
    squeeze: bool
    permutation: tuple[tuple[int, ...], tuple[int, ...]] | None  # (dst, src)
    normalized: bool
    threshold: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "config.yaml", *,
                    settings_threshold: float = TI_SETTINGS_DETECTION_THRESHOLD) -> "TiDetectionPost":
        post = config.get("postprocess") if isinstance(config, Mapping) else None
        if not isinstance(post, Mapping):
            raise ConfigError(f"{where}: no 'postprocess' section", hint="re-export the bundle with edgezoo export")
        for key in ("resize_with_pad", "keypoint", "object6dpose", "logits_bbox_to_bbox_ls"):
            if post.get(key):
                raise ConfigError(f"{where}: postprocess.{key} is not reproduced by edgezoo's TI semantics",
                                  hint="evaluate with --semantics mlperf")
        if post.get("ignore_index") is not None:
            raise ConfigError(f"{where}: postprocess.ignore_index is not reproduced by edgezoo's TI semantics")
        threshold = post.get("detection_threshold")
        if threshold is True:  # TI: take the runtime options' confidence threshold
            options = (config.get("session") or {}).get("runtime_options") or {}
            threshold = options.get("object_detection:confidence_threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise ConfigError(f"{where}: postprocess.detection_threshold must be a number, got {threshold!r}")
        reshape = post.get("reshape_list")
        shuffle = post.get("shuffle_indices")
        return cls(reshape_list=tuple(tuple(int(v) for v in s) for s in reshape) if reshape else None,
                   shuffle_indices=tuple(int(i) for i in shuffle) if shuffle is not None else None,
                   squeeze=post.get("squeeze_axis", 0) is not None,
                   permutation=_permutation(post.get("formatter"), where),
                   normalized=bool(post.get("normalized_detections", True)),
                   threshold=float(threshold or settings_threshold))

    def format(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The session's outputs (model order) -> [N, 6] x1, y1, x2, y2, label, score (before scaling)."""
        tensors = [np.asarray(t) for t in outputs]
        if self.reshape_list is not None:
            tensors = [t.reshape(shape) for t, shape in zip(tensors, self.reshape_list)]
        if self.shuffle_indices is not None:
            tensors = [tensors[i] for i in self.shuffle_indices]
        rank = max(t.ndim for t in tensors)
        tensors = [t[..., np.newaxis] if t.ndim < rank else t for t in tensors]
        rows = np.concatenate(tensors[:3], axis=-1)
        if self.squeeze:
            rows = rows[0]
        if self.permutation is not None:
            dst, src = self.permutation
            out = rows.copy()
            out[..., list(dst)] = rows[..., list(src)]
            rows = out
        return rows

    def finish(self, rows: np.ndarray, height: int, width: int) -> np.ndarray:
        """[N, 6] formatted rows -> boxes in pixels clipped to the image, rows below the threshold dropped."""
        rows = np.asarray(rows).clip(-1e6, 1e6)  # TI's guard against overflow (a copy)
        if not self.normalized:
            raise ConfigError("postprocess.normalized_detections false (boxes in input pixels) is not reproduced")
        rows[..., 0] = (rows[..., 0] * float(width)).clip(0, width)
        rows[..., 1] = (rows[..., 1] * float(height)).clip(0, height)
        rows[..., 2] = (rows[..., 2] * float(width)).clip(0, width)
        rows[..., 3] = (rows[..., 3] * float(height)).clip(0, height)
        return rows[rows[:, 5] >= self.threshold]


def _permutation(formatter: Any, where: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if formatter is None:
        return None
    kwargs: dict[str, Any] = {}
    if isinstance(formatter, str):
        name = formatter
    elif isinstance(formatter, Mapping):
        kwargs = dict(formatter)
        name = kwargs.pop("name", kwargs.pop("type", None))
    else:
        raise ConfigError(f"{where}: postprocess.formatter must be a name or a mapping, got {formatter!r}")
    if name not in _PERMUTATIONS:
        raise ConfigError(f"{where}: postprocess.formatter {name!r} is not reproduced by edgezoo's TI semantics",
                          hint="formatters reproduced: " + ", ".join(_PERMUTATIONS))
    dst, src = _PERMUTATIONS[name]
    dst, src = kwargs.get("dst_indices", dst), kwargs.get("src_indices", src)
    if len(dst) != len(src):
        raise ConfigError(f"{where}: postprocess.formatter: dst_indices and src_indices differ in length")
    return tuple(int(i) for i in dst), tuple(int(i) for i in src)
