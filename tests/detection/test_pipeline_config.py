"""pipeline.config reading: the published values, unknown fields tolerated, malformed files as path-named errors."""

from __future__ import annotations

import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.detection.pipeline_config import load_pipeline_config, parse_pipeline_config
from edgezoo.detection.textproto import parse
from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG


def test_published_values():
    cfg = parse_pipeline_config(PIPELINE_CONFIG)
    assert cfg.num_classes == 90 and (cfg.image_height, cfg.image_width) == (300, 300)
    assert cfg.feature_extractor == "ssd_mobilenet_v1" and cfg.score_converter == "SIGMOID"
    a = cfg.anchors
    assert a.num_layers == 6 and a.reduce_boxes_in_lowest_layer
    assert a.min_scale == pytest.approx(0.2, abs=1e-7) and a.max_scale == pytest.approx(0.95, abs=1e-7)
    assert a.aspect_ratios[4] == pytest.approx(0.3333, abs=1e-7)  # the config's value, not 1/3
    assert (cfg.box_coder.y_scale, cfg.box_coder.x_scale, cfg.box_coder.height_scale,
            cfg.box_coder.width_scale) == (10, 10, 5, 5)
    assert cfg.nms.score_threshold == pytest.approx(0.3) and cfg.nms.iou_threshold == pytest.approx(0.6)
    assert (cfg.nms.max_detections_per_class, cfg.nms.max_total_detections) == (100, 100)


def test_values_are_float32_as_in_the_proto():
    import numpy as np

    cfg = parse_pipeline_config(PIPELINE_CONFIG)
    assert cfg.anchors.min_scale == float(np.float32(0.2))


def test_defaults_and_syntax_variants():
    text = """
    # comment
    model < ssd { num_classes: 3 image_resizer { fixed_shape_resizer { height: 64 width: 48 } }
      feature_extractor: { type: 'x' unknown_field: [1, 2, 3] }
      box_coder { faster_rcnn_box_coder { } }
      anchor_generator { ssd_anchor_generator { aspect_ratios: [1.0, 2.0] } }
      post_processing { batch_non_max_suppression { score_threshold: 1e-8 } } } >
    eval_config: { metrics_set: "coco_detection_metrics" }
    """
    cfg = parse_pipeline_config(text)
    assert (cfg.num_classes, cfg.image_height, cfg.image_width) == (3, 64, 48)
    assert cfg.anchors.aspect_ratios == (1.0, 2.0) and cfg.anchors.num_layers == 6
    assert cfg.box_coder.height_scale == 5.0 and cfg.score_converter == "IDENTITY"
    assert cfg.nms.score_threshold == pytest.approx(1e-8) and cfg.nms.max_total_detections == 100


@pytest.mark.parametrize("edit,message", [
    (("num_classes: 90", "num_classes: ninety"), "model.ssd.num_classes: expected an integer"),
    (("min_scale: 0.20000000298", "min_scale: 1.5"), "ssd_anchor_generator.min_scale: must be in"),
    (("iou_threshold: 0.600000023842", "iou_threshold: 0.0"), "batch_non_max_suppression.iou_threshold"),
    (("score_converter: SIGMOID", "score_converter: TANH"), "post_processing.score_converter: expected one of"),
    (("fixed_shape_resizer {", "keep_aspect_ratio_resizer {"), "only fixed_shape_resizer"),
    (("faster_rcnn_box_coder {", "square_box_coder {"), "only faster_rcnn_box_coder"),
    (("y_scale: 10.0", "y_scale: 0.0"), "faster_rcnn_box_coder.y_scale"),
])
def test_malformed_values_name_the_field_path(edit, message):
    text = PIPELINE_CONFIG.replace(*edit, 1)
    assert text != PIPELINE_CONFIG
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as err:
        parse_pipeline_config(text)
    assert "\n" not in str(err.value)


