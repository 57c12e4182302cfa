"""RUN.md of a TI package: the exact command lines that run a bundle in TI's edgeai-benchmark, on a PC and on the
device, with the dataset layout TI reads and what TI's number will be (docs/TI_CONFIG.md, "Running a bundle in TI's
benchmark").

The commands are TI's own scripts (edgeai-benchmark 11.2: run_benchmarks_pc.sh / run_benchmarks_evm.sh pass their
arguments after the SoC name to scripts/benchmark_modelzoo.py). `datasets_path` has no option of its own there, so it
goes through --settings_override; `--num_frames` makes TI evaluate as many images as edgezoo's eval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# TI's dataset folders under datasets_path (edgeai-benchmark datasets/__init__.py) and how MLPerf's layout maps there.
_DATASETS = {
    "coco": ("coco", "`$DATASETS/coco/annotations/instances_val2017.json` and `$DATASETS/coco/val2017/`: MLPerf's "
                     "(and edgezoo's) COCO folder as it is",
             "ln -s /path/to/coco \"$DATASETS/coco\""),
    "imagenet": ("imagenet", "`$DATASETS/imagenet/val/` (the images) and `$DATASETS/imagenet/val.txt` (MLPerf's "
                             "val_map.txt: `<file> <label>` lines). TI shuffles ImageNet (seed 1) and evaluates "
                             "`--num_frames` of them: give the number of images in the folder to evaluate them all",
                 "mkdir -p \"$DATASETS/imagenet\" && ln -s /path/to/imagenet \"$DATASETS/imagenet/val\" && "
                 "ln -s /path/to/imagenet/val_map.txt \"$DATASETS/imagenet/val.txt\""),
}


def run_instructions(config: Mapping[str, Any], index: str, soc: str = "AM68A") -> str:
    """RUN.md for a bundle whose config.yaml is `config`; `index` is the configs index's path in the bundle."""
    session = config["session"]
    model_id, runtime = session["model_id"], session["session_name"]
    category = str(config.get("input_dataset", "coco"))
    folder, layout, link = _DATASETS.get(category, (category, f"`$DATASETS/{category}/` as TI's dataset class "
                                                              "for it reads it", f"# lay out {category}"))
    override = f"\"{{'datasets_path': '$DATASETS', 'dataset_selection': ['{folder}']}}\""
    args = f"--configs_path \"$BUNDLE/{index}\" --models_path \"$BUNDLE\" \\\n    --settings_override {override}"
    threshold = (config.get("postprocess") or {}).get("detection_threshold")
    lines = [
        f"# Running {model_id} ({runtime}) in TI's edgeai-benchmark",
        "",
        f"TI's benchmark reads the configs index `{index}`, which lists this bundle's `config.yaml`; TI resolves the "
        "bare file names in it (the model, the meta-architecture prototxt) against the bundle folder, given as "
        "`--models_path`. `model_info.model_shortlist` is set, so TI's default settings (`model_shortlist: 100`) "
        "select the model.",
        "",
        "Set the two folders first (from the bundle folder: `export BUNDLE=$PWD`):",
        "",
        "```sh",
        "export BUNDLE=/path/to/this/bundle DATASETS=/path/to/datasets",
        link,
        "```",
        "",
        f"Dataset: {layout}.",
        "",
        "## On a PC: import (TIDL compiles the model) and accuracy",
        "",
        "In TI's edgeai-benchmark checkout, set up with its `setup_pc.sh` (TIDL's tools):",
        "",
        "```sh",
        f"./run_benchmarks_pc.sh {soc} {args} \\\n    --num_frames 1000",
        "```",
        "",
        f"The compiled model and TI's figures land in `./work_dirs/modelartifacts/{soc}/8bits/{model_id}_{runtime}_*/` "
        "(`result.yaml`); `./run_package_artifacts_for_evm.sh` packs them for the device.",
        "",
        "## On the device",
        "",
        f"Copy `./work_dirs/modelartifacts/{soc}/8bits/` from the PC to the same place in the device's "
        "edgeai-benchmark checkout, with this bundle and the dataset, then:",
        "",
        "```sh",
        f"./run_benchmarks_evm.sh {soc} {args} \\\n    --num_frames 1000",
        "```",
        "",
        "## What TI will report",
        "",
        "TI's pipeline differs from MLPerf's reference app (centre-crop rounding, resize on uint8, boxes clipped to the "
        "image, its detection threshold and scoring). `edgezoo eval $BUNDLE --dataset DIR --semantics both` shows the "
        "MLPerf figure and the figure TI's pipeline computes in float, side by side; edgezoo's docs/TI_CONFIG.md lists each "
        "difference.",
    ]
    if threshold is not None:
        lines += ["", f"`postprocess.detection_threshold: {threshold:g}` is the model's reference score threshold "
                      "(TI's settings would filter at 0.3)."]
    lines += ["", "Known problems on TI's side (edgeai-benchmark 11.2; they affect TI's own configs too):", "",
              "- the `tidl_offload` setting (`--tidl_offload False`) does not reach sessions built from config files, "
              "so these runs need TIDL's tools.",
              "- a session run without TIDL (vanilla ONNX Runtime / TFLite) stops after the last frame on missing "
              "TIDL performance statistics."]
    if runtime == "tflitert":
        lines += ["- configs with `session_name: tflitert` are built as ONNX Runtime sessions, so a .tflite model "
                  "does not load from a config file; the ONNX bundle of the same model does."]
    return "\n".join(lines) + "\n"
