"""Recipe parameters: declared per recipe (recipes/params.py), parsed and range-checked in one place."""

from __future__ import annotations

import pytest

from edgezoo import zoo
from edgezoo.recipes import get_recipe
from edgezoo.recipes.params import (MAX_DETECTION_SLOTS, ParamError, ParamSpec, ParamType, check_shape,
                                    check_shapes)


@pytest.mark.parametrize("card", zoo.all_cards(), ids=lambda c: c.id)
def test_every_card_recipe_declares_its_params_and_the_cards_values_are_valid(card):
    for target, spec in card.recipes.items():
        recipe = get_recipe(spec.name)
        assert recipe.params, f"{spec.name} declares no parameters"
        typed = recipe.validate(spec.params, card.id)
        assert set(spec.params) <= set(typed)
        assert recipe.validate(typed, card.id) == typed  # idempotent: export and the recipe may both check


def test_values_arrive_typed_with_defaults():
    onnx = get_recipe("onnx-fix-and-cut")
    assert onnx.validate({"batch": "4", "simplify": "off"}) == {"batch": 4, "simplify": False}
    assert onnx.validate({"batch": "none"})["batch"] is None  # none is a value: keep the dynamic batch
    ssd = get_recipe("ssd-mobilenet-onnx-caffe-meta")
    assert ssd.validate({"keep_top_k": "7", "score_threshold": "0"}) == {"keep_top_k": 7, "score_threshold": 0.0}
    tflite = get_recipe("ssd-tf-to-tflite-postprocess").validate({"nms": "FAST"})
    assert tflite == {"max_detections": 4000, "nms": "fast", "max_classes_per_detection": 1}


def test_falsy_values_are_validated_never_replaced():
    """0, false and '' are values: validated as such (the `or default` bug replaced keep_top_k 0 by 100)."""
    ssd = get_recipe("ssd-mobilenet-onnx-caffe-meta")
    with pytest.raises(ParamError, match=r"param keep_top_k: 0 is out of range: expected integer in \[1, 100000\]"):
        ssd.validate({"keep_top_k": 0})
    assert ssd.validate({"score_threshold": 0})["score_threshold"] == 0.0
    with pytest.raises(ParamError, match="param outputs: expected tensor names"):
        get_recipe("onnx-fix-and-cut").validate({"outputs": []})
    with pytest.raises(ParamError, match="param source: expected text"):
        get_recipe("onnx-fix-and-cut").validate({"source": ""})


def test_a_recipe_called_directly_validates_too(tmp_path):
    from edgezoo.recipes.base import RecipeInput
    from edgezoo.zoo.schema import Target

    card = zoo.get_card("ssd-mobilenet-v1")
    rin = RecipeInput(card=card, target=Target.TFLITE, sources={}, params={"max_detections": MAX_DETECTION_SLOTS + 1},
                      workdir=tmp_path, standin=True)
    with pytest.raises(ParamError, match="ssd-mobilenet-v1: recipe ssd-tf-to-tflite-postprocess: param "
                                         "max_detections: 100001 is out of range") as exc:
        get_recipe("ssd-tf-to-tflite-postprocess")(rin)
    assert exc.value.exit_code == 2 and list(tmp_path.iterdir()) == []


def test_spec_descriptions():
    spec = ParamSpec("iou", ParamType.FLOAT, "NMS IoU", low=0, high=1, low_open=True)
    assert spec.type_text() == "number in (0, 1]"
    assert spec.parse("0.5", "--iou") == 0.5
    for bad in ("0", "1.5", "nan", "inf", "x", True):
        with pytest.raises(ParamError, match="--iou"):
            spec.parse(bad, "--iou")
    choice = ParamSpec("nms", ParamType.CHOICE, "flavour", choices=("regular", "fast"))
    with pytest.raises(ParamError, match="did you mean 'regular'"):
        choice.parse("regulr", "--nms")


def test_input_shapes_are_bounded_by_what_the_runtimes_allocate():
    assert check_shape([1, 224, 224, 3], "x") == [1, 224, 224, 3]
    with pytest.raises(ParamError, match=r"has 201,326,592 elements; at most 67,108,864 elements \(256 MiB"):
        check_shape([1, 8192, 8192, 3], "--inputs x")
    assert check_shape([1, 4096, 4096, 4], "x") == [1, 4096, 4096, 4]  # exactly the limit
    with pytest.raises(ParamError, match=r"inputs have 100,663,296 elements together"):
        check_shapes({"a": [1, 4096, 4096, 3], "b": [1, 4096, 4096, 3]}, "--inputs")
    with pytest.raises(ParamError, match=r"every dimension must be in \[1, 2147483647\]"):
        check_shape([1, 2**31, 1], "--inputs x")