def test_missing_required_block():
    start = PIPELINE_CONFIG.index("    post_processing {")
    end = PIPELINE_CONFIG.index("    normalize_loss_by_num_matches")
    with pytest.raises(ConfigError, match=r"model\.ssd\.post_processing: missing"):
        parse_pipeline_config(PIPELINE_CONFIG[:start] + PIPELINE_CONFIG[end:])


def test_truncated_and_garbled_text_gives_the_line():
    with pytest.raises(ConfigError, match="unexpected end of file"):
        parse_pipeline_config(PIPELINE_CONFIG[:1500])
    with pytest.raises(ConfigError, match=r"^config:3: a\.c: expected a value or '\{', got '\}'"):
        parse("a {\n b: 1\n c: }\n")
    with pytest.raises(ConfigError, match="cannot read"):
        parse("a: 1\n@@@")


def test_not_an_ssd_config():
    with pytest.raises(ConfigError, match="expected ssd"):
        parse_pipeline_config("model { faster_rcnn { num_classes: 3 } }")


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such pipeline.config"):
        load_pipeline_config(tmp_path / "nope.config")


def test_text_format_details():
    root = parse('a: "x\\\\" \'y\' b: "\\101\\x42" c: [1, 2] c: 3\nd: -inf e: 0x10')
    assert root.string("a") == "x\\y" and root.string("b") == "AB"  # adjacent literals join after unescaping
    assert root.ints("c") == [1, 2, 3] and root.float("d") == float("-inf") and root.int("e") == 16
    with pytest.raises(ConfigError, match=r"^config:1: a: expected ':' or '\{' after the field name, got '1'"):
        parse("a 1")
    with pytest.raises(ConfigError, match=r"^config:2: a\.b: expected an integer, got '2\.5'"):
        parse("a {\n b: 2.5 }").message("a").int("b")


MULTISCALE = """model { ssd { num_classes: 7 image_resizer { fixed_shape_resizer { height: 640 width: 640 } }
  feature_extractor { type: "ssd_resnet50_v1_fpn" }
  box_coder { faster_rcnn_box_coder { } }
  anchor_generator { multiscale_anchor_generator { min_level: 3 max_level: 7 anchor_scale: 4.0
    aspect_ratios: [1.0, 2.0, 0.5] scales_per_octave: 2 } }
  post_processing { batch_non_max_suppression { score_threshold: 1e-8 } score_converter: SIGMOID } } }
"""


def test_multiscale_anchor_generator():
    from edgezoo.detection.pipeline_config import MultiscaleAnchorConfig

    cfg = parse_pipeline_config(MULTISCALE)
    assert isinstance(cfg.anchors, MultiscaleAnchorConfig)
    assert (cfg.anchors.min_level, cfg.anchors.max_level, cfg.anchors.num_layers) == (3, 7, 5)
    assert cfg.anchors.aspect_ratios == (1.0, 2.0, 0.5) and cfg.anchors.scales_per_octave == 2


@pytest.mark.parametrize("edit,message", [
    (("max_level: 7", "max_level: 2"), "multiscale_anchor_generator.max_level: levels must satisfy"),
    (("scales_per_octave: 2", "scales_per_octave: 0"), "scales_per_octave: must be in [1, 64]"),
    (("scales_per_octave: 2", "scales_per_octave: 2 normalize_coordinates: false"),
     "normalize_coordinates: false (anchors in pixels) is not supported"),
    (("num_classes: 7", "num_classes: 7 add_background_class: false"),
     "model.ssd.add_background_class: False is not supported"),
    (("score_threshold: 1e-8", "score_threshold: 1e-8 soft_nms_sigma: 0.5"), "soft_nms_sigma: 0.5 is not supported"),
    (("multiscale_anchor_generator {", "grid_anchor_generator {"), "anchor_generator: grid_anchor_generator is set"),
])
def test_unsupported_or_invalid_fields_are_named(edit, message):
    with pytest.raises(ConfigError) as err:
        parse_pipeline_config(MULTISCALE.replace(*edit))
    assert message in str(err.value) and err.value.exit_code == 2
