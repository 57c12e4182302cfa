"""Find an SSD's box and class heads in an ONNX graph by structure, never by name.

A head is a Conv whose output is reshaped to rows of 4 (box) or num_classes (class) and concatenated with the
other heads into the decoder. Two layouts are recognised, in the shapes exporters write them:

- INTERLEAVED (PyTorch MLPerf ResNet34-SSD, NVIDIA SSD300): Conv [N, A*R, H, W] -> Reshape [N, R, -1] ->
  Concat(axis=2); channel = row * A + anchor.
- SEPARATED (Caffe / TF style): Conv -> Transpose(0, 2, 3, 1) -> Reshape [N, -1, R] -> Concat(axis=1);
  channel = anchor * R + row. Also torchvision's Reshape [N, A, R, H, W] -> Transpose(0, 3, 4, 1, 2) -> Reshape
  [N, -1, R]; the TF OD API's 4-D Reshape [N, H*W*A, 1, R] -> Concat(axis=1) (-> Squeeze); and a head on a 1x1
  map whose identity Transpose an optimiser removed or turned into a Reshape (tf2onnx, onnxslim): any chain of
  Reshapes of a [N, A*R, 1, 1] conv is the same order.

Heads are returned in prior order (the order of the Concat inputs), named by the Conv's FIRST output tensor, which is
what TIDL's importer matches `box_input` / `class_input` against (not the node name). Names TIDL cannot take (512 or
more characters, empty, or written by more than one node) are renamed consistently across the graph and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_values import GraphIndex, upper_bound

MAX_NAME = 511  # TIDL's importer crashes on tensor names of 512 characters or more
_PASS_THROUGH = {"Identity", "Cast", "Dropout"}


@dataclass(frozen=True)
class Head:
    index: int
    box_tensor: str  # the box conv's first output tensor
    class_tensor: str
    box_node: str  # node names, for messages
    class_node: str
    boxes_per_location: int
    box_channels: int
    class_channels: int
    grid: tuple[int, int] | None  # (rows, columns) of the head output, when shapes are known


@dataclass(frozen=True)
class HeadSet:
    heads: tuple[Head, ...]
    num_classes: int
    layout: DataLayout
    box_concat: str  # output tensor of the Concat gathering the box heads
    class_concat: str
    renamed: Mapping[str, str] = field(default_factory=dict)  # old tensor name -> new name
    ranks: tuple[int, int] = (3, 3)  # of the box and class concats: 4 for the TF OD API's [N, priors, 1, 4]

    @property
    def box_inputs(self) -> list[str]:
        return [h.box_tensor for h in self.heads]

    @property
    def class_inputs(self) -> list[str]:
        return [h.class_tensor for h in self.heads]

    @property
    def num_priors(self) -> int | None:
        if any(h.grid is None for h in self.heads):
            return None
        return sum(h.boxes_per_location * h.grid[0] * h.grid[1] for h in self.heads)  # type: ignore[index]


@dataclass
class _Branch:
    conv: Any  # the Conv NodeProto
    transposed: bool | None  # channels moved last (SEPARATED); None: a 1x1 map, where both orders are the same
    rows: int | None  # the reshape's row size (4 or num_classes), when known


class _Graph:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.producers = onnx_model.producers(model)
        self.inits = {i.name: i for i in model.graph.initializer}
        self.shapes = {name: onnx_model.info(vi).shape for name, vi in onnx_model.value_infos(model).items()}
        self.index = GraphIndex(model)

    def shape(self, tensor: str) -> tuple[Any, ...] | None:
        return self.shapes.get(tensor) or None

    def const_ints(self, tensor: str) -> list[int | None] | None:
        """Value of a small int tensor: initializer, Constant, or a shape expression (PyTorch's Concat of
        Unsqueeze(Gather(Shape(x))) and constants; tf2onnx's Cast/Slice of Shape); None entries are unknown at
        export time."""
        found = self._const_ints(tensor)
        if found is not None:
            return found
        value = upper_bound(self.index, tensor)
        if value is None:
            return None
        return [int(v) if np.isfinite(v) else None for v in value]

    def _const_ints(self, tensor: str) -> list[int | None] | None:
        from onnx import numpy_helper

        if tensor in self.inits:
            return [int(v) for v in numpy_helper.to_array(self.inits[tensor]).reshape(-1)]
        node = self.producers.get(tensor)
        if node is None:
            return None
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return [int(v) for v in numpy_helper.to_array(attr.t).reshape(-1)]
                if attr.name in ("value_int", "value_ints"):
                    return [attr.i] if attr.name == "value_int" else list(attr.ints)
            return None
        if node.op_type in _PASS_THROUGH or node.op_type in ("Unsqueeze", "Squeeze"):
            return self._const_ints(node.input[0])
        if node.op_type == "Gather" and (src := self.producers.get(node.input[0])) is not None \
                and src.op_type == "Shape":
            idx = self._const_ints(node.input[1])
            return [None] * len(idx) if idx is not None else None
        if node.op_type == "Concat":
            parts = [self._const_ints(i) for i in node.input]
            if any(p is None for p in parts):
                return None
            return [v for p in parts for v in p]  # type: ignore[union-attr]
        return None


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _skip(g: _Graph, node: Any) -> Any:
    while node is not None and node.op_type in _PASS_THROUGH:
        node = g.producers.get(node.input[0])
    return node


def _rows(g: _Graph, node: Any, rank: int, row_axis: int) -> int | None:
    """The row size (4 or num_classes) a Reshape/Flatten writes, from its inferred shape or its target."""
    out_shape = g.shape(node.output[0])
    if out_shape and len(out_shape) == rank and isinstance(out_shape[row_axis], int) and out_shape[row_axis] > 0:
        return out_shape[row_axis]
    if node.op_type == "Reshape":
        target = g.const_ints(node.input[1])
        if target is not None and len(target) == rank and isinstance(target[row_axis], int) and target[row_axis] > 0:
            return target[row_axis]
    return None


def _one_by_one(g: _Graph, conv: Any) -> bool:
    shape = g.shape(conv.output[0])
    return bool(shape) and len(shape) == 4 and shape[2] == 1 and shape[3] == 1  # type: ignore[index]


def _branch(g: _Graph, tensor: str, concat_axis: int, rank: int) -> _Branch | None:
    """Walk back from a Concat input to the head Conv through the reshapes of the layouts in the module docstring."""
    node = _skip(g, g.producers.get(tensor))
    if node is None or node.op_type not in ("Reshape", "Flatten"):
        return None
    rows = _rows(g, node, rank, 1 if concat_axis == 2 else rank - 1)
    src = _skip(g, g.producers.get(node.input[0]))
    transposed: bool | None = False
    if src is not None and src.op_type == "Transpose" and list(_attr(src, "perm", [])) == [0, 2, 3, 1]:
        transposed = True
        src = _skip(g, g.producers.get(src.input[0]))
    elif src is not None and src.op_type == "Transpose" and list(_attr(src, "perm", [])) == [0, 3, 4, 1, 2]:
        # torchvision: view(N, A, R, H, W).permute(0, 3, 4, 1, 2): channel = anchor * R + row, moved last
        inner = _skip(g, g.producers.get(src.input[0]))
        if inner is None or inner.op_type != "Reshape":
            return None
        transposed = True
        src = _skip(g, g.producers.get(inner.input[0]))
    else:
        # a 1x1 map: the identity Transpose removed or written as a Reshape by an optimiser
        while src is not None and src.op_type in ("Reshape", "Flatten"):
            src = _skip(g, g.producers.get(src.input[0]))
        if src is not None and src.op_type == "Conv" and _one_by_one(g, src):
            transposed = None
        elif src is not None and src.op_type == "Conv" and node.op_type == "Reshape" and \
                _skip(g, g.producers.get(node.input[0])) is src:
            transposed = False
        else:
            return None
    if src is None or src.op_type != "Conv":
        return None
    return _Branch(src, transposed, rows)


def _concat_rank(g: _Graph, concat: Any) -> int:
    """The rank of a Concat's output: inferred, else its first input's reshape target (tf2onnx computes targets
    from Shape, which shape inference cannot always follow), else 3."""
    out_shape = g.shape(concat.output[0])
    if out_shape:
        return len(out_shape)
    src = _skip(g, g.producers.get(concat.input[0])) if concat.input else None
    if src is not None and src.op_type == "Reshape":
        target = g.const_ints(src.input[1])
        if target:
            return len(target)
    return 3


def _candidates(g: _Graph) -> list[tuple[Any, DataLayout, list[_Branch]]]:
    found = []
    for node in g.model.graph.node:
        if node.op_type != "Concat" or not node.input:
            continue
        rank = _concat_rank(g, node)
        axis = _attr(node, "axis", 0)
        axis = axis + rank if axis < 0 else axis
        if axis not in (1, 2) or (axis == 2 and rank != 3):
            continue
        branches = [_branch(g, t, axis, rank) for t in node.input]
        if any(b is None for b in branches):
            continue
        layout = DataLayout.INTERLEAVED if axis == 2 else DataLayout.SEPARATED
        if any(b.transposed is not None and b.transposed != (layout is DataLayout.SEPARATED)  # type: ignore[union-attr]
               for b in branches):
            continue
        rows = {b.rows for b in branches}  # type: ignore[union-attr]
        if len(rows) != 1 or None in rows:
            continue
        found.append((node, layout, branches))  # type: ignore[arg-type]
    return found


def _out_channels(g: _Graph, conv: Any) -> int:
    from onnx import numpy_helper

    if conv.input[1] in g.inits:
        return int(numpy_helper.to_array(g.inits[conv.input[1]]).shape[0])
    shape = g.shape(conv.input[1]) or g.shape(conv.output[0])
    dim = shape[0] if shape and conv.input[1] in g.shapes else (shape[1] if shape else None)
    if not isinstance(dim, int):
        raise RecipeError(f"head conv {conv.name or conv.output[0]!r}: cannot tell its output channels")
    return dim


def _toposorted(model: Any) -> Any:
    """A copy with nodes in dependency order (shape inference walks the node list once, in order)."""
    import onnx

    nodes = list(model.graph.node)
    writer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    waiting = [len({writer[i] for i in n.input if i in writer}) for n in nodes]
    users: dict[int, set[int]] = {}
    for k, n in enumerate(nodes):
        for d in {writer[i] for i in n.input if i in writer}:
            users.setdefault(d, set()).add(k)
    ready = [k for k, w in enumerate(waiting) if w == 0]
    order: list[int] = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for u in sorted(users.get(k, ())):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    if len(order) < len(nodes):  # a cycle: leave the rest as it was
        order += [k for k in range(len(nodes)) if k not in set(order)]
    if order == list(range(len(nodes))):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes[i] for i in order)
    return out


def downstream_ops(model: Any, tensor: str) -> set[str]:
    """Op types of every node reachable from `tensor`."""
    users: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    seen: set[str] = set()
    ops: set[str] = set()
    queue = [tensor]
    while queue:
        for node in users.get(queue.pop(), []):
            key = node.output[0] if node.output else node.name
            if key in seen:
                continue
            seen.add(key)
            ops.add(node.op_type)
            queue.extend(node.output)
    return ops


def find_heads(model: Any, num_classes: int | None = None, where: str = "model") -> HeadSet:
    """The SSD heads of `model` (an ONNX ModelProto), in prior order. Shapes are inferred on a copy; give the model
    a fixed input size first to get the head grids. RecipeError when no (or no unambiguous) head set is found."""
    g = _Graph(onnx_model.infer_shapes(_toposorted(model)))
    cands = _candidates(g)
    boxes = [c for c in cands if c[2][0].rows == 4]
    classes = [c for c in cands if (c[2][0].rows != 4 or num_classes == 4)
               and (num_classes is None or c[2][0].rows == num_classes)]
    pairs = [(b, c) for b in boxes for c in classes
             if b[0].output[0] != c[0].output[0] and len(b[2]) == len(c[2]) and b[1] == c[1]]
    if len(pairs) > 1 and num_classes == 4:
        # Rows of 4 both ways: the class concat is the one scored (Softmax/Sigmoid), never decoded with Exp.
        pairs = [(b, c) for b, c in pairs if {"Softmax", "Sigmoid"} & (ops := downstream_ops(g.model, c[0].output[0]))
                 and "Exp" not in ops]
    if not pairs:
        what = f"{num_classes} classes" if num_classes else "num_classes rows"
        raise RecipeError(
            f"{where}: no SSD heads found (convs reshaped to rows of 4 and of {what}, concatenated)",
            hint=f"found {len(boxes)} box and {len(classes)} class concatenations; "
                 "is this an SSD with the post-processing in the graph?"
                 + (" With 4 classes (3 + background) give num_classes=4" if len(boxes) > 1 and not classes
                    else ""))
    if len(pairs) > 1:
        raise RecipeError(f"{where}: {len(pairs)} candidate head sets; cannot tell which feeds the decoder",
                          hint="pass num_classes to narrow it down")
    (box_cat, layout, box_br), (cls_cat, _, cls_br) = pairs[0]
    n_cls = cls_br[0].rows
    heads = []
    for k, (b, c) in enumerate(zip(box_br, cls_br)):
        bch, cch = _out_channels(g, b.conv), _out_channels(g, c.conv)
        if bch % 4 or cch % n_cls or bch // 4 != cch // n_cls:
            raise RecipeError(f"{where}: head {k}: box conv has {bch} channels and class conv {cch}; expected "
                              f"A x 4 and A x {n_cls} for the same number of boxes A")
        shape = g.shape(b.conv.output[0])
        grid = (shape[2], shape[3]) if shape and len(shape) == 4 and all(
            isinstance(d, int) and d > 0 for d in shape[2:]) else None
        heads.append(Head(k, b.conv.output[0], c.conv.output[0], b.conv.name, c.conv.name, bch // 4, bch, cch,
                          grid))
    return HeadSet(tuple(heads), n_cls, layout, box_cat.output[0], cls_cat.output[0],
                   ranks=(_concat_rank(g, box_cat), _concat_rank(g, cls_cat)))


def fix_image_input(model: Any, height: int, width: int, batch: int = 1) -> Any:
    """A copy whose 4-D image input is [batch, C, height, width] (NCHW, symbolic dims replaced), value_info dropped
    so shape inference recomputes every shape from it."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for inp in onnx_model.graph_inputs(out):
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        for d, v in zip(dims, (batch, None, height, width)):
            if v is not None and (not d.HasField("dim_value") or d.dim_value <= 0):
                d.Clear()
                d.dim_value = v
    del out.graph.value_info[:]
    return out


def rename_tensors(model: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of `model` with tensors renamed everywhere they appear (node inputs/outputs, subgraphs, graph
    inputs/outputs, value_info)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)

    def fix(graph: Any) -> None:
        for node in graph.node:
            for i, name in enumerate(node.input):
                node.input[i] = mapping.get(name, name)
            for i, name in enumerate(node.output):
                node.output[i] = mapping.get(name, name)
            for attr in node.attribute:
                for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                    fix(sub)
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            vi.name = mapping.get(vi.name, vi.name)

    fix(out.graph)
    return out


def sanitize_head_names(model: Any, heads: HeadSet, max_len: int = MAX_NAME) -> tuple[Any, HeadSet]:
    """Rename head tensors TIDL cannot match (too long, empty, written by several nodes) to `ssd_box_<k>` /
    `ssd_class_<k>`; returns the (copied) model and the head set with the renames recorded."""
    first_outputs: dict[str, int] = {}
    all_names: set[str] = set()
    for node in model.graph.node:
        if node.output:
            first_outputs[node.output[0]] = first_outputs.get(node.output[0], 0) + 1
        all_names.update(node.output)
        all_names.add(node.name)
    mapping: dict[str, str] = {}
    new_heads = []
    for h in heads.heads:
        names = {}
        for kind, name in (("box", h.box_tensor), ("class", h.class_tensor)):
            if name and len(name) <= max_len and first_outputs.get(name, 0) == 1:
                names[kind] = name
                continue
            new = f"ssd_{kind}_{h.index}"
            while new in all_names:
                new += "_"
            all_names.add(new)
            mapping[name] = new
            names[kind] = new
        new_heads.append(replace(h, box_tensor=names["box"], class_tensor=names["class"]))
    if not mapping:
        return model, heads
    return rename_tensors(model, mapping), replace(heads, heads=tuple(new_heads), renamed=dict(mapping))


def describe(heads: HeadSet) -> list[Sequence[Any]]:
    """Table rows: index, box tensor, class tensor, boxes per location, grid."""
    return [[h.index, h.box_tensor, h.class_tensor, h.boxes_per_location,
             f"{h.grid[0]}x{h.grid[1]}" if h.grid else "?"] for h in heads.heads]


def head_notes(heads: HeadSet) -> list[str]:
    """What a report says about the heads: found how, and which names were changed for TIDL."""
    notes = [f"heads found by structure ({heads.layout.name}): " + "; ".join(
        f"{r[0]}: box {r[1]}, class {r[2]}, {r[3]} boxes, {r[4]}" for r in describe(heads))]
    return notes + [f"renamed head tensor {old[:40]!r}... -> {new!r} (TIDL cannot take it)"
                    for old, new in heads.renamed.items()]
