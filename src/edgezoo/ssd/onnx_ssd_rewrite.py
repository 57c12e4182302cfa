"""Rewrite an ONNX SSD's decoding whose priors and clipping were read (ssd.onnx_ssd_decode): its prior tensors
replaced by TIDL's priors (and measured again to prove the decoding uses them), or its clip to the image before NMS
bypassed (what parity of the conversion alone compares against: TIDL's detection layer does not clip).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_values import GraphIndex
from edgezoo.ssd.onnx_heads import HeadSet
from edgezoo.ssd.onnx_ssd_decode import GraphDecode
from edgezoo.ssd.onnx_ssd_measure import measure


def replace_priors(model: Any, decode: GraphDecode, priors: np.ndarray, heads: HeadSet | None = None) -> Any:
    """A copy of `model` whose decoding uses `priors` ([N, 4] cx, cy, w, h normalised, same order): every per-prior
    tensor the decoding reads is rewritten from them. With `heads`, the decoding is measured again and must give
    exactly `priors` (RecipeError otherwise)."""
    import onnx
    from onnx import numpy_helper


    if decode.unexplained:
        raise RecipeError(f"cannot rewrite the graph's priors: {', '.join(decode.unexplained[:3])} hold per-prior "
                          "values the decoding reads that are not derived from its priors",
                          hint="the prior constants of this decoding are not recognised")
    units = np.array([decode.units[0], decode.units[1], decode.units[0], decode.units[1]])
    graph_priors = np.asarray(priors, np.float64) * units
    out = onnx.ModelProto()
    out.CopyFrom(model)
    renamed: dict[str, str] = {}
    for t in decode.prior_tensors:
        value = t.value(graph_priors)
        if t.computed:
            new = f"{t.name}__priors"
            dtype = np.float32
            out.graph.initializer.append(numpy_helper.from_array(value.astype(dtype), new))
            renamed[t.name] = new
            continue
        done = False
        for init in out.graph.initializer:
            if init.name == t.name:
                init.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(init).dtype), t.name))
                done = True
        for node in out.graph.node:
            if node.op_type == "Constant" and node.output and node.output[0] == t.name:
                for attr in node.attribute:
                    if attr.name == "value":
                        dtype = numpy_helper.to_array(attr.t).dtype
                        attr.t.CopyFrom(numpy_helper.from_array(value.astype(dtype), t.name))
                        done = True
        if not done:
            raise RecipeError(f"prior constant {t.name!r} vanished from the graph")
    if renamed:
        for node in out.graph.node:
            node.input[:] = [renamed.get(i, i) for i in node.input]
        out = onnx_model.cut(out, onnx_model.output_names(out))
    if heads is not None:
        image = decode.probe.get("image", (1, 1))
        again = measure(onnx_model.infer_shapes(out), heads, image, "the rewritten model")
        worst = float(np.abs(again.priors - priors).max())
        if worst > 1e-5:
            raise RecipeError(f"rewriting the graph's priors did not take: the decoding still differs by {worst:.3g}",
                              hint="the prior tensors of this decoding are not all recognised")
    return out


_CLIPS = {"Clip", "Min", "Max"}


def without_clipping(model: Any, decode: GraphDecode) -> Any | None:
    """A copy of `model` whose decoded boxes reach NonMaxSuppression unclipped (the Clip / Min / Max against constants
    between the decoded boxes and the selection bypassed), or None when the graph does not clip them. TIDL's detection
    layer does not clip before NMS: against this variant, parity measures the conversion alone."""
    import onnx

    g = GraphIndex(model)
    clips = []
    for node in g.downstream([decode.decoded]):
        if g.owner.get(id(node)) is not None or node.op_type in ("NonMaxSuppression", "If", "Loop", "TopK"):
            continue
        if node.op_type in _CLIPS and node.input:
            others = [i for i in node.input[1:] if i]
            if others and all(g.constant(i) is not None for i in others):
                clips.append(node)
    if not clips:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    bypass = {n.output[0]: n.input[0] for n in clips}
    for node in out.graph.node:
        node.input[:] = [_through(bypass, i) for i in node.input]
    for graph in list(_subgraphs(out.graph)):
        for node in graph.node:
            node.input[:] = [_through(bypass, i) for i in node.input]
    return out


def _through(bypass: dict[str, str], name: str) -> str:
    while name in bypass:
        name = bypass[name]
    return name


def _subgraphs(graph: Any) -> Any:
    for node in graph.node:
        for attr in node.attribute:
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                yield sub
                yield from _subgraphs(sub)
