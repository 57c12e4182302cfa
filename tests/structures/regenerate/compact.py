"""Turn what an exporter wrote into a compact structure folder (tests/structures/data/<name>/).

Weights (the kernels, biases and batch-norm parameters of convolutions and dense layers) are stripped: their shape
and dtype stay, their values go, and the test side refills them (seeded, calibrated). Every other constant — priors
and anchors, reshape targets, thresholds, class offsets, resize sizes — stays exactly as the exporter wrote it.
Graphs are stored xz-compressed; `structure.json` lists the files, the stripped tensors, the heads (for the refill)
and facts about the real export that the tests check the materialised files against.
"""

from __future__ import annotations

import json
import lzma
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
# A constant this large that is not a weight would bloat the structure: generation stops and names it. (The FPN
# 640's anchors, 51150 x 4 floats, are the largest structural constant kept.)
MAX_KEPT_BYTES = 1_000_000

ONNX_WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "BatchNormalization": (1, 2, 3, 4)}


def strip_onnx(model) -> dict[str, list]:
    """Empty the float32 weight initializers of `model` in place; returns {name: shape} of what was stripped."""
    from onnx import TensorProto, numpy_helper

    weights: set[str] = set()
    for node in model.graph.node:
        for i in ONNX_WEIGHT_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i]:
                weights.add(node.input[i])
        if node.op_type == "MatMul":
            weights.add(node.input[1])
    stripped: dict[str, list] = {}
    for init in model.graph.initializer:
        if init.name in weights and init.data_type == TensorProto.FLOAT:
            stripped[init.name] = list(init.dims)
            name, dims = init.name, list(init.dims)
            init.Clear()
            init.name = name
            init.dims.extend(dims)
            init.data_type = TensorProto.FLOAT
        else:
            size = numpy_helper.to_array(init).nbytes
            if size > MAX_KEPT_BYTES:
                raise ValueError(f"kept initializer {init.name} is {size} bytes: not a known weight input")
    return stripped


def onnx_facts(model) -> dict[str, Any]:
    """What the tests check a materialised ONNX model against: I/O, op counts (subgraphs included), opset."""
    ops: Counter = Counter()

    def walk(graph) -> None:
        for node in graph.node:
            ops[node.op_type] += 1
            for attr in node.attribute:
                if attr.g.node:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    def dims(vi) -> list:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]
    return {
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "inputs": {i.name: dims(i) for i in model.graph.input},
        "outputs": [o.name for o in model.graph.output],
        "ops": dict(sorted(ops.items())),
        "nodes": sum(ops.values()),
    }


def write_structure(name: str, files: dict[str, dict], manifest: dict[str, Any]) -> Path:
    """files: {user-facing relative path: {"bytes": b, "stripped": {...}} or {"text": str}} -> data/<name>/."""
    folder = DATA / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    entries = {}
    for rel, spec in files.items():
        if "text" in spec:
            stored = rel.replace("/", "__")
            (folder / stored).write_text(spec["text"])
            entries[rel] = {"stored": stored}
        else:
            stored = rel.replace("/", "__") + ".xz"
            (folder / stored).write_bytes(lzma.compress(spec["bytes"], preset=9 | lzma.PRESET_EXTREME))
            entries[rel] = {"stored": stored, "stripped": spec.get("stripped", {})}
            for key in ("kind", "weights_from"):
                if key in spec:
                    entries[rel][key] = spec[key]
    manifest = {"name": name, **manifest, "files": entries}
    (folder / "structure.json").write_text(dump_json(manifest))
    total = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{name}: {total / 1e3:.0f} kB in {folder}")
    return folder


def dump_json(data: Any) -> str:
    """Indented JSON with short lists (shapes, values) kept on one line, so a manifest reads and diffs well."""
    import re

    text = json.dumps(data, indent=1, default=_jsonable)
    flat = re.compile(r"\[\s*((?:-?[\w.\"+-]+,\s*)*-?[\w.\"+-]+)\s*\]")
    return flat.sub(lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text) + "\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))
