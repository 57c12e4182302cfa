"""What the bundle reader's manifest check costs on a 100 MB bundle: read_bundle with every used file checked against
the manifest's sha256, against the same bundle read without the check (the hashing replaced by a no-op).

Usage: .venv/bin/python benchmarks/bench_bundle_reader.py [--runs N] [--mb 100]
The bundle (config.yaml and runtime_options.yaml of a real export, an ONNX model of --mb MiB) is written to a
temporary folder under the current one; the files are in the page cache (a bundle just exported or used).
Prints a table of median wall times (ms) and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path
from unittest import mock

import yaml
from timing import median_ms

from edgezoo import zoo
from edgezoo.bundle import reader as bundle_reader
from edgezoo.bundle.config import card_config
from edgezoo.core.report import render_table
from edgezoo.graphs.runners import load_runner
from edgezoo.zoo.schema import Target


def _onnx_of(dest: Path, mb: int) -> Path:
    """A real ONNX model of about `mb` MiB (one MatMul with a float32 weight), for the model-load comparison."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    side = int((mb * (1 << 20) / 4) ** 0.5)
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((side, side), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, side])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, side])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(dest))
    return dest


def _write_bundle(folder: Path, mb: int) -> None:
    config = card_config(zoo.get_card("resnet50-v1.5"), Target.ONNX)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "runtime_options.yaml").write_text(yaml.safe_dump({"tensor_bits": 8}))
    _onnx_of(folder / "model.onnx", mb)
    outputs = []
    for name in ("model.onnx", "runtime_options.yaml", "config.yaml"):
        data = (folder / name).read_bytes()
        outputs.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "manifest.json").write_text(json.dumps({"edgezoo_version": "bench", "outputs": outputs}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=".", prefix="bench-bundle-reader-") as tmp:
        folder = Path(tmp)
        _write_bundle(folder, args.mb)
        checked = median_ms(lambda: bundle_reader.read_bundle(folder), args.runs)
        with mock.patch.object(bundle_reader, "file_sha256",
                               lambda path: next(o["sha256"] for o in json.loads(
                                   (folder / "manifest.json").read_text())["outputs"] if o["name"] == path.name)):
            unchecked = median_ms(lambda: bundle_reader.read_bundle(folder), args.runs)
        hashing = median_ms(lambda: bundle_reader.file_sha256(folder / "model.onnx"), args.runs)
        loading = median_ms(lambda: load_runner(folder / "model.onnx"), max(3, args.runs // 3))
    size = f"{args.mb} MiB model"
    rows = [("read_bundle, files checked against the manifest (sha256)", size, f"{checked:.1f}"),
            ("read_bundle, same bundle without the check (baseline)", size, f"{unchecked:.1f}"),
            ("sha256 of the model file alone", size, f"{hashing:.1f}"),
            ("for scale: loading that model into ONNX Runtime (load_runner)", size, f"{loading:.1f}"),
            ("ratio checked / baseline", "", f"{checked / unchecked:.1f}x"),
            ("check throughput", "", f"{args.mb / (checked - unchecked) * 1000:.0f} MiB/s")]
    print(render_table(("what", "bundle", "median ms"), rows))


if __name__ == "__main__":
    main()
