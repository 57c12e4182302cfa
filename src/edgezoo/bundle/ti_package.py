"""`export --ti-package`: the bundle also in the folder/tarball layout of TI's model-zoo artifacts.

TI's packages (edgeai-benchmark interfaces/run_package.py) hold one run folder per model, also as <run>.tar.gz with
the folder's contents at the top:

    <run>/param.yaml      the config, with session.model_path = model/<file>, model_folder = model,
                          artifacts_folder = artifacts, run_dir = <run>
    <run>/model/          the model and its meta-architecture prototxt
    <run>/artifacts/      TIDL's compiled artifacts (empty here: TI's import tools fill it; edgezoo cannot run them)

edgeai-gst-apps and edgeai-benchmark find a model by that layout. Beside the run folder:

    configs.yaml          TI's configs index listing the bundle's config.yaml: edgeai-benchmark resolves a config's
                          bare file names (model.onnx, meta_arch.prototxt) against the config's folder only for
                          configs listed in an index (relative to --models_path = the bundle folder)
    RUN.md                TI's exact command lines: import + accuracy on a PC, inference on the device

The package is written inside the bundle's staging folder (<bundle>/ti_package/), so it is published atomically with
the bundle or not at all.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.bundle.staging import describe_file
from edgezoo.tidl.ti_run import run_instructions

PACKAGE_DIR = "ti_package"
MODEL_FOLDER = "model"
ARTIFACTS_FOLDER = "artifacts"
PARAM_FILE = "param.yaml"
CONFIGS_INDEX = "configs.yaml"
RUN_FILE = "RUN.md"
_META_KEY = "object_detection:meta_layers_names_list"


def run_name(config: Mapping[str, Any]) -> str:
    """TI's run folders start with <model id>_<session name> (TI reads the artifact id from those two parts)."""
    session = config["session"]
    return f"{session['model_id']}_{session['session_name']}"


def param_yaml(config: Mapping[str, Any]) -> dict[str, Any]:
    """config.yaml's content with the paths a package uses (relative to the run folder)."""
    param = copy.deepcopy(dict(config))
    session = param["session"]
    session.update(run_dir=run_name(config), model_folder=MODEL_FOLDER, artifacts_folder=ARTIFACTS_FOLDER,
                   model_path=f"{MODEL_FOLDER}/{session['model_path']}")
    options = session.get("runtime_options") or {}
    if isinstance(options.get(_META_KEY), str):
        options[_META_KEY] = f"{MODEL_FOLDER}/{options[_META_KEY]}"
    return param


def configs_index(config: Mapping[str, Any], config_file: str = "config.yaml") -> dict[str, Any]:
    """TI's configs index (edgeai-modelzoo models/configs.yaml's form): model id -> config, relative to
    --models_path. TI names the run after the key, so the key is the model id."""
    return {"configs": {str(config["session"]["model_id"]): config_file}}


def write_package(staging: Any, config: Mapping[str, Any], model_files: Sequence[str], header: str = "") -> list[Any]:
    """Write <staging>/ti_package/<run>/ and <run>.tar.gz from files already staged, and beside them the configs
    index and RUN.md; their BundleFiles (tarball last).

    `staging` is the bundle's BundleStaging: param.yaml is formatted like the bundle's other YAML files.
    """
    import tarfile

    name = run_name(config)
    root = Path(staging.dir) / PACKAGE_DIR
    run = root / name
    (run / MODEL_FOLDER).mkdir(parents=True)
    (run / ARTIFACTS_FOLDER).mkdir()
    written = [staging.add_yaml(f"{PACKAGE_DIR}/{name}/{PARAM_FILE}", param_yaml(config), header=header)]
    for file in model_files:
        shutil.copyfile(Path(staging.dir) / file, run / MODEL_FOLDER / file)
        written.append(describe_file(run / MODEL_FOLDER / file, f"{PACKAGE_DIR}/{name}/{MODEL_FOLDER}/{file}"))
    tarball = root / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for member in (PARAM_FILE, MODEL_FOLDER, ARTIFACTS_FOLDER):  # the run folder's contents at the top, as TI's
            tar.add(run / member, arcname=member)
    written.insert(0, staging.add_yaml(f"{PACKAGE_DIR}/{CONFIGS_INDEX}", configs_index(config), header=header))
    (root / RUN_FILE).write_text(run_instructions(config, f"{PACKAGE_DIR}/{CONFIGS_INDEX}"), encoding="utf-8")
    written.insert(1, describe_file(root / RUN_FILE, f"{PACKAGE_DIR}/{RUN_FILE}"))
    written.append(describe_file(tarball, f"{PACKAGE_DIR}/{name}.tar.gz"))
    return written
