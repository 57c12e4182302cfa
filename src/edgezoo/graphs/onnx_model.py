"""ONNX models: load with clean errors, list names, fix the batch dimension, infer shapes, cut outputs, add outputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.core.errors import ModelFileError, tensor_not_found
from edgezoo.graphs import TensorInfo, corrupt, ensure_readable

KIND = "ONNX model (.onnx)"


def _onnx() -> Any:
    import onnx  # lazy

    return onnx


def load(path: Path, *, check: bool = True) -> Any:
    """onnx.load + the structural checker; ModelFileError naming the file when it is truncated or corrupt."""
    from google.protobuf.message import DecodeError

    onnx = _onnx()
    path = Path(path)
    data = ensure_readable(path, KIND)
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise corrupt(path, KIND, str(exc)) from None
    if not model.graph.node and not model.graph.output:
        raise corrupt(path, KIND, "no graph")
    _load_external_data(model, path)
    if check:
        try:
            onnx.checker.check_model(model)
        except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
            raise corrupt(path, KIND, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return model


def _load_external_data(model: Any, path: Path) -> None:
    """Weights kept beside the model (ONNX external data, for models over 2 GB or saved that way) read into it,
    from files inside the model's own folder only; ModelFileError naming the tensor and file otherwise."""
    from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

    onnx = _onnx()
    tensors = [t for t in _all_tensors(model) if uses_external_data(t)]
    if not tensors:
        return
    folder = path.parent.resolve()
    hint = "an ONNX model with external data needs its data files beside it: copy the model's whole folder"
    for tensor in tensors:
        location = ExternalDataInfo(tensor).location
        relative = Path(location)
        target = (folder / relative).resolve()
        if not location or relative.is_absolute() or ".." in relative.parts or not target.is_relative_to(folder):
            raise ModelFileError(f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, outside the model's "
                                 f"folder: refused", hint="external data must be a file beside the model")
        if not target.is_file():
            raise ModelFileError(f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, which is not a "
                                 f"file in {path.parent}", hint=hint)
    try:
        load_external_data_for_model(model, str(folder))
    except (OSError, ValueError, RuntimeError, onnx.checker.ValidationError) as exc:
        raise ModelFileError(f"{path}: its external data cannot be read ({' '.join(str(exc).split())[:200]})",
                             hint=hint) from None


def _all_tensors(model: Any) -> Iterable[Any]:
    """Initializers and tensor attributes of every graph and subgraph (where external data can live)."""
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)


def ort_errors() -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises for a model it cannot load or run: its own exception classes (Fail, InvalidGraph,
    NotImplemented, ... derive from Exception, not RuntimeError) besides RuntimeError and ValueError."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state  # lazy: ORT is heavy

    own = tuple(kind for kind in vars(state).values() if isinstance(kind, type) and issubclass(kind, Exception))
    return (RuntimeError, ValueError, *own)


def save(model: Any, dest: Path) -> Path:
    dest = Path(dest)
    dest.write_bytes(model.SerializeToString())
    return dest


def opset(model: Any) -> int:
    """The default-domain opset the model imports (0 when absent)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def initializer_names(model: Any) -> set[str]:
    return {i.name for i in model.graph.initializer}


def graph_inputs(model: Any) -> list[Any]:
    """The real inputs (older exporters also list the initializers as inputs)."""
    inits = initializer_names(model)
    return [i for i in model.graph.input if i.name not in inits]


def input_names(model: Any) -> list[str]:
    return [i.name for i in graph_inputs(model)]


def output_names(model: Any) -> list[str]:
    return [o.name for o in model.graph.output]


def tensor_names(model: Any) -> list[str]:
    """Every tensor name in the main graph: inputs, node outputs, outputs (initializers left out)."""
    names = input_names(model)
    for node in model.graph.node:
        names += [o for o in node.output if o]
    return list(dict.fromkeys(names + output_names(model)))


def resolve(model: Any, name: str, where: str, what: str = "tensor") -> str:
    """The graph's spelling of `name` ('x' finds 'x:0' as tf2onnx writes it); TensorNameError with close names."""
    names = tensor_names(model)
    known = set(names)
    for candidate in (name, f"{name}:0"):
        if candidate in known:
            return candidate
    raise tensor_not_found(name, names, where, what)


def _dtype_name(elem_type: int) -> str:
    import onnx

    if not elem_type:
        return "unknown"
    return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def _shape(value_info: Any) -> tuple[int | str | None, ...]:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return ()
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def info(value_info: Any) -> TensorInfo:
    return TensorInfo(value_info.name, _shape(value_info), _dtype_name(value_info.type.tensor_type.elem_type))


def infer_shapes(model: Any) -> Any:
    """Shape inference that never fails the caller: unknown shapes stay unknown."""
    onnx = _onnx()
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError):
        return model


