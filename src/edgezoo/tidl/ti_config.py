"""Does a config.yaml load in TI's own tools as it is? Checked against TI's loader contract, kept as data.

The contract (ti_config_contract.yaml, its sources named in its header) lists what edgeai-benchmark's
`pipeline_param_to_config` indexes, the keyword parameters of the transforms it calls with `**section`, and the value
conventions of TI's model-zoo configs. `problems(config)` returns one line per violation ("preprocess: unexpected
keyword 'mean' (get_transform_base does not take it)"); an empty list means TI's loader takes the file as written.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

CONTRACT_FILE = "ti_config_contract.yaml"


@functools.cache
def contract() -> dict[str, Any]:
    """The loader contract (parsed once)."""
    import yaml

    return yaml.safe_load(resources.files("edgezoo.tidl").joinpath(CONTRACT_FILE).read_text(encoding="utf-8"))


def problems(config: Any, bundle: Path | None = None) -> list[str]:
    """Every way `config` breaks TI's loader contract; with `bundle`, files it names must be in that folder."""
    if not isinstance(config, Mapping):
        return ["config.yaml: not a mapping"]
    c = contract()
    found = [f"missing key {path} (the loader indexes it)" for path in c["loader"]["required_paths"]
             if not _has(config, path)]
    found += [f"top-level key {key!r} is not in TI's configs" for key in config
              if key not in c["loader"]["top_level_keys"]]
    task = config.get("task_type")
    if "task_type" in config and task not in c["loader"]["task_types"]:
        found.append(f"task_type {task!r} is not one TI's loader knows")
    found += _preprocess(config.get("preprocess"), c["preprocess"])
    found += _session(config.get("session"), c, bundle)
    found += _postprocess(task, config.get("postprocess"), c["postprocess"])
    found += _metric(config.get("metric"))
    found += _model_info(config.get("model_info"), c["model_info"]["percent_keys_end_with"])
    return found


def _has(mapping: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(mapping, Mapping) or part not in mapping:
            return False
        mapping = mapping[part]
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_size(value: Any) -> bool:
    """An int (short side) or [height, width] of positive ints, as ImageResize / ImageCenterCrop take them."""
    if _is_int(value):
        return value > 0
    return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
            and all(_is_int(v) and v > 0 for v in value))


def _keywords(section: Mapping[str, Any], where: str, required: Sequence[str], optional: Sequence[str],
              function: str) -> list[str]:
    found = [f"{where}: missing {key!r} ({function} requires it)" for key in required if key not in section]
    found += [f"{where}: unexpected keyword {key!r} ({function} does not take it)" for key in section
              if key not in required and key not in optional]
    return found


def _preprocess(pre: Any, spec: Mapping[str, Any]) -> list[str]:
    if not isinstance(pre, Mapping):
        return ["preprocess: not a mapping"] if pre is not None else []
    found = _keywords(pre, "preprocess", spec["required"], spec["optional"], "get_transform_base")
    for key in ("resize", "crop"):
        if key in pre and pre[key] is not None and not _is_size(pre[key]):
            found.append(f"preprocess.{key}: {pre[key]!r} is not a size (an int or [height, width])")
    if "backend" in pre and pre["backend"] not in spec["backends"]:
        found.append(f"preprocess.backend: {pre['backend']!r} is not one of {spec['backends']}")
    if "data_layout" in pre and pre["data_layout"] not in spec["data_layouts"]:
        found.append(f"preprocess.data_layout: {pre['data_layout']!r} is not one of {spec['data_layouts']}")
    if "interpolation" in pre and pre["interpolation"] is not None and not _is_int(pre["interpolation"]):
        found.append(f"preprocess.interpolation: {pre['interpolation']!r} is not an interpolation flag "
                     "(null or an int the backend takes)")
    return found


def _session(session: Any, c: Mapping[str, Any], bundle: Path | None) -> list[str]:
    if not isinstance(session, Mapping):
        return ["session: not a mapping"] if session is not None else []
    found = [f"session: missing {key!r}" for key in c["session"]["required"] if key not in session]
    name = session.get("session_name")
    if "session_name" in session and name not in c["loader"]["session_names"]:
        found.append(f"session.session_name: {name!r} is not one of {c['loader']['session_names']}")
    for key in ("input_mean", "input_scale"):
        value = session.get(key)
        if key in session and not (isinstance(value, Sequence) and not isinstance(value, str)
                                   and value and all(_is_number(v) for v in value)):
            found.append(f"session.{key}: {value!r} is not a list of numbers")
    files = [("session.model_path", session.get("model_path"))]
    options = session.get("runtime_options")
    if "runtime_options" in session and not isinstance(options, Mapping):
        found.append(f"session.runtime_options: {options!r} is not a mapping (the loader iterates its items)")
    elif isinstance(options, Mapping):
        found += [f"session.runtime_options: missing {path}" for path in c["loader"]["runtime_options_required_paths"]
                  if not _has(options, path)]
        found += [f"session.runtime_options.{key}: {options[key]!r} is not an int (the loader takes min() of it)"
                  for key in c["loader"]["runtime_options_numeric"] if key in options and not _is_int(options[key])]
        files += [(f"session.runtime_options.{key}", options[key]) for key in c["loader"]["runtime_options_files"]
                  if key in options]
    for where, name in files:
        if name is None:
            continue
        if not isinstance(name, str) or Path(name).name != name:
            found.append(f"{where}: {name!r} is not a file name in the bundle")
        elif bundle is not None and not (Path(bundle) / name).is_file():
            found.append(f"{where}: {name!r} is not in the bundle")
    return found


def _postprocess(task: Any, post: Any, spec: Mapping[str, Any]) -> list[str]:
    if not isinstance(post, Mapping):
        return ["postprocess: not a mapping"] if post is not None else []
    allowed = spec.get(task)
    if allowed is None:
        return []
    found = _keywords(post, "postprocess", [], allowed["optional"], f"the {task} post-processing")
    formatter = post.get("formatter")
    if formatter is None:
        return found
    name = formatter if isinstance(formatter, str) else None
    kwargs: dict[str, Any] = {}
    if isinstance(formatter, Mapping):
        kwargs = dict(formatter)
        name = kwargs.pop("name", kwargs.pop("type", None))
    if name not in spec["formatters"]:
        found.append(f"postprocess.formatter: {name!r} is not one of TI's formatters")
    else:
        found += [f"postprocess.formatter: {name} does not take {key!r}" for key in kwargs
                  if key not in spec["formatters"][name]]
    return found


def _metric(metric: Any) -> list[str]:
    if not isinstance(metric, Mapping) or "label_offset_pred" not in metric:
        return []
    offset = metric["label_offset_pred"]
    if _is_int(offset):
        return []
    if isinstance(offset, Mapping) and offset and all(_is_int(k) and _is_int(v) for k, v in offset.items()):
        return []
    if isinstance(offset, Sequence) and not isinstance(offset, str) and all(_is_int(v) for v in offset):
        return []
    return [f"metric.label_offset_pred: {offset!r} is not an int, a list of ints or an int -> int mapping"]


def _model_info(info: Any, percent_suffix: str) -> list[str]:
    reference = info.get("metric_reference") if isinstance(info, Mapping) else None
    if not isinstance(reference, Mapping):
        return []
    found = []
    for key, value in reference.items():
        if str(key).endswith(percent_suffix) and (not _is_number(value) or 0 <= value <= 1):
            found.append(f"model_info.metric_reference.{key}: {value!r} is not a percentage "
                         "(a fraction under a percent key?)")
    return found
