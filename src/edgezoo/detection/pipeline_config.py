"""The TF Object Detection API pipeline.config of an SSD model: the fields the recipes use, validated.

Read as protobuf text format without the OD API's .proto files (edgezoo.detection.textproto); fields edgezoo does
not use (train_config, loss, hyperparameters, ...) are tolerated and ignored. Every error names the field path,
e.g. "pipeline.config: model.ssd.anchor_generator.ssd_anchor_generator.min_scale: must be in (0, 1], got 1.5".
Defaults are the ones of the OD API's protos (ssd_anchor_generator.proto, faster_rcnn_box_coder.proto,
post_processing.proto), so a config that leaves a field out means what it means to the OD API.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from edgezoo.core.errors import ConfigError
from edgezoo.detection.textproto import Message, parse, read_text_file

_ANCHOR_PATH = "model.ssd.anchor_generator.ssd_anchor_generator"


@dataclass(frozen=True)
class AnchorGeneratorConfig:
    """ssd_anchor_generator (TF OD API multiple-grid anchors)."""

    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    scales: tuple[float, ...] = ()  # explicit per-layer scales (override min/max_scale)
    aspect_ratios: tuple[float, ...] = ()
    interpolated_scale_aspect_ratio: float = 1.0
    base_anchor_height: float = 1.0
    base_anchor_width: float = 1.0
    height_stride: tuple[int, ...] = ()  # pixels; empty = 1 / feature map size
    width_stride: tuple[int, ...] = ()
    height_offset: tuple[int, ...] = ()  # pixels; empty = half a stride
    width_offset: tuple[int, ...] = ()
    reduce_boxes_in_lowest_layer: bool = True


@dataclass(frozen=True)
class MultiscaleAnchorConfig:
    """multiscale_anchor_generator (FPN / RetinaNet-style SSDs): one grid per pyramid level, stride 2^level."""

    min_level: int = 3
    max_level: int = 7
    anchor_scale: float = 4.0
    aspect_ratios: tuple[float, ...] = ()
    scales_per_octave: int = 2
    normalize_coordinates: bool = True

    @property
    def num_layers(self) -> int:
        return self.max_level - self.min_level + 1


AnyAnchorConfig = AnchorGeneratorConfig | MultiscaleAnchorConfig


@dataclass(frozen=True)
class BoxCoderConfig:
    """faster_rcnn_box_coder scale factors: encodings are divided by them before decoding."""

    y_scale: float = 10.0
    x_scale: float = 10.0
    height_scale: float = 5.0
    width_scale: float = 5.0


@dataclass(frozen=True)
class NmsConfig:
    """post_processing.batch_non_max_suppression."""

    score_threshold: float = 0.0
    iou_threshold: float = 0.6
    max_detections_per_class: int = 100
    max_total_detections: int = 100


@dataclass(frozen=True)
class SsdPipelineConfig:
    num_classes: int  # without background
    image_height: int
    image_width: int
    feature_extractor: str
    anchors: AnyAnchorConfig
    box_coder: BoxCoderConfig
    nms: NmsConfig
    score_converter: str  # "IDENTITY" | "SIGMOID" | "SOFTMAX"
    logit_scale: float = 1.0
    source: str = "pipeline.config"


def _f32(value: float) -> float:
    """The value as the OD API sees it: its protos declare these fields `float` (float32)."""
    return struct.unpack("f", struct.pack("f", value))[0] if math.isfinite(value) else value


def _check(cond: bool, where: str, message: str, hint: str | None = None) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}", hint=hint)


def _multiscale_config(msg: Message, source: str) -> MultiscaleAnchorConfig:
    a = msg.message("multiscale_anchor_generator")
    where = f"{source}: model.ssd.anchor_generator.multiscale_anchor_generator"
    cfg = MultiscaleAnchorConfig(
        min_level=a.int("min_level", 3), max_level=a.int("max_level", 7),
        anchor_scale=_f32(a.float("anchor_scale", 4.0)),
        aspect_ratios=tuple(_f32(v) for v in a.floats("aspect_ratios")) or (1.0, 2.0, 0.5),
        scales_per_octave=a.int("scales_per_octave", 2),
        normalize_coordinates=a.bool("normalize_coordinates", True))
    _check(0 <= cfg.min_level <= cfg.max_level <= 30, f"{where}.max_level",
           f"levels must satisfy 0 <= min_level <= max_level <= 30, got {cfg.min_level}..{cfg.max_level}")
    _check(cfg.anchor_scale > 0 and math.isfinite(cfg.anchor_scale), f"{where}.anchor_scale",
           f"must be a finite number > 0, got {cfg.anchor_scale}")
    _check(1 <= cfg.scales_per_octave <= 64, f"{where}.scales_per_octave",
           f"must be in [1, 64], got {cfg.scales_per_octave}")
    _check(all(r > 0 and math.isfinite(r) for r in cfg.aspect_ratios), f"{where}.aspect_ratios",
           f"aspect ratios must be finite and > 0, got {list(cfg.aspect_ratios)}")
    # Unnormalised anchors are in pixels: TFLite_Detection_PostProcess and TIDL decode normalised ones.
    _check(cfg.normalize_coordinates, f"{where}.normalize_coordinates",
           "false (anchors in pixels) is not supported", hint="TFLite and TIDL decode normalised anchors")
    return cfg


def _anchor_config(msg: Message, source: str) -> AnyAnchorConfig:
    kind = msg.which(("ssd_anchor_generator", "grid_anchor_generator", "multiscale_anchor_generator",
                      "flexible_grid_anchor_generator"))
    if kind == "multiscale_anchor_generator":
        return _multiscale_config(msg, source)
    if kind != "ssd_anchor_generator":
        raise ConfigError(f"{source}: model.ssd.anchor_generator: {kind or 'nothing'} is set; only "
                          "ssd_anchor_generator and multiscale_anchor_generator are supported",
                          hint="the other generators have no TFLite/TIDL SSD equivalent")
    a = msg.message("ssd_anchor_generator")
    where = f"{source}: {_ANCHOR_PATH}"
    cfg = AnchorGeneratorConfig(
        num_layers=a.int("num_layers", 6),
        min_scale=_f32(a.float("min_scale", 0.2)),
        max_scale=_f32(a.float("max_scale", 0.95)),
        scales=tuple(_f32(v) for v in a.floats("scales")),
        aspect_ratios=tuple(_f32(v) for v in a.floats("aspect_ratios")),
        interpolated_scale_aspect_ratio=_f32(a.float("interpolated_scale_aspect_ratio", 1.0)),
        base_anchor_height=_f32(a.float("base_anchor_height", 1.0)),
        base_anchor_width=_f32(a.float("base_anchor_width", 1.0)),
        height_stride=tuple(a.ints("height_stride")),
        width_stride=tuple(a.ints("width_stride")),
        height_offset=tuple(a.ints("height_offset")),
        width_offset=tuple(a.ints("width_offset")),
        reduce_boxes_in_lowest_layer=a.bool("reduce_boxes_in_lowest_layer", True),
    )
    _check(cfg.num_layers >= 1, f"{where}.num_layers", f"must be >= 1, got {cfg.num_layers}")
    if cfg.scales:
        _check(len(cfg.scales) == cfg.num_layers, f"{where}.scales",
               f"{len(cfg.scales)} scales for num_layers {cfg.num_layers}", hint="give one scale per layer")
        _check(all(0 < s for s in cfg.scales), f"{where}.scales", f"scales must be > 0, got {list(cfg.scales)}")
    else:
        _check(0 < cfg.min_scale <= 1, f"{where}.min_scale", f"must be in (0, 1], got {cfg.min_scale}")
        _check(cfg.min_scale <= cfg.max_scale <= 1, f"{where}.max_scale",
               f"must be in [min_scale, 1], got {cfg.max_scale}")
        _check(cfg.num_layers >= 2, f"{where}.num_layers",
               f"must be >= 2 when scales come from min_scale/max_scale, got {cfg.num_layers}")
    _check(all(r > 0 and math.isfinite(r) for r in cfg.aspect_ratios), f"{where}.aspect_ratios",
           f"aspect ratios must be finite and > 0, got {list(cfg.aspect_ratios)}")
    _check(cfg.base_anchor_height > 0 and cfg.base_anchor_width > 0, f"{where}.base_anchor_height",
           "base anchor sizes must be > 0")
    for first, second in (("height_stride", "width_stride"), ("height_offset", "width_offset")):
        n1, n2 = len(getattr(cfg, first)), len(getattr(cfg, second))
        _check(n1 == n2 and n1 in (0, cfg.num_layers), f"{where}.{first}",
               f"{first} ({n1}) and {second} ({n2}) need one value per layer ({cfg.num_layers}) or none")
    if cfg.height_offset:
        _check(bool(cfg.height_stride), f"{where}.height_offset", "offsets need strides as well")
    return cfg


def _resizer(model: Message, source: str) -> tuple[int, int]:
    resizer = model.message("image_resizer")
    kind = resizer.which(("fixed_shape_resizer", "keep_aspect_ratio_resizer", "identity_resizer",
                          "conditional_shape_resizer", "pad_to_multiple_resizer"))
    if kind != "fixed_shape_resizer":
        raise ConfigError(f"{source}: model.ssd.image_resizer: {kind or 'nothing'} is set; only fixed_shape_resizer "
                          "is supported", hint="TFLite SSD needs a fixed input size")
    fixed = resizer.message("fixed_shape_resizer")
    h, w = fixed.int("height", 300), fixed.int("width", 300)
    _check(h > 0 and w > 0, f"{source}: model.ssd.image_resizer.fixed_shape_resizer", f"bad size {h}x{w}")
    return h, w


def _box_coder(model: Message, source: str) -> BoxCoderConfig:
    coder = model.message("box_coder")
    kind = coder.which(("faster_rcnn_box_coder", "mean_stddev_box_coder", "square_box_coder", "keypoint_box_coder"))
    if kind != "faster_rcnn_box_coder":
        raise ConfigError(f"{source}: model.ssd.box_coder: {kind or 'nothing'} is set; only faster_rcnn_box_coder "
                          "matches TFLite_Detection_PostProcess's decoding")
    c = coder.message("faster_rcnn_box_coder")
    cfg = BoxCoderConfig(_f32(c.float("y_scale", 10.0)), _f32(c.float("x_scale", 10.0)),
                         _f32(c.float("height_scale", 5.0)), _f32(c.float("width_scale", 5.0)))
    for name, value in (("y_scale", cfg.y_scale), ("x_scale", cfg.x_scale), ("height_scale", cfg.height_scale),
                        ("width_scale", cfg.width_scale)):
        _check(value > 0 and math.isfinite(value), f"{source}: model.ssd.box_coder.faster_rcnn_box_coder.{name}",
               f"must be a finite number > 0, got {value}")
    return cfg


def _post_processing(model: Message, source: str) -> tuple[NmsConfig, str, float]:
    post = model.message("post_processing")
    nms_msg = post.message("batch_non_max_suppression")
    where = f"{source}: model.ssd.post_processing.batch_non_max_suppression"
    nms = NmsConfig(_f32(nms_msg.float("score_threshold", 0.0)), _f32(nms_msg.float("iou_threshold", 0.6)),
                    nms_msg.int("max_detections_per_class", 100), nms_msg.int("max_total_detections", 100))
    _check(0.0 <= nms.score_threshold <= 1.0, f"{where}.score_threshold", f"must be in [0, 1], got {nms.score_threshold}")
    _check(0.0 < nms.iou_threshold <= 1.0, f"{where}.iou_threshold", f"must be in (0, 1], got {nms.iou_threshold}")
    _check(nms.max_detections_per_class >= 1, f"{where}.max_detections_per_class",
           f"must be >= 1, got {nms.max_detections_per_class}")
    _check(nms.max_total_detections >= 1, f"{where}.max_total_detections",
           f"must be >= 1, got {nms.max_total_detections}")
    converter = post.enum("score_converter", ("IDENTITY", "SIGMOID", "SOFTMAX"), "IDENTITY")
    logit_scale = _f32(post.float("logit_scale", 1.0))
    _check(logit_scale > 0, f"{source}: model.ssd.post_processing.logit_scale", f"must be > 0, got {logit_scale}")
    return nms, converter, logit_scale


# Fields whose non-default value changes what the detector computes in a way the TFLite op / TIDL's detection layer
# cannot reproduce: refused by name rather than converted into a different model. (path below model.ssd, default)
_UNSUPPORTED: tuple[tuple[str, object, str], ...] = (
    ("add_background_class", True, "the converted post-processing expects a background column"),
    ("explicit_background_class", False, "TFLite_Detection_PostProcess and TIDL treat column 0 as background"),
    ("post_processing.batch_non_max_suppression.use_class_agnostic_nms", False,
     "per-class NMS is what the converted post-processing reproduces"),
    ("post_processing.batch_non_max_suppression.soft_nms_sigma", 0.0, "soft NMS has no TFLite/TIDL equivalent"),
    ("post_processing.calibration_config", None, "score calibration has no TFLite/TIDL equivalent"),
)


def _refuse_unsupported(ssd: Message, source: str) -> None:
    for path, default, why in _UNSUPPORTED:
        *parents, leaf = path.split(".")
        msg: Message | None = ssd
        for part in parents:
            msg = msg.message(part, required=False) if msg is not None else None
        if msg is None or not msg.has(leaf):
            continue
        if default is None:
            value: object = "set"
        elif isinstance(default, bool):
            value = msg.bool(leaf)
        else:
            value = msg.float(leaf)
        if value != default:
            raise ConfigError(f"{source}: model.ssd.{path}: {value} is not supported ({why})",
                              hint="export the detector with this field at its default")


def parse_pipeline_config(text: str, source: str = "pipeline.config") -> SsdPipelineConfig:
    """The SSD fields of a pipeline.config text; ConfigError naming the field path for anything wrong."""
    root = parse(text, source)
    model = root.message("model")
    if not model.has("ssd"):
        kind = next(iter(model.fields), "nothing")
        raise ConfigError(f"{source}: model: {kind} is set, expected ssd",
                          hint="only SSD pipeline.configs are supported")
    ssd = model.message("ssd")
    num_classes = ssd.int("num_classes")
    _check(num_classes >= 1, f"{source}: model.ssd.num_classes", f"must be >= 1, got {num_classes}")
    _refuse_unsupported(ssd, source)
    height, width = _resizer(ssd, source)
    extractor = ssd.message("feature_extractor").string("type", "")
    nms, converter, logit_scale = _post_processing(ssd, source)
    return SsdPipelineConfig(
        num_classes=num_classes, image_height=height, image_width=width, feature_extractor=extractor,
        anchors=_anchor_config(ssd.message("anchor_generator"), source), box_coder=_box_coder(ssd, source),
        nms=nms, score_converter=converter, logit_scale=logit_scale, source=source)


def load_pipeline_config(path: Path) -> SsdPipelineConfig:
    text = read_text_file(path, "pipeline.config", hint="check the path or the archive member")
    return parse_pipeline_config(text, source=Path(path).name)
