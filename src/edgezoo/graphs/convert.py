"""The bare converters, wrapped once: frozen graph -> TFLite, frozen graph -> ONNX (tf2onnx), ONNX fix/cut/simplify.

Recipes, stand-in builders and `export --graph` all convert through here, so converter quirks are handled in one
place and every failure becomes a one-line EdgezooError naming the file. These are the calls a user would make by hand
(the plain converter calls); the benchmarks time them bare against the full export.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgezoo.core.errors import RecipeError
from edgezoo.graphs import base_name, onnx_model, tf_graph


@contextlib.contextmanager
def _quiet() -> Any:
    """tf2onnx/TFLite print pages of INFO logs on stdout/stderr; keep the user's terminal readable."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # Converter errors are long MLIR dumps: the first line that says something is enough for a one-line message.
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("<unknown>", "loc(")):
            return line[:300]
    return type(exc).__name__


def frozen_graph_to_tflite(pb: Path, inputs: Mapping[str, Sequence[int]], outputs: Sequence[str], dest: Path, *,
                           representative: Callable[[], Iterable[list[Any]]] | None = None) -> Path:
    """tf.compat.v1.lite.TFLiteConverter.from_frozen_graph, float32, as a user calls it by hand.

    With `representative` (frames for calibration): full-integer int8 post-training quantization, every op int8,
    the model's input and output left float32 (the converter adds the quantize/dequantize at the edges)."""
    import tensorflow as tf  # lazy

    # The converter reads the file itself: check its ops first (its constant folding would run them).
    tf_graph.load_graph_def(Path(pb))
    input_names = [base_name(n) for n in inputs]
    shapes = {base_name(n): [int(d) for d in s] for n, s in inputs.items()}
    output_names = [n if not n.endswith(":0") else base_name(n) for n in outputs]
    try:
        with _quiet():
            converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
                str(pb), input_names, output_names, input_shapes=shapes)
            if representative is not None:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            data = converter.convert()
    except Exception as exc:  # the converter raises bare Exception/ConverterError subclasses
        raise RecipeError(f"{pb}: TFLite conversion failed: {_first_line(exc)}",
                          hint="check the input/output names and shapes") from None
    dest = Path(dest)
    dest.write_bytes(data)
    return dest


def frozen_graph_to_onnx(pb: Path, inputs: Sequence[str], outputs: Sequence[str], dest: Path, *, opset: int,
                         inputs_as_nchw: Sequence[str] = (),
                         input_shapes: Mapping[str, Sequence[int]] | None = None) -> Path:
    """tf2onnx on a frozen GraphDef; tensor names keep their TF spelling ('name:0')."""
    import tensorflow as tf  # lazy
    import tf2onnx  # lazy

    graph_def = tf_graph.load_graph_def(Path(pb))
    tensor = [n if ":" in n else f"{n}:0" for n in inputs]
    outs = [n if ":" in n else f"{n}:0" for n in outputs]
    nchw = [n if ":" in n else f"{n}:0" for n in inputs_as_nchw]
    if input_shapes:
        # Pin placeholder shapes (e.g. batch 1) by rewriting their shape attribute before conversion.
        wanted = {base_name(k): v for k, v in input_shapes.items()}
        for node in graph_def.node:
            if node.op == "Placeholder" and node.name in wanted:
                shape = tf.TensorShape([int(d) for d in wanted[node.name]]).as_proto()
                node.attr["shape"].shape.CopyFrom(shape)
    try:
        with _quiet():
            tf2onnx.convert.from_graph_def(graph_def, input_names=tensor, output_names=outs, opset=opset,
                                           inputs_as_nchw=nchw or None, output_path=str(dest))
    except Exception as exc:  # tf2onnx raises ValueError/KeyError/RuntimeError alike
        raise RecipeError(f"{pb}: tf2onnx conversion (opset {opset}) failed: {_first_line(exc)}",
                          hint="check the input/output names") from None
    return Path(dest)


def onnx_fix_and_cut(model: Any, *, batch: int | None, outputs: Sequence[str] | None, where: str) -> Any:
    """Batch fixed, shapes inferred, outputs cut: TI's recipe for the MLPerf ONNX files."""
    if batch is not None:
        model = onnx_model.fix_batch(model, batch)
    if outputs:
        model = onnx_model.cut(model, list(outputs), where)
    return onnx_model.infer_shapes(model)


def onnx_simplify(model: Any) -> Any:
    """onnxslim constant folding / fusion; RecipeError when it cannot handle the model."""
    import onnxslim  # lazy

    try:
        with _quiet():
            return onnxslim.slim(model)
    except Exception as exc:  # onnxslim surfaces assorted internal errors
        raise RecipeError(f"onnxslim failed: {_first_line(exc)}", hint="set simplify: false") from None