def value_infos(model: Any) -> dict[str, Any]:
    """name -> ValueInfoProto for everything whose type is known (inputs, outputs, value_info, initializers)."""
    onnx = _onnx()
    out = {v.name: v for v in model.graph.value_info}
    out.update({v.name: v for v in model.graph.input})
    out.update({v.name: v for v in model.graph.output})
    for init in model.graph.initializer:
        out.setdefault(init.name, onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return out


def fix_batch(model: Any, batch: int = 1) -> Any:
    """Set the first dimension of every input to `batch` (wherever its symbol appears), then re-infer shapes.

    tf2onnx writes a symbolic batch such as 'unk__616'; TIDL needs static shapes. Intermediate value_info is dropped
    and recomputed so no stale symbolic shape survives.
    """
    onnx = _onnx()
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    symbols: set[str] = set()
    for inp in graph_inputs(fixed):
        dims = inp.type.tensor_type.shape.dim
        if not dims:
            continue
        first = dims[0]
        if first.HasField("dim_param"):
            symbols.add(first.dim_param)
        if not first.HasField("dim_value") or first.dim_value <= 0:
            first.Clear()
            first.dim_value = batch
    for vi in fixed.graph.output:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in symbols:
                d.Clear()
                d.dim_value = batch
    del fixed.graph.value_info[:]
    return infer_shapes(fixed)


def fix_input_shapes(model: Any, shapes: Mapping[str, Sequence[int]]) -> Any:
    """Every named input (':0' optional) gets the given static shape (TIDL needs static shapes), shapes re-inferred;
    ModelFileError when a rank differs."""
    onnx = _onnx()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for inp in graph_inputs(out):
        shape = shapes.get(inp.name)
        shape = shapes.get(inp.name.removesuffix(":0")) if shape is None else shape
        if shape is None:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ModelFileError(f"input {inp.name} has rank {len(dims)}, --inputs gives {list(shape)}")
        for d, v in zip(dims, shape):
            d.Clear()
            d.dim_value = int(v)
    del out.graph.value_info[:]
    return infer_shapes(out)


def producers(model: Any) -> dict[str, Any]:
    """tensor name -> the node that writes it."""
    return {o: n for n in model.graph.node for o in n.output if o}


def _subgraph_inputs(node: Any) -> set[str]:
    """Outer-scope names read by a node's subgraphs (If/Loop/Scan bodies)."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for g in graphs:
            local = {i.name for i in g.input} | {i.name for i in g.initializer}
            for n in g.node:
                local.update(n.output)
            for n in g.node:
                names.update(i for i in n.input if i and i not in local)
                names |= _subgraph_inputs(n) - local
    return names


def needed_nodes(model: Any, outputs: Sequence[str], given: Iterable[str] = ()) -> tuple[list[int], set[str]]:
    """(indices of the main-graph nodes that `outputs` need, in graph order; every tensor name read on the way),
    when the `given` tensors are fed rather than computed. Nodes with subgraphs (If, Loop) count what their bodies
    read from outside."""
    stop = set(given)
    prod = producers(model)
    index = {id(n): k for k, n in enumerate(model.graph.node)}
    keep: set[int] = set()
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = None if name in stop else prod.get(name)
        if node is None:
            continue
        k = index[id(node)]
        if k not in keep:
            keep.add(k)
            stack += [i for i in node.input if i]
            stack += sorted(_subgraph_inputs(node))
    return sorted(keep), seen


def cut(model: Any, outputs: Sequence[str], where: str = "model") -> Any:
    """A model whose outputs are exactly `outputs` (tensor names), with everything they do not need removed.

    Output types/shapes come from shape inference; `where` names the model in errors.
    """
    onnx = _onnx()
    names = [resolve(model, o, where, "output") for o in outputs]
    inferred = infer_shapes(model)
    known = value_infos(inferred)
    keep, seen = needed_nodes(inferred, names)
    graph = onnx.GraphProto()
    graph.name = inferred.graph.name
    graph.node.extend(inferred.graph.node[k] for k in keep)
    graph.input.extend(i for i in inferred.graph.input if i.name in seen)
    graph.initializer.extend(i for i in inferred.graph.initializer if i.name in seen)
    graph.sparse_initializer.extend(i for i in inferred.graph.sparse_initializer if i.values.name in seen)
    for name in names:
        graph.output.append(known[name] if name in known else onnx.helper.make_empty_tensor_value_info(name))
    graph.value_info.extend(v for v in inferred.graph.value_info if v.name in seen and v.name not in names)
    out = onnx.ModelProto()
    out.CopyFrom(inferred)
    out.graph.CopyFrom(graph)
    return out


def add_outputs(model: Any, names: Iterable[str], where: str = "model") -> Any:
    """A copy of `model` that also outputs the named intermediate tensors (for runners asked for them)."""
    onnx = _onnx()
    wanted = [resolve(model, n, where, "tensor") for n in names]
    present = set(output_names(model))
    extra = [n for n in dict.fromkeys(wanted) if n not in present]
    if not extra:
        return model
    known = value_infos(infer_shapes(model))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for name in extra:
        if name in known and known[name].type.tensor_type.elem_type:
            vi = onnx.ValueInfoProto()
            vi.name = name
            vi.type.tensor_type.elem_type = known[name].type.tensor_type.elem_type
            out.graph.output.append(vi)  # type only: a stale shape would make the runtime complain
        else:
            raise ModelFileError(f"{where}: cannot add {name!r} as an output: its type is unknown",
                                 hint="run shape inference or fix the batch dimension first")
    return out
