import copy
from pathlib import Path

import pytest
import yaml

from edgezoo import zoo
from edgezoo.core.errors import CardError, UnknownModelError
from edgezoo.zoo.schema import HashAlgorithm, Target, Task

CARD_FILES = sorted(zoo.CARDS_DIR.glob("*.yaml"))


def test_the_four_mlperf_models_are_in_the_zoo():
    assert [c.id for c in zoo.all_cards()] == ["mobilenet-v1", "resnet50-v1.5", "ssd-mobilenet-v1", "ssd-resnet34-1200"]


@pytest.mark.parametrize("alias,card_id", [("resnet50", "resnet50-v1.5"), ("mobilenet", "mobilenet-v1"),
                                           ("ssd-mobilenet", "ssd-mobilenet-v1"), ("ssd-resnet34", "ssd-resnet34-1200"),
                                           ("RESNET50_V1", "resnet50-v1.5")])
def test_aliases_resolve(alias, card_id):
    assert zoo.get_card(alias).id == card_id


def test_unknown_model_suggests_the_closest_ids():
    with pytest.raises(UnknownModelError) as info:
        zoo.get_card("resnet5")
    assert "resnet50" in str(info.value)


def test_published_facts_from_models_md():
    resnet = zoo.get_card("resnet50")
    onnx_files = [f for f in resnet.files if f.name.endswith(".onnx")]
    assert sorted(f.opset for f in onnx_files) == [8, 11]  # both published opsets
    pb = resnet.file("resnet50_v1.pb")
    assert pb.checksum.algorithm is HashAlgorithm.MD5 and pb.checksum.hexdigest == "7b94a2da05dd30f6c0af23a46bc08886"
    assert resnet.format("tf").internal["logits"] == "resnet_model/dense/BiasAdd"
    assert resnet.labels.offset == -1 and resnet.labels.num_classes == 1001
    mobilenet = zoo.get_card("mobilenet")
    assert mobilenet.file("mobilenet_v1_1.0_224.tgz").size == 94_321_559
    assert not mobilenet.file("mobilenet_v1_1.0_224.onnx").checksum.known  # honestly unknown, never invented
    ssd = zoo.get_card("ssd-mobilenet")
    assert ssd.task is Task.DETECTION and ssd.format("tf").inputs[0].dtype == "uint8"
    r34 = zoo.get_card("ssd-resnet34")
    assert set(r34.recipes) == {Target.ONNX}
    assert r34.file("resnet34-ssd1200.onnx").checksum.algorithm is HashAlgorithm.SHA256


@pytest.mark.parametrize("card", zoo.all_cards(), ids=lambda c: c.id)
def test_mlperf_target_is_the_stated_fraction_of_the_reference(card):
    acc = card.accuracy
    assert acc.target == pytest.approx(acc.reference * acc.target_fraction, rel=1e-4)


def test_mlperf_facts_are_the_reference_apps():
    """main.py's SUPPORTED_DATASETS: pipeline and input size per model; ResNet34-SSD's 0.05 score threshold and
    LoadGen's ssd-large sample count; the others keep every detection and main.py's default of 500."""
    facts = {c.id: (c.mlperf.preprocess.value, c.mlperf.size, c.mlperf.score_threshold,
                    c.mlperf.performance_sample_count) for c in zoo.all_cards()}
    assert facts == {
        "resnet50-v1.5": ("pre_process_vgg", (224, 224), None, 500),
        "mobilenet-v1": ("pre_process_mobilenet", (224, 224), None, 500),
        "ssd-mobilenet-v1": ("pre_process_coco_mobilenet", (300, 300), None, 500),
        "ssd-resnet34-1200": ("pre_process_coco_resnet34", (1200, 1200), 0.05, 64),
    }


def test_a_card_without_an_mlperf_section_has_no_mlperf_preprocessing(monkeypatch):
    from edgezoo.core.errors import DatasetError
    from edgezoo.preprocessing.mlperf import model_preprocess

    data = copy.deepcopy(_load(zoo.CARDS_DIR / "mobilenet-v1.yaml"))
    del data["mlperf"]
    card = zoo.parse_card(data)
    assert card.mlperf is None
    monkeypatch.setattr(zoo, "all_cards", lambda: (card,))
    with pytest.raises(DatasetError, match="mobilenet-v1: MLPerf's reference app has no preprocessing"):
        model_preprocess("mobilenet-v1")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d["files"][1].__setitem__("checksum", "sha1:abc"), "files[1].checksum: unknown algorithm 'sha1'"),
    (lambda d: d["files"][0].__setitem__("checksum", "sha256:xyz"), "files[0].checksum: sha256 digest must be 64"),
    (lambda d: d["files"][0].__setitem__("size", -3), "files[0].size: must be >= 1"),
    (lambda d: d["files"][0].__setitem__("url", "ftp://x"), "files[0].url: expected an http(s)://"),
    (lambda d: d["formats"]["tf"].__setitem__("file", "nope.pb"), "formats.tf.file: names no published file"),
    (lambda d: d["formats"]["tf"]["inputs"][0].__setitem__("dtype", "float64"), "formats.tf.inputs[0].dtype"),
    (lambda d: d["preprocess"].__setitem__("layout", "CHW"), "preprocess.layout: expected one of"),
    (lambda d: d.pop("labels"), "missing required field(s) labels"),
    (lambda d: d.__setitem__("colour", 1), "unknown field(s) colour"),
    (lambda d: d["accuracy"].__setitem__("target", 50.0), "accuracy.target: 50.0 is not target_fraction"),
    (lambda d: d["recipes"].__setitem__("tensorrt", {"name": "x"}), "recipes: unknown field(s) tensorrt"),
    (lambda d: d["mlperf"].__setitem__("preprocess", "pre_process_vgg16"), "mlperf.preprocess: expected one of"),
    (lambda d: d["mlperf"].__setitem__("size", [224]), "mlperf.size: expected [height, width]"),
    (lambda d: d["mlperf"].__setitem__("score_threshold", 1.5), "mlperf.score_threshold: expected a score in [0, 1)"),
    (lambda d: d["mlperf"].__setitem__("performance_sample_count", 0), "mlperf.performance_sample_count: must be >= 1"),
])
def test_a_broken_card_names_its_bad_field(mutate, expected):
    data = copy.deepcopy(_load(zoo.CARDS_DIR / "mobilenet-v1.yaml"))
    mutate(data)
    with pytest.raises(CardError) as info:
        zoo.parse_card(data)
    assert str(info.value).startswith("mobilenet-v1: ")
    assert expected in str(info.value)


def test_invalid_yaml_is_a_card_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(CardError, match="bad.yaml: not valid YAML"):
        zoo.load_card_file(bad)
