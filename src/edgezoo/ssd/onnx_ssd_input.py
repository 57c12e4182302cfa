"""An ONNX detector's image input as TIDL wants it: a static 4-D tensor, with any in-graph preprocessing cut off.

- torchvision exports take `[3, H, W]` (the model takes a list of images): refused with the three-line batch-1
  wrapper that fixes it (BATCH1_WRAPPER, also in the README);
- NCHW and NHWC inputs are both taken (tf2onnx without --inputs-as-nchw writes NHWC);
- a preprocessing in the graph (torchvision's GeneralizedRCNNTransform: normalise, resize to the model size, pad)
  is cut off: the converted model takes what the first convolution reads. The cut is only made when that tensor is
  a per-channel affine map of the pixels at the input's own size (the in-graph resize is then the identity), which
  is MEASURED with ONNX Runtime on constant and random images; its mean and scale are what config.yaml records.
  A graph that resizes the image to another size is refused (export it with that input size).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import onnx_model
from edgezoo.graphs.onnx_values import GraphIndex
from edgezoo.ssd.onnx_ssd_probe import tail_model

BATCH1_WRAPPER = ('class Batch1(torch.nn.Module): def __init__(self, m): super().__init__(); self.m = m | '
                  'def forward(self, x): d = self.m(list(x))[0]; return d["boxes"], d["scores"], d["labels"] | '
                  'torch.onnx.export(Batch1(model).eval(), torch.rand(1, 3, H, W), "model.onnx", '
                  'input_names=["image"], output_names=["boxes", "scores", "labels"], dynamo=False)')
_LAYOUT_NOOPS = {"Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape"}


@dataclass
class InputCut:
    model: Any  # takes the (normalised) image tensor
    input: str
    layout: str  # "NCHW" | "NHWC" (of the converted model's input)
    size: tuple[int, int]  # (height, width)
    original_layout: str
    cut: str | None = None  # the tensor the new input replaces (None: the graph takes it as it is)
    affine: tuple[np.ndarray, np.ndarray] | None = None  # per channel: input value -> cut tensor = a * x + b
    notes: list[str] = field(default_factory=list)

    def pixels(self, mean: tuple[float, ...], scale: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, scale) from 0-255 pixels to the CONVERTED model's input, given the original's (mean, scale)."""
        if self.affine is None:
            return mean, scale
        a, b = self.affine
        sc = a * np.asarray(scale, np.float64)
        mc = np.asarray(mean, np.float64) - b / sc
        return tuple(float(v) for v in mc), tuple(float(v) for v in sc)

    def original_default(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The original's pixel convention implied by its own normalisation: [0, 1] input when the graph's mean is
        within [0, 1] (torchvision), 0-255 otherwise; None without an in-graph normalisation."""
        if self.affine is None:
            return None
        a, b = self.affine
        mean_in = -b / a
        if np.all((mean_in >= -1e-6) & (mean_in <= 1 + 1e-6)):
            return (0.0, 0.0, 0.0), (1 / 255,) * 3
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _dims(vi: Any) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim]


def image_input(model: Any, where: str) -> tuple[Any, str, tuple[int, int]]:
    """(input ValueInfo, layout, (height, width)) of the one image input; RecipeError with what to do otherwise."""

    inputs = onnx_model.graph_inputs(model)
    for inp in inputs:
        dims = _dims(inp)
        if len(dims) == 3 and dims[0] in (1, 3):
            raise RecipeError(f"{where}: input {inp.name!r} is {dims} -- an image without a batch dimension "
                              "(torchvision's export of a model that takes a list of images)",
                              hint="export it behind a batch-1 wrapper: " + BATCH1_WRAPPER)
    images = [i for i in inputs if len(_dims(i)) == 4]
    if len(images) != 1:
        raise RecipeError(f"{where}: {len(images)} 4-D image inputs ({', '.join(i.name for i in inputs)})",
                          hint="an SSD takes one image [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC)")
    inp = images[0]
    dims = _dims(inp)
    layout = "NHWC" if dims[3] in (1, 3) and dims[1] not in (1, 3) else "NCHW"
    if any(d is None for d in dims):
        shape = "1x3xHxW" if layout == "NCHW" else "1xHxWx3"
        raise RecipeError(f"{where}: input {inp.name!r} has no static shape ({dims})",
                          hint=f"give it one: --inputs {inp.name}:{shape}")
    size = (dims[2], dims[3]) if layout == "NCHW" else (dims[1], dims[2])
    return inp, layout, size  # type: ignore[return-value]


def _first_conv_input(model: Any, start: str) -> list[str]:
    """The tensor the first convolution reached from `start` reads, then the tensors before it through layout
    no-ops and zero pads (the deepest one that is still the image is where to cut)."""

    users: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    queue, seen = [start], set()
    conv = None
    while queue and conv is None:
        for node in users.get(queue.pop(0), []):
            if node.op_type == "Conv":
                conv = node
                break
            if id(node) not in seen:
                seen.add(id(node))
                queue.extend(node.output)
    if conv is None:
        return []
    g = GraphIndex(model)
    producers = onnx_model.producers(model)
    path = [conv.input[0]]
    while True:
        node = producers.get(path[-1])
        if node is None:
            return path
        if node.op_type == "Concat" and len([i for i in node.input if i]) == 1:
            path.append(node.input[0])
        elif node.op_type in _LAYOUT_NOOPS:
            path.append(node.input[0])
        elif node.op_type == "Pad" and len(node.input) > 1 and (pads := g.constant(node.input[1])) is not None \
                and not np.any(pads):
            path.append(node.input[0])
        else:
            return path


_SHAPE_PRESERVING = {"Cast", "Identity", "Mul", "Add", "Sub", "Div", "Neg", "Abs", "Relu", "Clip", "Floor"}


def _only_shape_read(model: Any, tensor: str) -> bool:
    """Whether every use of `tensor` reaches only Shape ops through elementwise ops that keep its shape."""
    users: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    queue, seen = [tensor], set()
    while queue:
        for node in users.get(queue.pop(), []):
            if node.op_type == "Shape" or id(node) in seen:
                continue
            if node.op_type not in _SHAPE_PRESERVING:
                return False
            seen.add(id(node))
            queue.extend(node.output)
    return True


def _run(model: Any, feed: Mapping[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    import onnxruntime as ort


    probe = onnx_model.cut(model, outputs)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        sess = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except onnx_model.ort_errors() as exc:  # e.g. an operator of a custom domain
        raise RecipeError(f"ONNX Runtime cannot load the model to read its input: "
                          f"{(str(exc).splitlines() or [type(exc).__name__])[0][:200]}",
                          hint="run 'edgezoo check' on it: the graph must hold standard ONNX operators only") from None
    return sess.run(outputs, dict(feed))


def prepare_input(model: Any, where: str) -> InputCut:
    """See the module docstring. `model`: shapes inferred, input static (after --inputs)."""
    import onnx


    inp, layout, size = image_input(model, where)
    path = _first_conv_input(model, inp.name)
    if not path:
        raise RecipeError(f"{where}: no convolution reads the image input {inp.name!r}", hint="not a detector graph")
    tensor = path[-1]
    # What lies between the input and the first convolution: nothing but layout ops -> the graph is taken as it is.
    producers = onnx_model.producers(model)
    chain, t = [], tensor
    while t != inp.name and t in producers:
        node = producers[t]
        chain.append(node.op_type)
        t = next((i for i in node.input if i), "")
    if t == inp.name and set(chain) <= {"Transpose", *_LAYOUT_NOOPS}:
        return InputCut(model, inp.name, layout, size, layout)
    dims = _dims(inp)
    dtype = np.uint8 if inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8 else np.float32
    top = 255.0 if dtype == np.uint8 else 1.0
    shape = tuple(d for d in dims)  # type: ignore[misc]
    channel_axis = 1 if layout == "NCHW" else 3
    # the deepest tensor of the path that is still a 4-D image (not a [3, H, W] slice of the batch)
    probed = dict(zip(path, _run(model, {inp.name: np.zeros(shape, dtype)}, path)))
    tensor = next((t for t in reversed(path) if probed[t].ndim == 4), path[0])
    values = []
    middle = 128.0 if dtype == np.uint8 else top / 2  # a uint8 input cannot hold 127.5
    for level in (0.0, top, middle):
        out = _run(model, {inp.name: np.full(shape, level, dtype)}, [tensor])[0]
        values.append(out)
    out_shape = values[0].shape
    if len(out_shape) != 4 or out_shape[0] != 1 or 3 not in (out_shape[1], out_shape[3]):
        raise RecipeError(f"{where}: the tensor the first convolution reads ({tensor}) is {list(out_shape)}, "
                          "not an image", hint="export the detector without its preprocessing")
    cut_nchw = out_shape[1] == 3 and out_shape[3] != 3
    cut_size = out_shape[2:] if cut_nchw else out_shape[1:3]
    if tuple(cut_size) != tuple(size):
        raise RecipeError(f"{where}: the graph resizes its {size[0]}x{size[1]} input to {cut_size[0]}x{cut_size[1]} "
                          "before the first convolution", hint=f"export it with a {cut_size[0]}x{cut_size[1]} input "
                                                               "(the resize is then the identity and is cut off)")
    axis = 1 if cut_nchw else 3
    zero, full, mid = (np.moveaxis(v, axis, -1).reshape(-1, 3).mean(axis=0).astype(np.float64) for v in values)
    a = (full - zero) / top
    b = zero
    rng = np.random.default_rng(0)
    image = (rng.uniform(0, 255, shape) if dtype == np.uint8 else rng.uniform(0, 1, shape)).astype(dtype)
    got = _run(model, {inp.name: image}, [tensor])[0]
    x = np.moveaxis(image.astype(np.float64), channel_axis, -1)
    want = x * a + b
    err = float(np.abs(np.moveaxis(got, axis, -1) - want).max())
    if np.any(np.abs(a) < 1e-12) or not np.allclose(zero + a * middle, mid, atol=1e-4, rtol=1e-4) or err > 1e-3:
        raise RecipeError(f"{where}: the preprocessing in the graph ({inp.name} -> {tensor}) is not a per-channel "
                          f"affine map of the pixels (off by {err:.3g})",
                          hint="export the detector from its normalised input (without the preprocessing)")
    # The converted model starts at the cut: the old input is gone (a Shape of it becomes a Shape of the new one,
    # which has the same dims in the same layout).
    vi = onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, list(out_shape))
    outputs = onnx_model.output_names(model)
    cut = tail_model(model, {tensor: vi}, outputs)
    still = [n for n in cut.graph.node if inp.name in n.input]
    if still:
        if not _only_shape_read(cut, inp.name):
            raise RecipeError(f"{where}: the graph reads its image input {inp.name!r} after the preprocessing too "
                              f"({', '.join(sorted({n.op_type for n in still}))})",
                              hint="export the detector from its normalised input")
        # Only the image's shape is read (a batch size, a clip window): the input becomes a constant of its shape.
        zeros = np.zeros(shape, dtype)
        cut.graph.initializer.append(onnx.numpy_helper.from_array(zeros, inp.name))
        kept = [i for i in cut.graph.input if i.name != inp.name]
        del cut.graph.input[:]
        cut.graph.input.extend(kept)
    # the outputs' types and shapes as before (tail_model keeps the type only)
    del cut.graph.output[:]
    cut.graph.output.extend(model.graph.output)
    cut = onnx_model.infer_shapes(cut)
    notes = [f"in-graph preprocessing cut off: the model takes {tensor!r} {list(out_shape)} (the first "
             f"convolution's input) = {', '.join(f'{ai:.6g} x + {bi:.6g}' for ai, bi in zip(a, b))} of "
             f"{inp.name!r} per channel (measured)"]
    return InputCut(cut, tensor, "NCHW" if cut_nchw else "NHWC", size, layout, tensor, (a, b), notes)
