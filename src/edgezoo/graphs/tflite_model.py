"""TFLite models: load the LiteRT interpreter with clean errors, describe inputs/outputs, list operators.

Operators are read from the flatbuffer with the schema module that ships in ai-edge-litert (the interpreter only
exposes op names, not their options such as strides or axes, which the TIDL check needs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgezoo.core.errors import ModelFileError
from edgezoo.graphs import TensorInfo, corrupt, ensure_readable
from edgezoo.core.native_logs import quiet_native_logs
from edgezoo.graphs.tf_op_policy import ALLOWED_OPS, UnsafeGraphError

KIND = "TFLite model (.tflite)"
_IDENTIFIER = b"TFL3"


def _check_bytes(path: Path) -> bytes:
    data = ensure_readable(path, KIND)
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise corrupt(path, KIND, "no TFL3 flatbuffer identifier")
    return data


def load_interpreter(path: Path, *, num_threads: int | None = None, default_delegates: bool = True) -> Any:
    """An allocated ai_edge_litert Interpreter; ModelFileError naming the file when it is truncated or corrupt.

    `default_delegates=False` skips XNNPACK (and its start-up log line) when the interpreter only validates a file.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # lazy

    path = Path(path)
    data = _check_bytes(path)
    _check_flex_ops(path, data)
    resolver = OpResolverType.AUTO if default_delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(model_content=data, num_threads=num_threads,
                                  experimental_op_resolver_type=resolver)
        with quiet_native_logs():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" notice
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise corrupt(path, KIND, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return interpreter


def _check_flex_ops(path: Path, data: bytes) -> None:
    """A .tflite may carry TF ops (Flex, custom codes 'Flex<TF op>'), file I/O included: the TF allow-list applies
    (UnsafeGraphError naming the op); allowed ones are refused plainly, LiteRT here has no Flex delegate."""
    try:
        model = _schema().Model.GetRootAsModel(data, 0)
        codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    except Exception:  # noqa: BLE001 -- not a flatbuffer: the interpreter's own error names the problem
        return
    flex = [c.decode("utf-8", "replace")[4:] for c in codes if c and c.startswith(b"Flex")]
    if not flex:
        return
    unsafe = next((op for op in flex if op not in ALLOWED_OPS), None)
    if unsafe is not None:
        raise UnsafeGraphError(f"{path}: the model holds the TF op {unsafe!r} (a Flex op), which a converted model "
                               "never holds; edgezoo runs no model with file, I/O or other side-effect ops",
                               hint="convert the inference graph alone, with TFLite builtin ops")
    raise ModelFileError(f"{path}: the model holds TF ops (Flex: {', '.join(sorted(set(flex))[:5])}), which need "
                         "TF's Flex delegate; edgezoo runs TFLite models on LiteRT's builtin ops",
                         hint="convert with TFLite builtin ops only (TIDL does not run Flex ops either)")


def _info(detail: dict) -> TensorInfo:
    sig = detail.get("shape_signature")
    shape = sig if sig is not None and len(sig) == len(detail["shape"]) else detail["shape"]
    return TensorInfo(detail["name"], tuple(int(d) if d >= 0 else None for d in shape),
                      np.dtype(detail["dtype"]).name)


def inputs(interpreter: Any) -> list[TensorInfo]:
    return [_info(d) for d in interpreter.get_input_details()]


def outputs(interpreter: Any) -> list[TensorInfo]:
    return [_info(d) for d in interpreter.get_output_details()]


@dataclass
class TfliteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    is_constant: bool = False  # backed by a buffer in the file (weights, shapes, axes)
    constant: np.ndarray | None = None  # the buffer's values, decoded for small constants only (shapes, axes, ...)


@dataclass
class TfliteOp:
    subgraph: int
    index: int
    op: str  # builtin name ("CONV_2D") or the custom code ("TFLite_Detection_PostProcess")
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)

    def name(self, model: "TfliteGraph") -> str:
        """Ops have no names in TFLite: the first output tensor names them (as TIDL's import does)."""
        sub = model.tensors[self.subgraph]
        return sub[self.outputs[0]].name if self.outputs and self.outputs[0] >= 0 else f"{self.op}_{self.index}"


