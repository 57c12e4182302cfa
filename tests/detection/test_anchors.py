"""TF OD API ssd_anchor_generator semantics: count, ssd.md sanity values, order, and the graph cross-check."""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.detection.anchors import (box_specs, check_against_graph, generate_anchors, ssd_feature_map_sizes)
from edgezoo.detection.pipeline_config import parse_pipeline_config
from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG


@pytest.fixture(scope="module")
def anchors():
    cfg = parse_pipeline_config(PIPELINE_CONFIG)
    return generate_anchors(cfg.anchors, ssd_feature_map_sizes(300, 300))


def test_count_and_feature_maps(anchors):
    assert anchors.feature_maps == ((19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1))
    assert [s.count for s in anchors.layers] == [3, 6, 6, 6, 6, 6]
    assert len(anchors) == 1917 == 19 * 19 * 3 + (100 + 25 + 9 + 4 + 1) * 6


def test_sanity_values_from_ssd_md(anchors):
    np.testing.assert_allclose(anchors.center[0], [0.026316, 0.026316, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(anchors.center[1916], [0.5, 0.5, 0.974679, 0.974679], atol=1e-6)
    # 918 of the 1917 anchors extend outside [0, 1]: no clipping.
    assert int(((anchors.corners < 0) | (anchors.corners > 1)).any(axis=1).sum()) == 918


def test_layer_zero_and_interpolated_box_last(anchors):
    s = anchors.layers
    assert [r for _, r in s[0].boxes] == [1.0, 2.0, 0.5] and s[0].boxes[0][0] == 0.1
    assert s[0].boxes[1][0] == pytest.approx(0.2)
    ratios = [r for _, r in s[1].boxes]
    assert ratios[:5] == pytest.approx([1, 2, 0.5, 3, 0.3333], abs=1e-7) and ratios[5] == 1.0
    assert s[1].boxes[5][0] == pytest.approx(np.sqrt(0.35 * 0.5))
    # anchor 1 is box (0.2, ratio 2) at the first cell: h = 0.2 / sqrt 2, w = 0.2 * sqrt 2
    np.testing.assert_allclose(anchors.center[1, 2:], [0.2 / np.sqrt(2), 0.2 * np.sqrt(2)], rtol=1e-6)
    # order is row, column, box: anchor 3 is the next column
    assert anchors.center[3, 1] > anchors.center[0, 1] and anchors.center[3, 0] == anchors.center[0, 0]


def test_graph_check_passes_and_reports_the_worst_anchor(anchors):
    assert check_against_graph(anchors, anchors.corners.copy(), "g") == 0.0
    planted = anchors.corners.copy()
    planted[1500, 2] += 0.01
    with pytest.raises(ConfigError, match=r"worst is anchor 1500 \(layer 1") as err:
        check_against_graph(anchors, planted, "g")
    assert "1 of 1917" in str(err.value)
    with pytest.raises(ConfigError, match="the graph has 1916 anchors"):
        check_against_graph(anchors, anchors.corners[:-1], "g")


def test_interpolated_box_misplaced_is_caught(anchors):
    """The classic re-implementation bug (interpolated box first) is a mismatch, not a silent success."""
    cfg = parse_pipeline_config(PIPELINE_CONFIG.replace("aspect_ratios: 0.333299994469", "aspect_ratios: 0.33333333"))
    other = generate_anchors(cfg.anchors, anchors.feature_maps)
    with pytest.raises(ConfigError, match="ratio 0.333"):
        check_against_graph(anchors, other.corners, "g")


def test_wrong_number_of_layers():
    cfg = parse_pipeline_config(PIPELINE_CONFIG)
    with pytest.raises(ConfigError, match="6 layers but the model has 5"):
        generate_anchors(cfg.anchors, ssd_feature_map_sizes(300, 300)[:5])


def test_without_reduced_lowest_layer():
    cfg = parse_pipeline_config(PIPELINE_CONFIG.replace(
        "aspect_ratios: 1.0\n", "reduce_boxes_in_lowest_layer: false\n        aspect_ratios: 1.0\n", 1))
    assert [s.count for s in box_specs(cfg.anchors)] == [6] * 6


def test_agrees_with_the_anchor_tensor_of_the_stand_in_graph(anchors):
    """The stand-in computes its anchors with TF ops written after the OD API (independently of this module)."""
    from edgezoo.recipes.ssd_mobilenet import graph_anchor_tensor
    from edgezoo.standins.ssd_mobilenet import ANCHOR_TENSOR
    from tests.ssd_helpers import reduced_source

    graph = graph_anchor_tensor(reduced_source() / "frozen_inference_graph.pb", ANCHOR_TENSOR, "image_tensor",
                                (300, 300))
    assert graph.shape == (1917, 4)
    assert check_against_graph(anchors, graph, "stand-in") <= 1e-6


def test_multiscale_anchors_follow_the_od_api_rules():
    """Level 3..5 on a 320x192 image: stride 2^l, base 2^l * anchor_scale, ratio-major boxes; a level whose stride
    does not divide the side has its centres at row * stride (offset 0), the others at (row + 0.5) * stride."""
    from edgezoo.detection.pipeline_config import MultiscaleAnchorConfig

    cfg = MultiscaleAnchorConfig(min_level=3, max_level=5, anchor_scale=4.0, aspect_ratios=(1.0, 2.0),
                                 scales_per_octave=2)
    maps = [(40, 24), (20, 12), (10, 6)]
    a = generate_anchors(cfg, maps, (320, 192))
    assert len(a) == sum(h * w for h, w in maps) * 4 and [s.count for s in a.layers] == [4, 4, 4]
    # level 3 (stride 8): first cell, boxes (ratio 1, scale 1), (1, 2^0.5), (2, 1), (2, 2^0.5)
    side = 8 * 4.0
    want = [(side, side), (side * 2 ** 0.5, side * 2 ** 0.5), (side / 2 ** 0.5, side * 2 ** 0.5),
            (side, side * 2)]
    for k, (h, w) in enumerate(want):
        np.testing.assert_allclose(a.center[k], [4 / 320, 4 / 192, h / 320, w / 192], rtol=1e-5)
    # level 5 (stride 32): 320 and 192 are multiples of 32 -> centred
    start5 = (40 * 24 + 20 * 12) * 4
    np.testing.assert_allclose(a.center[start5, :2], [16 / 320, 16 / 192], rtol=1e-6)
    odd = generate_anchors(cfg, [(38, 38), (19, 19), (10, 10)], (300, 300))  # 300 % 8 != 0: offset 0 everywhere
    np.testing.assert_allclose(odd.center[0, :2], [0.0, 0.0], atol=1e-7)
    assert odd.grids[0][2:] == (0.0, 0.0) and a.grids[2] == (32.0, 32.0, 0.5, 0.5)
