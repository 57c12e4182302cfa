"""Shared, cached SSD-MobileNet artefacts for the SSD tests (built once per test process, REDUCED stand-in)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="edgezoo-ssd-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.lru_cache(maxsize=None)
def reduced_source() -> Path:
    """A folder like the unpacked tarball: frozen_inference_graph.pb + pipeline.config (REDUCED, seed 0)."""
    from edgezoo.graphs import tf_graph
    from edgezoo.standins import StandinVariant
    from edgezoo.standins.ssd_mobilenet import build_ssd_graph
    from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG

    folder = _ROOT / "source"
    folder.mkdir()
    tf_graph.write_graph_def(build_ssd_graph(StandinVariant.REDUCED, 0), folder / "frozen_inference_graph.pb")
    (folder / "pipeline.config").write_text(PIPELINE_CONFIG)
    return folder


def recipe_input(workdir: Path, params: dict | None = None, folder: Path | None = None, tolerances: dict | None = None):
    from edgezoo import zoo
    from edgezoo.recipes.base import RecipeInput
    from edgezoo.standins.ssd_mobilenet import CONFIG_MEMBER, GRAPH_MEMBER
    from edgezoo.zoo.schema import Target

    card = zoo.get_card("ssd-mobilenet-v1")
    folder = folder or reduced_source()
    archive = card.format("tf").file
    sources = {f"{archive}::{GRAPH_MEMBER}": folder / "frozen_inference_graph.pb",
               f"{archive}::{CONFIG_MEMBER}": folder / "pipeline.config"}
    merged = {**dict(card.recipe("tflite").params), **(params or {})}
    workdir.mkdir(parents=True, exist_ok=True)
    return RecipeInput(card=card, target=Target.TFLITE, sources=sources, params=merged, workdir=workdir,
                       standin=True, tolerances={**dict(card.tolerances), **(tolerances or {})})


@functools.lru_cache(maxsize=None)
def reduced_tflite_export():
    """The recipe's output on the REDUCED stand-in with default params (RecipeOutput)."""
    from edgezoo.recipes import get_recipe

    return get_recipe("ssd-tf-to-tflite-postprocess")(recipe_input(_ROOT / "tflite"))


@functools.lru_cache(maxsize=None)
def reduced_onnx() -> Path:
    """The published-style ONNX of the REDUCED stand-in graph (tf2onnx, opset 10)."""
    from edgezoo.standins.ssd_mobilenet import convert_graph_to_onnx

    dest = _ROOT / "ssd_mobilenet_v1_coco_2018_01_28.onnx"
    convert_graph_to_onnx(reduced_source() / "frozen_inference_graph.pb", dest)
    return dest


@functools.lru_cache(maxsize=None)
def planted_tflite() -> Path:
    """A TFLite from the REDUCED stand-in whose anchors put the interpolated box first (the classic bug)."""
    import numpy as np

    from edgezoo import zoo
    from edgezoo.detection.anchors import generate_anchors, ssd_feature_map_sizes
    from edgezoo.detection.pipeline_config import load_pipeline_config
    from edgezoo.recipes.ssd_mobilenet import build_tflite, resolve_options

    folder = reduced_source()
    cfg = load_pipeline_config(folder / "pipeline.config")
    anchors = generate_anchors(cfg.anchors, ssd_feature_map_sizes(300, 300))
    planted, start = anchors.center.copy(), 19 * 19 * 3
    for (h, w), spec in zip(anchors.feature_maps[1:], anchors.layers[1:]):
        n = h * w * spec.count
        block = planted[start:start + n].reshape(h * w, spec.count, 4)
        planted[start:start + n] = np.roll(block, 1, axis=1).reshape(-1, 4)
        start += n
    workdir = _ROOT / "planted"
    workdir.mkdir()
    model, _ = build_tflite(folder / "frozen_inference_graph.pb", cfg, resolve_options({}, cfg, []),
                            zoo.get_card("ssd-mobilenet-v1"), workdir, [], anchors_override=planted)
    return model


def onnx_recipe_input(workdir: Path, params: dict | None = None):
    from edgezoo import zoo
    from edgezoo.recipes.base import RecipeInput
    from edgezoo.zoo.schema import Target

    card = zoo.get_card("ssd-mobilenet-v1")
    base = recipe_input(workdir, {})
    sources = {**dict(base.sources), card.format("onnx").file: reduced_onnx()}
    return RecipeInput(card=card, target=Target.ONNX, sources=sources, params={**dict(card.recipe("onnx").params),
                                                                               **(params or {})},
                       workdir=workdir, standin=True, tolerances=dict(card.tolerances))


@functools.lru_cache(maxsize=None)
def reduced_onnx_export():
    from edgezoo.recipes import get_recipe

    return get_recipe("ssd-mobilenet-onnx-caffe-meta")(onnx_recipe_input(_ROOT / "onnx_route"))


@functools.lru_cache(maxsize=None)
def reduced_onnx_bundle() -> Path:
    """The ONNX route's output on the REDUCED stand-in published as a real bundle (model.onnx, meta_arch.prototxt,
    manifest.json saying standin), as `edgezoo export ssd-mobilenet --to onnx --standin --standin-variant reduced`
    writes it -- without fetching and converting again."""
    import copy

    from edgezoo.bundle.staging import BundleStaging
    from edgezoo.export.api import publish_bundle
    from edgezoo.standins import StandinVariant
    from edgezoo.zoo.schema import Target

    output = copy.deepcopy(reduced_onnx_export())  # publishing renames the report's model; keep the cached one
    final = _ROOT / "out" / "ssd-mobilenet-v1" / "onnx"
    manifest = {"recipe": {"name": "ssd-mobilenet-onnx-caffe-meta", "params": dict(output.params)}}
    with BundleStaging(final) as staging:
        result = publish_bundle(staging, final, "ssd-mobilenet-v1", Target.ONNX, output, {}, manifest, True,
                                StandinVariant.REDUCED, "")
    return result.bundle
