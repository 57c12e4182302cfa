import json
import subprocess
import sys

from edgezoo.cli import main


def test_list_prints_a_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for model_id in ("mobilenet-v1", "resnet50-v1.5", "ssd-mobilenet-v1", "ssd-resnet34-1200"):
        assert model_id in out


def test_info_json_round_trips(capsys):
    assert main(["info", "resnet50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "resnet50-v1.5"
    assert data["recipes"]["tflite"]["params"]["outputs"] == ["resnet_model/dense/BiasAdd"]


def test_unknown_model_is_one_line_exit_2(capsys):
    assert main(["info", "resnet5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean" in err and "Traceback" not in err


def test_help_and_list_do_not_import_tensorflow():
    code = ("import sys\nfrom edgezoo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "main(['list'])\n"
            "heavy = [m for m in ('tensorflow', 'onnxruntime', 'tf2onnx', 'onnx', 'ai_edge_litert') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_info_describes_every_recipe_including_the_graph_routes(capsys):
    """`edgezoo info --recipes`: every registered recipe with its parameters, the --graph routes' too."""
    assert main(["info", "--recipes", "--json"]) == 0
    described = {d["recipe"]: d for d in json.loads(capsys.readouterr().out)}
    routes = {"generic-pb-to-tflite", "generic-pb-to-onnx", "generic-onnx-to-onnx", "generic-onnx-ssd-meta-arch",
              "od-api-ssd-tflite", "od-api-ssd-onnx", "frozen-graph-to-tflite"}
    assert routes <= set(described) and all(described[name]["summary"] for name in routes)
    opset = next(p for p in described["generic-pb-to-onnx"]["params"] if p["name"] == "opset")
    assert opset["range"] == "[9, 18]" and opset["default"] == "13"
    assert described["frozen-graph-to-tflite"]["cards"] == ["resnet50-v1.5 (tflite)"]
    assert main(["info", "generic-onnx-to-onnx"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("generic-onnx-to-onnx: ") and "simplify" in out and "used by: export --graph" in out
