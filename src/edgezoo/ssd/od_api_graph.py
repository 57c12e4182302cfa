"""The parts of a TF Object Detection API SSD frozen graph, found by structure (never by assumed node names).

Users' exports name their heads after the box predictor they trained (`BoxPredictor_i/ClassPredictor`,
`WeightSharedConvolutionalBoxPredictor_i/ClassPredictor`, ...), so names are not trusted:
- heads: the two concats whose every value input is a conv output (through reshapes only); the box one is the one
  whose values reach an Exp (box decoding) before any other conv, the class one reaches the score converter
  (Sigmoid / Softmax) -- shapes cannot tell them apart when num_classes + 1 == 4;
- normalised input: what the first convolution reads (through Pad / Identity), i.e. the end of the preprocessing;
- the image input: the graph's one Placeholder;
- the anchor tensor: an [N, 4] float tensor that no placeholder feeds and that the decoding reads (None when the
  graph has none: anchors then come from the pipeline.config alone).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import base_name, tf_graph
from edgezoo.ssd.ssd_surgery import SsdHeads

_PASS_THROUGH = {"Reshape", "Identity", "Squeeze", "ExpandDims", "Transpose"}
_CONV = {"Conv2D", "DepthwiseConv2dNative"}
_HEAD_OPS = {"BiasAdd", "Add", "AddV2"} | _CONV
_PREPROCESS_PASS = {"Pad", "PadV2", "MirrorPad", "Identity"}


def _nodes(graph_def: Any) -> dict[str, Any]:
    return {n.name: n for n in graph_def.node}


def _data_inputs(node: Any) -> list[str]:
    return [base_name(i) for i in node.input if not i.startswith("^")]


def _consumers(graph_def: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in graph_def.node:
        for name in _data_inputs(node):
            out.setdefault(name, []).append(node)
    return out


def _head_of(name: str, nodes: dict[str, Any]) -> str | None:
    """The conv output a concat input comes from, through reshapes/identities (None when it is something else)."""
    seen = set()
    while name in nodes and name not in seen:
        seen.add(name)
        node = nodes[name]
        if node.op in _PASS_THROUGH:
            name = _data_inputs(node)[0]
            continue
        if node.op in _CONV:
            return name
        if node.op in _HEAD_OPS and any(nodes.get(i) is not None and nodes[i].op in _CONV for i in _data_inputs(node)):
            return name
        return None
    return None


def _reaches(start: str, consumers: dict[str, list[Any]], targets: Iterable[str], max_nodes: int = 2000) -> str | None:
    """The first op among `targets` met going forward from `start` (breadth first, never through a conv; the decoding
    and score conversion are a few ops after the concats, so a bounded search is enough)."""
    wanted = set(targets)
    queue, seen = deque([start]), {start}
    while queue and len(seen) < max_nodes:
        for node in consumers.get(queue.popleft(), []):
            if node.name in seen or node.op in _CONV:
                continue
            if node.op in wanted:
                return node.op
            seen.add(node.name)
            queue.append(node.name)
    return None


def find_heads(graph_def: Any, where: str = "graph") -> SsdHeads:
    """Box and class heads (conv outputs, by layer) and the concats they feed; RecipeError when there are none."""
    nodes = _nodes(graph_def)
    consumers = _consumers(graph_def)
    candidates: list[tuple[str, tuple[str, ...]]] = []
    for node in graph_def.node:
        if node.op not in ("ConcatV2", "Concat"):
            continue
        values = _data_inputs(node)
        values = values[:-1] if node.op == "ConcatV2" else values[1:]
        heads = [_head_of(v, nodes) for v in values]
        if values and all(heads):
            candidates.append((node.name, tuple(h for h in heads if h)))
    kinds = {name: _reaches(name, consumers, ("Exp", "Sigmoid", "Softmax")) for name, _ in candidates}
    box = [c for c in candidates if kinds[c[0]] == "Exp"]
    cls = [c for c in candidates if kinds[c[0]] in ("Sigmoid", "Softmax")]
    if len(box) != 1 or len(cls) > 1:
        raise RecipeError(f"{where}: no SSD box predictor found: expected one concat of conv outputs feeding the box "
                          f"decoding (Exp), found {len(box)}",
                          hint="this is not a TF Object Detection API SSD frozen graph (frozen_inference_graph.pb)")
    if not cls:  # IDENTITY score converter: the other concat of as many heads
        cls = [c for c in candidates if c is not box[0] and len(c[1]) == len(box[0][1])]
        if len(cls) != 1:
            raise RecipeError(f"{where}: cannot tell the class-score concat among {[c[0] for c in cls]}")
    (box_concat, box_heads), (class_concat, class_heads) = box[0], cls[0]
    if len(box_heads) != len(class_heads):
        raise RecipeError(f"{where}: {len(box_heads)} box heads ({box_concat}) but {len(class_heads)} class heads "
                          f"({class_concat})", hint="the box predictor is not an SSD's")
    return SsdHeads(box_heads, class_heads, box_concat, class_concat)


def image_input(graph_def: Any, where: str = "graph") -> str:
    found = [n.name for n in graph_def.node if n.op in ("Placeholder", "PlaceholderWithDefault")]
    if len(found) != 1:
        raise RecipeError(f"{where}: {len(found)} placeholders ({', '.join(found) or 'none'}); an OD API export has "
                          "one (image_tensor)", hint="export the detector with the OD API's exporter (input_type "
                                                     "image_tensor)")
    return found[0]


def normalized_input(graph_def: Any, where: str = "graph") -> str:
    """The tensor the first convolution reads (the preprocessed image), found from the image placeholder."""
    nodes = _nodes(graph_def)
    consumers = _consumers(graph_def)
    start = image_input(graph_def, where)
    queue, seen = deque([start]), {start}
    while queue:
        for node in consumers.get(queue.popleft(), []):
            if node.op in _CONV:
                name = _data_inputs(node)[0]
                while nodes[name].op in _PREPROCESS_PASS:
                    name = _data_inputs(nodes[name])[0]
                return name
            if node.name not in seen:
                seen.add(node.name)
                queue.append(node.name)
    raise RecipeError(f"{where}: no convolution reads the image input {start!r}", hint="not a detector graph")


def anchor_tensor(graph_def: Any, count: int, where: str = "graph") -> str | None:
    """The graph's own anchors: a float [count, 4] tensor independent of the input, read by the decoding."""
    consumers = _consumers(graph_def)
    fed: set[str] = set()
    queue = deque(n.name for n in graph_def.node if n.op in ("Placeholder", "PlaceholderWithDefault"))
    while queue:
        name = queue.popleft()
        if name in fed:
            continue
        fed.add(name)
        queue.extend(c.name for c in consumers.get(name, []))
    graph = tf_graph.import_graph(graph_def)
    for node in graph_def.node:
        if node.name in fed or node.op == "Const":
            continue
        op = graph.get_operation_by_name(node.name)
        if not op.outputs or op.outputs[0].dtype.name != "float32":
            continue
        shape = op.outputs[0].shape
        if shape.rank != 2 or shape.as_list() != [count, 4]:
            continue
        if _reaches_any(node.name, consumers, fed):
            return node.name
    return None


def _reaches_any(start: str, consumers: dict[str, list[Any]], names: set[str]) -> bool:
    """Whether any node in `names` is downstream of `start` (the anchors meet the box encodings in the decoding)."""
    queue, seen = deque([start]), {start}
    while queue:
        for node in consumers.get(queue.popleft(), []):
            if node.name in names:
                return True
            if node.name not in seen:
                seen.add(node.name)
                queue.append(node.name)
    return False
