import dataclasses

import onnx
import pytest

import ssd_models
from edgezoo.core.errors import ConfigError
from edgezoo.detection.codings import DataLayout
from edgezoo.tidl.meta_arch.prototxt import read_meta_arch, write_meta_arch
from edgezoo.tidl.meta_arch.validate import check_meta_arch, errors_of, validate_meta_arch
from edgezoo.verify.meta_arch import with_ssd


@pytest.fixture(scope="module")
def model():
    return onnx.load(ssd_models.reduced_standin())


@pytest.fixture(scope="module")
def meta():
    return ssd_models.generated_meta(ssd_models.reduced_standin())


def _prior(meta, k, **changes):
    ssd = meta.single_ssd()
    priors = list(ssd.prior_box_param)
    priors[k] = dataclasses.replace(priors[k], **changes)
    return with_ssd(meta, prior_box_param=tuple(priors))


def _errors(meta, model):
    return {p.field: p.message for p in errors_of(validate_meta_arch(meta, model))}


def test_generated_prototxt_is_valid(meta, model):
    assert validate_meta_arch(meta, model) == []
    assert check_meta_arch(meta, model) == []


def test_unknown_tensor_names_the_field_and_the_real_head(meta, model):
    ssd = meta.single_ssd()
    bad = with_ssd(meta, box_input=ssd.box_input[:2] + ("Conv_999",) + ssd.box_input[3:])
    errors = _errors(bad, model)
    assert list(errors) == ["caffe_ssd.box_input[2]"]
    assert "no node's first output is named 'Conv_999'" in errors["caffe_ssd.box_input[2]"]
    assert repr(ssd.box_input[2]) in errors["caffe_ssd.box_input[2]"]  # the head at that position


def test_node_name_instead_of_tensor_name():
    # the older PyTorch naming (tensors by number): there a node name is a trap
    path = ssd_models.reduced_standin(naming="numbered")
    model, meta = onnx.load(path), ssd_models.generated_meta(path)
    ssd = meta.single_ssd()
    node = next(n for n in model.graph.node if n.output and n.output[0] == ssd.class_input[0])
    errors = _errors(with_ssd(meta, class_input=(node.name,) + ssd.class_input[1:]), model)
    assert f"is a node NAME; TIDL matches output tensor names: expected {ssd.class_input[0]!r}" \
        in errors["caffe_ssd.class_input[0]"]


def test_wrong_output_count(meta, model):
    errors = _errors(with_ssd(meta, output=("bboxes", "labels")), model)
    assert errors == {"caffe_ssd.output": "2 given, the graph has 3 (bboxes, labels, scores); the counts must match"}
    errors = _errors(with_ssd(meta, output=("bboxes", "label", "scores")), model)
    assert "'label' is not a graph output" in errors["caffe_ssd.output[1]"] and "'labels'" in \
        errors["caffe_ssd.output[1]"]


def test_missing_step(meta, model):
    errors = _errors(_prior(meta, 1, step=None), model)
    assert list(errors) == ["caffe_ssd.prior_box_param[1].step"] and "exits silently" in \
        errors["caffe_ssd.prior_box_param[1].step"]


def test_three_variances(meta, model):
    errors = _errors(_prior(meta, 0, variance=(0.1, 0.1, 0.2)), model)
    assert errors == {"caffe_ssd.prior_box_param[0].variance": "3 value(s) given, exactly 4 expected "
                                                                 "(e.g. 0.1 0.1 0.2 0.2)"}


def test_wrong_channel_count(meta, model):
    # head 0 has 4 boxes per location; two aspect ratios would make it 6: 24 box and 486 class channels
    errors = _errors(_prior(meta, 0, aspect_ratio=(2.0, 3.0)), model)
    box = errors["caffe_ssd.box_input[0]"]
    assert "has 16 channels" in box and "6 priors per location, so 6 x 4 = 24 channels are expected" in box
    assert "6 x 81 = 486" in errors["caffe_ssd.class_input[0]"]


def test_grid_layout_order_and_required_fields(meta, model):
    errors = _errors(_prior(meta, 0, step=30.0), model)
    assert "50x50 grid but image/step = 1200/30.0 x 1200/30.0 gives 40x40" in errors["caffe_ssd.prior_box_param[0].step"]
    errors = _errors(with_ssd(meta, data_layout=DataLayout.SEPARATED), model)
    assert "SEPARATED, but the graph reshapes its heads as INTERLEAVED" in errors["caffe_ssd.data_layout"]
    ssd = meta.single_ssd()
    swapped = ssd.box_input[1::-1] + ssd.box_input[2:]
    assert "order differs from the graph's prior order" in _errors(with_ssd(meta, box_input=swapped), model)[
        "caffe_ssd.box_input"]
    dop = dataclasses.replace(ssd.detection_output_param, code_type=None)
    errors = _errors(with_ssd(meta, detection_output_param=dop, data_layout=None, in_width=None), model)
    assert {"caffe_ssd.detection_output_param.code_type", "caffe_ssd.data_layout", "caffe_ssd.in_width"} <= set(errors)


def test_long_names_and_all_problems_reported_together(meta, model):
    ssd = meta.single_ssd()
    bad = with_ssd(_prior(meta, 2, variance=(0.1,), step=None), output=("bboxes",),
                   box_input=("x" * 600,) + ssd.box_input[1:])
    text = write_meta_arch(bad)
    with pytest.raises(ConfigError) as info:
        check_meta_arch(read_meta_arch(text), model, where="meta_arch.prototxt")
    message = str(info.value)
    assert message.startswith("meta_arch.prototxt: 4 problem(s): ")
    for field in ("caffe_ssd.box_input[0]: name of 600 characters", "caffe_ssd.output:",
                  "caffe_ssd.prior_box_param[2].step:", "caffe_ssd.prior_box_param[2].variance:"):
        assert field in message


def test_non_integer_steps_are_a_warning_with_the_drift(meta, model):
    problems = validate_meta_arch(_prior(meta, 2, step=92.0), model)
    assert errors_of(problems) == []
    (warning,) = problems
    assert warning.field == "caffe_ssd.prior_box_param[2].step" and "drift by up to 0.0032" in warning.message


def test_ti_documentation_sample_against_our_graph(model):
    """TI's sample names PyTorch NODES (Conv_338); TIDL matches output tensors: every head is reported, with the
    real head at that position; once mapped, only the nominal steps (92, 171) remain, as warnings."""
    from pathlib import Path

    from edgezoo.ssd.onnx_heads import find_heads
    from edgezoo.tidl.meta_arch.prototxt import load_meta_arch

    sample = Path(__file__).parents[3] / "benchmarks" / "data" / "ti_ssd_resnet34_1200_sample.prototxt"
    meta = load_meta_arch(sample)
    errors = _errors(meta, model)
    assert sorted(errors) == sorted([f"caffe_ssd.box_input[{i}]" for i in range(6)] +
                                    [f"caffe_ssd.class_input[{i}]" for i in range(6)])
    heads = find_heads(model, 81)
    assert f"the graph's head at this position is {heads.box_inputs[0]!r}" in errors["caffe_ssd.box_input[0]"]
    mapped = with_ssd(meta, box_input=tuple(heads.box_inputs), class_input=tuple(heads.class_inputs))
    problems = validate_meta_arch(mapped, model)
    assert errors_of(problems) == []
    assert sorted(p.field for p in problems) == ["caffe_ssd.prior_box_param[2].step",
                                                 "caffe_ssd.prior_box_param[3].step", "caffe_ssd.score_converter"]
