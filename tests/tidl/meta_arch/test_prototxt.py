import pytest

from edgezoo.core.errors import ConfigError
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.tidl.meta_arch.prototxt import (CaffeSsd, DetectionOutputParam, MetaArch, NmsParam, PriorBoxParam,
                                             read_meta_arch, write_meta_arch)

# TI's documentation sample for the MLPerf ResNet34-SSD1200 (reference/tidl.md), several fields per line.
TI_SAMPLE = """
name: "ssd"
caffe_ssd {
  box_input: "Conv_338"  box_input: "Conv_360"  box_input: "Conv_382"
  class_input: "Conv_349"  class_input: "Conv_371"  class_input: "Conv_393"
  output: "bboxes"  output: "labels"  output: "scores"
  in_width: 1200  in_height: 1200
  prior_box_param { min_size: 84.0   max_size: 180.0  aspect_ratio: 2.0 flip: true clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 24.0 }
  prior_box_param { min_size: 180.0  max_size: 396.0  aspect_ratio: 2.0 aspect_ratio: 3.0 flip: true clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 48.0 }
  detection_output_param { num_classes: 81 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.5 top_k: 200 } code_type: CENTER_SIZE keep_top_k: 200 confidence_threshold: 0.3 }
  data_layout: INTERLEAVED
}
"""


def _example() -> MetaArch:
    prior = PriorBoxParam(min_size=(84.0,), max_size=(180.0,), aspect_ratio=(2.0,), flip=True, clip=False,
                          variance=(0.1, 0.1, 0.2, 0.2), step=92.3076, offset=0.5)
    ssd = CaffeSsd(box_input=("338", "360"), class_input=("349", "371"), output=("bboxes", "labels", "scores"),
                   in_width=1200, in_height=1200, score_converter=ScoreConverter.SOFTMAX,
                   prior_box_param=(prior, PriorBoxParam(min_size=(1044.0,), step_h=400.0, step_w=400.0)),
                   detection_output_param=DetectionOutputParam(
                       num_classes=81, share_location=True, background_label_id=0,
                       nms_param=NmsParam(nms_threshold=0.5, top_k=200), code_type=CodeType.CENTER_SIZE,
                       keep_top_k=200, confidence_threshold=0.05),
                   data_layout=DataLayout.INTERLEAVED)
    return MetaArch(name="ssd", caffe_ssd=(ssd,))


def test_reader_of_writer_is_identity():
    meta = _example()
    text = write_meta_arch(meta)
    assert read_meta_arch(text) == meta
    assert 'box_input: "338"' in text and "code_type: CENTER_SIZE" in text and "step: 92.3076" in text
    # and the other way round for TI's own formatting
    ti = read_meta_arch(TI_SAMPLE)
    assert read_meta_arch(write_meta_arch(ti)) == ti


def test_ti_sample_is_read_with_every_field():
    ssd = read_meta_arch(TI_SAMPLE).single_ssd()
    assert ssd.box_input == ("Conv_338", "Conv_360", "Conv_382")
    assert ssd.output == ("bboxes", "labels", "scores") and ssd.in_width == 1200
    assert ssd.prior_box_param[1].aspect_ratio == (2.0, 3.0) and ssd.prior_box_param[1].step == 48.0
    assert ssd.prior_box_param[0].variance == (0.1, 0.1, 0.2, 0.2) and ssd.prior_box_param[0].offset is None
    assert ssd.prior_box_param[0].effective_offset == 0.5
    dop = ssd.detection_output_param
    assert dop.code_type is CodeType.CENTER_SIZE and dop.nms_param == NmsParam(0.5, 200)
    assert dop.confidence_threshold == 0.3 and ssd.data_layout is DataLayout.INTERLEAVED
    assert ssd.score_converter is None and ssd.effective_score_converter is ScoreConverter.SOFTMAX


