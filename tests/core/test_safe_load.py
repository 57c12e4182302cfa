"""YAML and JSON from users, read with bounds: billion-laughs aliases and documents nested 100,000 deep are one-line
errors (exit 2) through the commands that read them, in well under the time a walk of the expansion would take;
ordinary anchors, merge keys and brackets inside strings still load; an error line never carries megabytes."""

from __future__ import annotations

import json
import shutil

import pytest

from edgezoo.cli import main
from edgezoo.core.errors import ConfigError, EdgezooError, clip
from edgezoo.core.safe_load import MAX_DEPTH, MAX_NODES, load_json, load_yaml

DEEP = 100_000


def laughs(levels: int, name: str = "a") -> str:
    """A YAML billion laughs: level k lists level k-1 nine times (9**levels values from a few hundred bytes)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, levels)]
    return "\n".join(lines) + f"\n{name}: *l{levels - 1}\n"


def test_aliases_expanding_past_the_budget_are_refused():
    text = laughs(9)
    assert len(text) < 800 and 9 ** 9 > MAX_NODES
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: its aliases \(\*name\) expand to more than 100,000"):
        load_yaml(text, "config.yaml")
    small = load_yaml(laughs(3), "ok.yaml")  # 729 values: fine
    assert len(small["a"]) == 9 and small["a"][0][0] == ["lol"] * 9


def test_ordinary_yaml_features_still_load():
    text = "base: &b {mean: [1, 2, 3], scale: 0.5}\nfirst: *b\nsecond: {<<: *b, scale: 2}\n"
    data = load_yaml(text, "x.yaml")
    assert data["first"] == {"mean": [1, 2, 3], "scale": 0.5}
    assert data["second"] == {"mean": [1, 2, 3], "scale": 2}
    assert load_yaml("[1, 2", "--param x", text_if_invalid=True) == "[1, 2"  # a plain string on the command line


@pytest.mark.parametrize("text, where", [("[" * DEEP, "yaml"), ("a:\n" + "".join(f"{' ' * (2 * i)}- \n"
                                                                                for i in range(1, 200)), "yaml")])
def test_deep_yaml_is_refused_not_a_recursion_error(text, where):
    with pytest.raises(ConfigError, match=rf"nested more than {MAX_DEPTH} levels deep"):
        load_yaml(text, where)


def test_deep_json_is_refused_and_strings_do_not_count():
    with pytest.raises(ConfigError, match=rf"m.json: nested more than {MAX_DEPTH} levels deep"):
        load_json("[" * DEEP + "]" * DEEP, "m.json")
    with pytest.raises(ConfigError, match="nested more than"):
        load_json(b'{"a":' * 65 + b"1" + b"}" * 65, "m.json")
    assert load_json(b'{"a":' * 64 + b"1" + b"}" * 64, "m.json") is not None  # exactly the limit
    assert load_json('{"s": "' + "[" * DEEP + '\\"]"}', "m.json")["s"].startswith("[[[")


def test_an_error_line_is_clipped():
    err = EdgezooError("value " + "x" * 5_000_000, hint="h" * 10_000)
    text = str(err)
    assert len(text) < 3000 and "\n" not in text and "more characters" in text
    assert clip("a\nb") == "a b"


def test_param_alias_bomb_is_one_short_line(tmp_path, capsys):
    """A few hundred bytes on the command line that stand for 9**9 values (was: export past 6 GB of memory)."""
    flow = "{" + ", ".join(laughs(9).strip().splitlines()) + "}"  # the same document in YAML's flow style
    assert len(flow) < 800
    code = main(["export", "resnet50", "--to", "onnx", "--standin", "--offline", "--out", str(tmp_path / "o"),
                 "--param", f"batch={flow}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err) < 1000 and err.count("\n") == 1, err[:2000]
    assert "--param batch" in err and "expand to more than 100,000 values" in err
    assert not (tmp_path / "o").exists()


def _bundle_copy(tmp_path):
    from tests.evaluation.eval_helpers import bundle

    folder = tmp_path / "bundle"
    shutil.copytree(bundle("mobilenet-v1", "onnx"), folder)
    return folder


@pytest.mark.parametrize("name, content, says", [
    ("config.yaml", laughs(9, "preprocess"), "expand to more than 100,000 values"),
    ("runtime_options.yaml", laughs(9, "tensor_bits"), "expand to more than 100,000 values"),
    ("config.yaml", "[" * DEEP, "nested more than 64 levels deep"),
    ("manifest.json", "[" * DEEP + "]" * DEEP, "nested more than 64 levels deep"),
], ids=["config-laughs", "options-laughs", "config-deep", "manifest-deep"])
def test_quantize_refuses_hostile_bundle_files(tmp_path, capsys, name, content, says):
    from tests.quantize.quant_helpers import photo_folder

    folder = _bundle_copy(tmp_path)
    (folder / name).write_text(content)
    photo_folder()
    capsys.readouterr()  # what building the shared bundle printed
    # --allow-edited-bundle: past the manifest's checksums (the user edited the file on purpose), the bounds hold
    code = main(["quantize", str(folder), "--calibration", str(photo_folder()), "--frames", "2",
                 "--out", str(tmp_path / "q"), "--allow-edited-bundle"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-2000:]
    assert f"{folder / name}" in err and says in err
    assert not (tmp_path / "q").exists()


def test_eval_refuses_deep_coco_annotations(tmp_path, capsys):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text("{\"images\": " + "[" * DEEP + "]" * DEEP + "}")
    code = main(["eval", "ssd-mobilenet", "--standin", "--dataset", str(root), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "nested more than 64 levels deep" in err and len(err.strip().splitlines()) == 1


def test_cache_commands_refuse_a_deep_trust_file(capsys):
    from edgezoo.fetch.cache import cache_root
    from edgezoo.fetch.tofu import trust_path

    cache_root().mkdir(parents=True, exist_ok=True)
    trust_path().write_text("{\"x\": " + "[" * DEEP + "]" * DEEP + "}")
    code = main(["cache", "list"])
    err = capsys.readouterr().err
    assert code == 2 and f"trust file {trust_path()}: nested more than 64 levels deep" in err
    assert "fix or delete it" in err and len(err.strip().splitlines()) == 1


def test_export_refuses_a_deep_pipeline_config(tmp_path, capsys):
    from tests.od_api_helpers import config_copy  # an OD API export folder: frozen graph + this pipeline.config

    folder = config_copy("classes3", tmp_path / "export", text="model { " * DEEP + "}" * DEEP)
    code = main(["export", "--graph", str(folder), "--to", "tflite", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pipeline.config:1: message blocks nested more than 64 levels deep" in err, err[-2000:]
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_json_documents_written_by_edgezoo_round_trip(tmp_path):
    data = {"a": [1, 2, {"b": "c[{"}], "n": None}
    assert load_json(json.dumps(data), "x") == data
