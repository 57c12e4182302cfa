"""TF Object Detection API multiple-grid anchors (ssd_anchor_generator), reproduced exactly in numpy.

Semantics (object_detection/anchor_generators/multiple_grid_anchor_generator.py, create_ssd_anchors):
- scales s_i = min_scale + (max_scale - min_scale) * i / (L - 1), plus s_L = 1.0 used only as the last "next scale";
- layer 0 with reduce_boxes_in_lowest_layer: (0.1, 1.0), (s_0, 2.0), (s_0, 0.5) -- three boxes, two scales;
- other layers: one box per configured aspect ratio, in config order, then (sqrt(s_i * s_{i+1}),
  interpolated_scale_aspect_ratio) LAST;
- h = s / sqrt(r) * base_h, w = s * sqrt(r) * base_w (base scaled by min(H, W) / H and min(H, W) / W);
- centres (k + 0.5) / f for a map of size f (or the configured strides/offsets in pixels); order = layer, row,
  column, box; no clipping.
multiscale_anchor_generator (FPN/RetinaNet-style; multiscale_grid_anchor_generator.py): level l in
[min_level, max_level] has stride 2^l pixels and base size 2^l * anchor_scale; boxes per location are every
(aspect ratio, scale 2^(k / scales_per_octave)) pair, ratio-major; centres at row * 2^l + offset where the offset is
2^(l-1) when the image side is a multiple of 2^l and 0 otherwise (the OD API's rule for a static image size);
corners in pixels, then divided by the image size.
The arithmetic is float32 in the same order as the TF ops, so the result equals the graph's anchor tensor to the last
bit or two. Anchors are produced in corner form (the frozen graph's tensor) and in the (ycenter, xcenter, h, w) form
TFLite_Detection_PostProcess reads, derived from the corners as export_tflite_ssd_graph does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgezoo.core.errors import ConfigError
from edgezoo.detection.pipeline_config import AnchorGeneratorConfig, AnyAnchorConfig, MultiscaleAnchorConfig


@dataclass(frozen=True)
class LayerSpec:
    """The (scale, aspect ratio) boxes placed at every location of one feature map, in output order.

    A scale is the box's sqrt(h * w) in units of min(image height, image width) (pixels: scale * min side)."""

    boxes: tuple[tuple[float, float], ...]
    interpolated: int | None = None  # index of ssd_anchor_generator's interpolated box (None: no such box)

    @property
    def count(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class Anchors:
    corners: np.ndarray  # [N, 4] float32 (ymin, xmin, ymax, xmax)
    center: np.ndarray  # [N, 4] float32 (ycenter, xcenter, h, w)
    layers: tuple[LayerSpec, ...]
    feature_maps: tuple[tuple[int, int], ...]
    # Per layer (step_h, step_w, offset_y, offset_x): centre of row r = (r + offset_y) * step_h pixels.
    grids: tuple[tuple[float, float, float, float], ...] = ()

    def __len__(self) -> int:
        return int(self.corners.shape[0])

    def locate(self, index: int) -> str:
        """Where anchor `index` comes from: 'layer 2, row 3, col 1, box 4 (scale 0.5, ratio 3)'."""
        start = 0
        for layer, (spec, (fh, fw)) in enumerate(zip(self.layers, self.feature_maps)):
            n = fh * fw * spec.count
            if index < start + n:
                local = index - start
                cell, box = divmod(local, spec.count)
                row, col = divmod(cell, fw)
                scale, ratio = spec.boxes[box]
                return f"layer {layer}, row {row}, col {col}, box {box} (scale {scale:.6g}, ratio {ratio:.6g})"
            start += n
        return f"index {index} (beyond the generated anchors)"


def layer_scales(cfg: AnchorGeneratorConfig) -> list[float]:
    """Per-layer scales plus the trailing 1.0 (Python doubles, as the OD API computes them)."""
    if cfg.scales:
        return [float(s) for s in cfg.scales] + [1.0]
    n = cfg.num_layers
    return [cfg.min_scale + (cfg.max_scale - cfg.min_scale) * i / (n - 1) for i in range(n)] + [1.0]


def box_specs(cfg: AnchorGeneratorConfig) -> tuple[LayerSpec, ...]:
    scales = layer_scales(cfg)
    layers = []
    for layer, (scale, scale_next) in enumerate(zip(scales[:-1], scales[1:])):
        if layer == 0 and cfg.reduce_boxes_in_lowest_layer:
            boxes = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            boxes = [(scale, float(r)) for r in cfg.aspect_ratios]
            if cfg.interpolated_scale_aspect_ratio > 0.0:
                boxes.append((math.sqrt(scale * scale_next), cfg.interpolated_scale_aspect_ratio))
                layers.append(LayerSpec(tuple(boxes), len(boxes) - 1))
                continue
        layers.append(LayerSpec(tuple(boxes)))
    return tuple(layers)


def multiscale_octave_scales(cfg: MultiscaleAnchorConfig) -> list[float]:
    return [2 ** (float(k) / cfg.scales_per_octave) for k in range(cfg.scales_per_octave)]


def multiscale_specs(cfg: MultiscaleAnchorConfig, image_size: tuple[int, int]) -> tuple[LayerSpec, ...]:
    """Boxes per level, ratio-major then octave scale (ops.meshgrid(scales, aspect_ratios) flattened)."""
    min_side = min(image_size)
    return tuple(LayerSpec(tuple((s * 2 ** level * cfg.anchor_scale / min_side, float(r))
                                 for r in cfg.aspect_ratios for s in multiscale_octave_scales(cfg)))
                 for level in range(cfg.min_level, cfg.max_level + 1))


def ssd_feature_map_sizes(height: int, width: int, num_layers: int = 6) -> list[tuple[int, int]]:
    """Feature map sizes of the SSD-MobileNet v1 extractor (output stride 16, then stride-2 SAME convs)."""
    h, w = math.ceil(height / 16), math.ceil(width / 16)
    sizes = [(h, w)]
    for _ in range(num_layers - 1):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        sizes.append((h, w))
    return sizes


def _f32(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _grid_corners(fh: int, fw: int, heights: np.ndarray, widths: np.ndarray, stride: tuple[np.ndarray, np.ndarray],
                  offset: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """tile_anchors: corner boxes in order row, column, box (float32 as the TF ops)."""
    count = len(heights)
    yc = np.arange(fh, dtype=np.float32) * stride[0] + offset[0]
    xc = np.arange(fw, dtype=np.float32) * stride[1] + offset[1]
    ycg = np.broadcast_to(yc[:, None, None], (fh, fw, count)).reshape(-1)
    xcg = np.broadcast_to(xc[None, :, None], (fh, fw, count)).reshape(-1)
    hg = np.broadcast_to(heights[None, None, :], (fh, fw, count)).reshape(-1)
    wg = np.broadcast_to(widths[None, None, :], (fh, fw, count)).reshape(-1)
    half = _f32(0.5)
    return np.stack([ycg - half * hg, xcg - half * wg, ycg + half * hg, xcg + half * wg], axis=1)


def _assemble(corners: list[np.ndarray], specs: tuple[LayerSpec, ...], feature_maps: Sequence[tuple[int, int]],
              grids: list[tuple[float, float, float, float]]) -> Anchors:
    corner_arr = np.concatenate(corners).astype(np.float32)
    return Anchors(corner_arr, corners_to_center_f32(corner_arr), specs,
                   tuple((int(h), int(w)) for h, w in feature_maps), tuple(grids))


def _check_layers(count: int, feature_maps: Sequence[tuple[int, int]], field: str) -> None:
    if len(feature_maps) != count:
        raise ConfigError(f"anchor generator has {count} layers but the model has {len(feature_maps)} "
                          "feature maps", hint=f"{field} must equal the number of heads")


def _generate_multiscale(cfg: MultiscaleAnchorConfig, feature_maps: Sequence[tuple[int, int]],
                         image_size: tuple[int, int]) -> Anchors:
    _check_layers(cfg.num_layers, feature_maps, "multiscale_anchor_generator max_level - min_level + 1")
    specs = multiscale_specs(cfg, image_size)
    im_h, im_w = image_size
    scales = _f32(multiscale_octave_scales(cfg))
    ratios = _f32(cfg.aspect_ratios)
    scales_grid = np.broadcast_to(scales[None, :], (len(ratios), len(scales))).reshape(-1)
    ratio_sqrts = np.sqrt(np.broadcast_to(ratios[:, None], (len(ratios), len(scales))).reshape(-1))
    corners, grids = [], []
    for level, (fh, fw) in zip(range(cfg.min_level, cfg.max_level + 1), feature_maps):
        stride = 2 ** level
        base = _f32(stride * cfg.anchor_scale)
        # The OD API centres a level's grid only when the image side is a multiple of its stride.
        off_y = stride / 2.0 if im_h % stride == 0 or im_h == 1 else 0.0
        off_x = stride / 2.0 if im_w % stride == 0 or im_w == 1 else 0.0
        heights = scales_grid / ratio_sqrts * base
        widths = scales_grid * ratio_sqrts * base
        box = _grid_corners(fh, fw, heights, widths, (_f32(stride), _f32(stride)), (_f32(off_y), _f32(off_x)))
        inv_h, inv_w = _f32(1.0) / _f32(im_h), _f32(1.0) / _f32(im_w)
        corners.append(box * np.array([inv_h, inv_w, inv_h, inv_w], np.float32))
        grids.append((float(stride), float(stride), off_y / stride, off_x / stride))
    return _assemble(corners, specs, feature_maps, grids)


def generate_anchors(cfg: AnyAnchorConfig, feature_maps: Sequence[tuple[int, int]],
                     image_size: tuple[int, int] = (300, 300)) -> Anchors:
    """All anchors for the given feature map sizes (rows, cols), in the OD API's order and float32 arithmetic."""
    if isinstance(cfg, MultiscaleAnchorConfig):
        return _generate_multiscale(cfg, feature_maps, image_size)
    specs = box_specs(cfg)
    _check_layers(len(specs), feature_maps, "ssd_anchor_generator.num_layers")
    im_h, im_w = _f32(image_size[0]), _f32(image_size[1])
    min_im = np.minimum(im_h, im_w)
    base_h = (min_im / im_h) * _f32(cfg.base_anchor_height)
    base_w = (min_im / im_w) * _f32(cfg.base_anchor_width)
    corners, grids = [], []
    for layer, (spec, (fh, fw)) in enumerate(zip(specs, feature_maps)):
        if cfg.height_stride:
            stride_y, stride_x = _f32(cfg.height_stride[layer]) / im_h, _f32(cfg.width_stride[layer]) / im_w
        else:
            stride_y, stride_x = _f32(1.0) / _f32(fh), _f32(1.0) / _f32(fw)
        if cfg.height_offset:
            off_y, off_x = _f32(cfg.height_offset[layer]) / im_h, _f32(cfg.width_offset[layer]) / im_w
        else:
            off_y, off_x = _f32(0.5) * stride_y, _f32(0.5) * stride_x
        scales = _f32([s for s, _ in spec.boxes])
        ratio_sqrts = np.sqrt(_f32([r for _, r in spec.boxes]))
        heights = scales / ratio_sqrts * base_h
        widths = scales * ratio_sqrts * base_w
        corners.append(_grid_corners(fh, fw, heights, widths, (stride_y, stride_x), (off_y, off_x)))
        step_h, step_w = float(stride_y) * image_size[0], float(stride_x) * image_size[1]
        grids.append((step_h, step_w, float(off_y) * image_size[0] / step_h, float(off_x) * image_size[1] / step_w))
    return _assemble(corners, specs, feature_maps, grids)


def corners_to_center_f32(corners: np.ndarray) -> np.ndarray:
    """(ymin, xmin, ymax, xmax) -> (ycenter, xcenter, h, w) in float32, as BoxList.get_center_coordinates_and_sizes."""
    c = np.asarray(corners, dtype=np.float32)
    h = c[:, 2] - c[:, 0]
    w = c[:, 3] - c[:, 1]
    return np.stack([c[:, 0] + h / np.float32(2), c[:, 1] + w / np.float32(2), h, w], axis=1).astype(np.float32)


def check_against_graph(anchors: Anchors, graph_corners: np.ndarray, where: str, atol: float = 1e-5) -> float:
    """Compare generated anchors with the graph's anchor tensor (corner form); ConfigError showing the worst anchor.

    Returns the largest absolute coordinate difference.
    """
    found = np.asarray(graph_corners, dtype=np.float64).reshape(-1, 4) if np.size(graph_corners) % 4 == 0 else None
    if found is None or found.shape[0] != len(anchors):
        n = "?" if found is None else found.shape[0]
        raise ConfigError(f"{where}: the graph has {n} anchors, the pipeline.config generates {len(anchors)} "
                          f"(feature maps {list(anchors.feature_maps)})",
                          hint="the config does not describe this graph (num_layers, aspect_ratios, "
                               "reduce_boxes_in_lowest_layer?)")
    diff = np.abs(found - anchors.corners.astype(np.float64))
    worst = int(np.argmax(diff.max(axis=1))) if len(diff) else 0
    err = float(diff.max()) if len(diff) else 0.0
    if not err <= atol:
        exp = ", ".join(f"{v:.6f}" for v in anchors.corners[worst])
        got = ", ".join(f"{v:.6f}" for v in found[worst])
        bad = int((diff.max(axis=1) > atol).sum())
        raise ConfigError(f"{where}: {bad} of {len(anchors)} anchors differ from the pipeline.config's; worst is "
                          f"anchor {worst} ({anchors.locate(worst)}): graph ({got}) vs generated ({exp}), "
                          f"max difference {err:.3g}",
                          hint="the pipeline.config does not match this frozen graph")
    return err