def test_enums_by_number_lists_and_comments():
    text = """# comment
    caffe_ssd: { data_layout: 1 score_converter: 1; prior_box_param < variance: [0.1, 0.1, 0.2, 0.2] >
      detection_output_param { code_type: 5 } }"""
    ssd = read_meta_arch(text).single_ssd()
    assert ssd.data_layout is DataLayout.INTERLEAVED and ssd.score_converter is ScoreConverter.SIGMOID
    assert ssd.prior_box_param[0].variance == (0.1, 0.1, 0.2, 0.2)
    assert ssd.detection_output_param.code_type is CodeType.CENTER_SIZE_YXHW


@pytest.mark.parametrize("text, expected", [
    ("caffe_ssd { prior_box_param { varience: 0.1 } }", r"prototxt:1: caffe_ssd\[0\].prior_box_param\[0\].varience: "
                                                         r"unknown field.*did you mean 'variance'"),
    ("caffe_ssd {\n in_width: 1200\n in_width: 1200 }", r"prototxt:3: caffe_ssd\[0\].in_width: non-repeated"),
    ("caffe_ssd { data_layout: SIDEWAYS }", r"data_layout: unknown DataLayout 'SIDEWAYS'.*INTERLEAVED=1"),
    ("caffe_ssd { in_width: 12.5 }", r"in_width: expected an integer"),
    ("caffe_ssd { box_input: Conv_338 }", r"box_input\[0\]: expected a quoted string"),
    ("caffe_ssd { in_width: 3 ", r"unexpected end of file"),
    ("tidl_yolo { }", r"tidl_yolo: edgezoo reads only caffe_ssd"),
    ("caffe_ssd { in_width = 3 }", r"unexpected text '= 3 }'"),
])
def test_malformed_text_is_a_config_error_naming_line_and_field(text, expected):
    with pytest.raises(ConfigError, match=expected):
        read_meta_arch(text)


def test_infinite_floats_and_escaped_strings_round_trip():
    import math

    prior = PriorBoxParam(min_size=(float("inf"),), max_size=(-float("inf"),), step=float("nan"))
    meta = MetaArch(name='a "quoted"\\name\nwith a newline', caffe_ssd=(CaffeSsd(prior_box_param=(prior,)),))
    back = read_meta_arch(write_meta_arch(meta))
    assert back.name == meta.name
    got = back.single_ssd().prior_box_param[0]
    assert got.min_size == (math.inf,) and got.max_size == (-math.inf,) and math.isnan(got.step)
    # protobuf's other escapes and adjacent literals, as TI's tools may write them
    assert read_meta_arch(r'name: "C\157nv" ' + "'_\\x33' \"38\"").name == "Conv_338"


@pytest.mark.parametrize("text, expected", [
    ("caffe_ssd {\n in_width: [1200] }", r"prototxt:2: caffe_ssd\[0\].in_width: a list \[...\] given for a non-rep"),
    ("caffe_ssd {\n\n varience: [] }", r"prototxt:3: caffe_ssd\[0\].varience: unknown field"),
    ("caffe_ssd { in_width 3 }", r"caffe_ssd.in_width: expected ':' or '\{' after the field name, got '3'"),
    ("caffe_ssd { detection_output_param: 3 }", r"detection_output_param: expected a message block"),
    ("caffe_ssd { box_input: \"a\\d\" }", r"box_input\[0\]: invalid escape '\\d'"),
    ("caffe_ssd { data_layout: 7 }", r"data_layout: expected a DataLayout name or number, got '7'"),
])
def test_strict_like_protobuf(text, expected):
    with pytest.raises(ConfigError, match=expected):
        read_meta_arch(text)


def test_repeated_fields_accept_lists_and_single_values_together():
    ssd = read_meta_arch('caffe_ssd { box_input: ["a", "b"] box_input: "c" prior_box_param: [{step: 8}, {step: 16}] '
                         'output: [] }').single_ssd()
    assert ssd.box_input == ("a", "b", "c") and [p.step for p in ssd.prior_box_param] == [8.0, 16.0]
    assert ssd.output == ()