@dataclass
class TfliteGraph:
    ops: list[TfliteOp]
    tensors: list[list[TfliteTensor]]  # per subgraph
    inputs: list[list[int]]
    outputs: list[list[int]]

    def op_names(self, subgraph: int = 0) -> list[str]:
        return [o.op for o in self.ops if o.subgraph == subgraph]

    def tensor_names(self) -> list[str]:
        return [t.name for t in self.tensors[0]]


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema  # lazy; avoids importing all of TensorFlow

    return schema


def _builtin_names(schema: Any) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _dtype_names(schema: Any) -> dict[int, str]:
    return {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_") and isinstance(v, int)}


def _options(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in vars(obj).items()}


_DECODE_LIMIT = 1 << 16  # bytes; weights are large and only their shapes matter to the checks


def _has_buffer(tensor: Any, buffers: list[Any]) -> bool:
    if tensor.buffer <= 0 or tensor.buffer >= len(buffers) or buffers[tensor.buffer] is None:
        return False
    buf = buffers[tensor.buffer]
    return (buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "size", 0))


def _decode(tensor: Any, buffers: list[Any], dtype: str) -> np.ndarray | None:
    if not _has_buffer(tensor, buffers):
        return None
    raw = buffers[tensor.buffer].data
    if raw is None or len(raw) == 0 or len(raw) > _DECODE_LIMIT:
        return None
    try:
        arr = np.frombuffer(np.asarray(raw, dtype=np.uint8).tobytes(), dtype=np.dtype(dtype))
    except TypeError:
        return None
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    return arr.reshape(shape) if int(np.prod(shape, dtype=np.int64)) == arr.size else arr


def read_graph(path: Path) -> TfliteGraph:
    """Operators and tensors of every subgraph, with builtin options as dicts and constant buffers decoded.

    The interpreter's verifier runs first, so a corrupt file fails cleanly before the flatbuffer is walked.
    """
    path = Path(path)
    load_interpreter(path, default_delegates=False)
    data = _check_bytes(path)
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    except (IndexError, ValueError, TypeError) as exc:  # struct/flatbuffer decoding of a damaged buffer
        raise corrupt(path, KIND, str(exc)) from None
    names, dtypes = _builtin_names(schema), _dtype_names(schema)
    codes = []
    for oc in model.operatorCodes or []:
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            raw = oc.customCode
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
        codes.append(name)
    buffers = model.buffers or []
    ops: list[TfliteOp] = []
    tensors: list[list[TfliteTensor]] = []
    ins: list[list[int]] = []
    outs: list[list[int]] = []
    for s, sub in enumerate(model.subgraphs or []):
        sub_tensors = []
        for t_index, t in enumerate(sub.tensors or []):
            tname = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
            dtype = dtypes.get(int(t.type), "unknown")
            shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
            sub_tensors.append(TfliteTensor(t_index, tname, shape, dtype, _has_buffer(t, buffers),
                                            _decode(t, buffers, dtype)))
        tensors.append(sub_tensors)
        ins.append([int(i) for i in (sub.inputs if sub.inputs is not None else [])])
        outs.append([int(i) for i in (sub.outputs if sub.outputs is not None else [])])
        for k, op in enumerate(sub.operators or []):
            ops.append(TfliteOp(s, k, codes[op.opcodeIndex],
                                [int(i) for i in (op.inputs if op.inputs is not None else [])],
                                [int(i) for i in (op.outputs if op.outputs is not None else [])],
                                _options(op.builtinOptions)))
    return TfliteGraph(ops, tensors, ins, outs)


def op_names(path: Path, subgraph: int = 0) -> list[str]:
    """The operator types of one subgraph, in execution order (e.g. to assert a model has no SOFTMAX)."""
    return read_graph(path).op_names(subgraph)
