"""Split an SSD head whose boxes have several scales into one head per scale, so each gets its own prior_box_param.

One Caffe prior_box_param has one min_size square (plus at most one max_size square and the aspect-ratio boxes of
min_size's area). A graph head carrying boxes of two min sizes therefore cannot be described by one; split into
several heads (the box and class convs' output channels grouped per scale, each group its own Conv), every group is.
The original conv's output is rebuilt from the group convs (Concat, then a Gather back to the original channel order
when the groups are not contiguous), so the graph's own decoding -- and model.onnx's outputs -- are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.ssd.onnx_heads import Head, HeadSet

AREA_RTOL = 1e-3  # two boxes with areas this close are one scale


def scale_groups(sizes_px: np.ndarray) -> list[list[int]]:
    """Box indices per scale from one location's box sizes [A, 2] (w, h pixels). A scale is a square (its min_size)
    with the boxes of the same area; a square with no such boxes right after a smaller one is that one's max_size.
    One scale is returned whole (clamped boxes, whose area changed, stay prior_fit's business)."""
    a = len(sizes_px)
    area = sizes_px[:, 0] * sizes_px[:, 1]
    square = [j for j in range(a) if abs(sizes_px[j, 0] - sizes_px[j, 1]) < 1e-3]
    same_area = {j: [i for i in range(a) if i != j and i not in square and abs(area[i] - area[j]) <= AREA_RTOL * area[j]]
                 for j in square}
    groups: list[list[int]] = []
    for j in sorted(square, key=lambda s: area[s]):
        if not same_area[j] and groups and len([i for i in groups[-1] if i in square]) == 1 \
                and area[j] > area[groups[-1][0]]:
            groups[-1].insert(1, j)  # the previous scale's max_size square
            continue
        groups.append([j] + same_area[j])
    if len(groups) <= 1:
        return [list(range(a))]  # one scale: prior_fit fits it (clamped boxes and all)
    placed = {i for g in groups for i in g}
    if placed != set(range(a)):
        missing = sorted(set(range(a)) - placed)
        raise RecipeError(f"boxes {missing} ({sizes_px[missing].round(4).tolist()} px) are no aspect ratio of any "
                          "square box of their head, so the head cannot be split per scale",
                          hint="every box must share its area with a square box (Caffe's min_size) of its head")
    return [sorted(g) for g in groups]


def _split_conv(model: Any, tensor: str, groups: Sequence[Sequence[int]], anchors: int, rows: int,
                layout: DataLayout) -> list[str]:
    """Replace the conv producing `tensor` by one conv per box group + Concat (+ Gather) rebuilding `tensor`."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes = list(model.graph.node)
    at = next(k for k, n in enumerate(nodes) if tensor in n.output)
    conv = nodes[at]
    if conv.op_type != "Conv" or conv.input[1] not in inits:
        raise RecipeError(f"head {tensor!r}: splitting needs a Conv with initializer weights, not {conv.op_type}")
    w = numpy_helper.to_array(inits[conv.input[1]])
    b = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) > 2 and conv.input[2] else None

    def channel(anchor: int, row: int) -> int:
        return row * anchors + anchor if layout is DataLayout.INTERLEAVED else anchor * rows + row

    new, outs, order = [], [], []
    for g, group in enumerate(groups):
        n = len(group)
        # the group's channels in the layout of an n-anchor head
        chans = [0] * (n * rows)
        for a_new, a_old in enumerate(group):
            for r in range(rows):
                chans[r * n + a_new if layout is DataLayout.INTERLEAVED else a_new * rows + r] = channel(a_old, r)
        out = f"{tensor}_scale{g}"
        wn = f"{conv.input[1]}_scale{g}"
        model.graph.initializer.append(numpy_helper.from_array(w[chans], wn))
        inputs = [conv.input[0], wn]
        if b is not None:
            model.graph.initializer.append(numpy_helper.from_array(b[chans], f"{wn}_bias"))
            inputs.append(f"{wn}_bias")
        node = helper.make_node("Conv", inputs, [out], name=f"{conv.name or tensor}_scale{g}")
        node.attribute.extend(conv.attribute)
        new.append(node)
        outs.append(out)
        order += chans
    inverse = np.argsort(np.array(order)).astype(np.int64)
    if list(inverse) == list(range(len(order))):
        new.append(helper.make_node("Concat", outs, [tensor], axis=1, name=f"{tensor}_scales"))
    else:
        new.append(helper.make_node("Concat", outs, [f"{tensor}_scales"], axis=1, name=f"{tensor}_scales"))
        model.graph.initializer.append(numpy_helper.from_array(inverse, f"{tensor}_channel_order"))
        new.append(helper.make_node("Gather", [f"{tensor}_scales", f"{tensor}_channel_order"], [tensor], axis=1,
                                    name=f"{tensor}_channel_order"))
    del model.graph.node[:]
    model.graph.node.extend(nodes[:at] + new + nodes[at + 1:])
    return outs


def split_heads(model: Any, heads: HeadSet, groups: Sequence[Sequence[Sequence[int]]]) -> tuple[Any, HeadSet]:
    """A copy of `model` where head k is split into len(groups[k]) heads (groups of its box indices)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    new_heads: list[Head] = []
    for head, head_groups in zip(heads.heads, groups):
        if len(head_groups) == 1:
            new_heads.append(replace(head, index=len(new_heads)))
            continue
        a, classes = head.boxes_per_location, head.class_channels // head.boxes_per_location
        boxes = _split_conv(out, head.box_tensor, head_groups, a, 4, heads.layout)
        scores = _split_conv(out, head.class_tensor, head_groups, a, classes, heads.layout)
        for g, (bt, ct) in enumerate(zip(boxes, scores)):
            n = len(head_groups[g])
            new_heads.append(replace(head, index=len(new_heads), box_tensor=bt, class_tensor=ct,
                                     box_node=f"{head.box_node}_scale{g}", class_node=f"{head.class_node}_scale{g}",
                                     boxes_per_location=n, box_channels=4 * n, class_channels=classes * n))
    return out, replace(heads, heads=tuple(new_heads))
