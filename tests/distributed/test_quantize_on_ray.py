"""`quantize --ray` on the real two-node cluster: quantize.json's figures (metrics, deltas, agreement, sensitivity
ranking, proposed 16-bit set) equal the local run's; bad values and no --dataset are one-line exit-2 errors.
Reduced MobileNet stand-in, a few images, the first layers only (each layer is one more pass over the images)."""

from __future__ import annotations

import json

import pytest

from edgezoo.cli import main
from edgezoo.quantize import quantize_bundle
from edgezoo.quantize import api as quantize_api
from tests.quantize.quant_helpers import bundle, labelled_dataset, photo_folder

# quantize.json fields that differ between two runs by design: where the bundle was written, the calibration time.
RUN_FIELDS = {"bundle", "calibration_seconds"}


@pytest.fixture
def first_layers(monkeypatch):
    """The preview and its probes over the first 3 TIDL layers (the rest stays float): 3 probes, not 29."""
    real = quantize_api.quant_layers  # patched where quantize looks it up
    monkeypatch.setattr(quantize_api, "quant_layers", lambda *args, **kw: real(*args, **kw)[:3])


def test_sensitivity_and_16bit_set_on_two_nodes_equal_local(ray_cluster, first_layers, tmp_path, capfd):
    data = labelled_dataset("imagenet", "mobilenet-v1", 8)
    common = dict(frames=4, scale_type=1, dataset=data, sensitivity=True, target_drop=0.0)
    quantize_bundle(bundle("mobilenet-v1", "onnx"), photo_folder(), out=tmp_path / "local", **common)
    capfd.readouterr()
    quantize_bundle(bundle("mobilenet-v1", "onnx"), photo_folder(), out=tmp_path / "ray", ray=ray_cluster.address,
                    **common)
    err = capfd.readouterr().err
    local, on_ray = (json.loads((tmp_path / where / "mobilenet-v1" / "tidl-preview" / "quantize.json").read_text())
                     for where in ("local", "ray"))
    assert {k for k in local if local[k] != on_ray[k]} == RUN_FIELDS
    # the figures compared are real ones: two scores with a delta and agreement, 3 ranked layers, a 16-bit search
    assert len(local["scores"]) == 2 and local["scores"][1]["agreement"] is not None
    assert len(local["sensitivity"]) == 3 and all(r["metric_if_float"] is not None for r in local["sensitivity"])
    assert len(local["sixteen_bit"]["tried"]) >= 2
    # the images were scored by actors on both nodes: float, quantized, 3 probes, the 16-bit search
    assert "2 node(s), 2 CPU(s), 2 actor(s)" in err and err.count("done: 8/8 images") >= 5 + 1


@pytest.mark.parametrize("args, says", [
    (["--ray", "nowhere"], "not 'auto' nor HOST:PORT"),
    (["--ray", "auto", "--ray-actors", "0"], "--ray-actors 0: out of range"),
    (["--ray-actors", "2"], "--ray-actors needs --ray"),
    (["--ray", "auto"], "--ray runs the --dataset passes on Ray: it needs --dataset"),
])
def test_bad_ray_options_are_one_line(tmp_path, capsys, args, says):
    folder = bundle("mobilenet-v1", "onnx")
    capsys.readouterr()  # building the stand-in bundle reports on stderr
    code = main(["quantize", str(folder), "--calibration", str(photo_folder()), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, capsys):
    from tests.distributed.ray_nodes import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    data, folder = labelled_dataset("imagenet", "mobilenet-v1", 4), bundle("mobilenet-v1", "onnx")
    capsys.readouterr()  # building the stand-ins reports on stderr
    code = main(["quantize", str(folder), "--calibration", str(photo_folder()), "--dataset", str(data),
                 "--out", str(tmp_path / "o"), "--ray", address])
    err = capsys.readouterr().err
    assert code == 2 and f"Ray cluster at {address} cannot be reached" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_local_quantize_never_imports_ray(tmp_path):
    import subprocess
    import sys

    data = labelled_dataset("imagenet", "mobilenet-v1", 4)
    code = ("import sys\nfrom edgezoo.cli import main\n"
            f"rc = main(['quantize', {str(bundle('mobilenet-v1', 'onnx'))!r}, '--calibration', {str(data)!r}, "
            f"'--frames', '2', '--scheme', 'onnx-qdq', '--dataset', {str(data)!r}, '--out', {str(tmp_path)!r}])\n"
            "sys.exit(rc if rc else 3 if 'ray' in sys.modules else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "mobilenet-v1" / "onnx-qdq" / "quantize.json").is_file()
