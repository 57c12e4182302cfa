"""One small contract for running a model, whatever its format (after Polygraphy's runners).

    runner = load_runner(Path("model.onnx"), outputs=["extra/head:0"])
    runner.inputs, runner.outputs          # [TensorInfo(name, shape, dtype)]
    runner.run({"input:0": batch})         # -> {output name: array}
    runner.close()                         # or: with load_runner(...) as runner: ...

.pb -> TF frozen GraphDef (tf.compat.v1 Session); .tflite -> LiteRT interpreter; .onnx -> ONNX Runtime (CPU).
TF names may be given with or without ':0'; ONNX names written by tf2onnx ('x:0') are found from 'x' too.
Heavy libraries load only when a runner of that kind is created.

Threads: `threads` (the runtime's intra-op threads) defaults to the CPUs this process may use
(os.sched_getaffinity: a container's or taskset's limit, not the machine's core count). Callers whose figures must
not depend on the machine pin it (verification: verify.VERIFY_THREADS; a Ray actor: the CPUs it reserved).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgezoo.core.errors import EdgezooError, ModelFileError, tensor_not_found
from edgezoo.core.native_logs import quiet_native_logs
from edgezoo.graphs import TensorInfo, base_name, onnx_model, tf_graph, tflite_model
from edgezoo.zoo.schema import ModelFormat

__all__ = ["Runner", "RunnerError", "TensorInfo", "load_runner", "available_cpus", "check_threads",
           "TFGraphRunner", "OnnxRunner", "TfliteRunner"]

MAX_THREADS = 1024  # far above any CPU count seen; a typo of extra digits is refused rather than spawned


class RunnerError(EdgezooError):
    """A model could not be run with the inputs it was given (missing input, wrong shape or dtype)."""


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None) -> int:
    """A runtime thread count: None -> available_cpus(); anything but a whole number in 1..MAX_THREADS is refused."""
    if threads is None:
        return available_cpus()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= MAX_THREADS:
        raise RunnerError(f"threads {threads!r}: not a whole number in 1..{MAX_THREADS}",
                          hint=f"this process may use {available_cpus()} CPU(s)")
    return int(threads)


class Runner(Protocol):
    path: Path
    threads: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def run(self, feed: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        ...

    def tensor_names(self) -> list[str]:
        ...

    def close(self) -> None:
        ...

    def __enter__(self) -> Runner:
        ...

    def __exit__(self, *exc: object) -> None:
        ...


class _Lifecycle:
    """close() (idempotent) and the context manager; a closed runner refuses to run with a clear error."""

    where: str
    _closed: bool = False

    def _release(self) -> None:  # what the runtime holds (a session, an interpreter)
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise RunnerError(f"{self.where}: the runner was closed", hint="load the model again")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _match(name: str, names: Sequence[str]) -> str | None:
    """`name` as spelled in `names`, tolerating a missing or extra ':0'."""
    if name in names:
        return name
    for candidate in names:
        if base_name(candidate) == base_name(name) and (candidate.endswith(":0") or name.endswith(":0")):
            return candidate
    return None


def _name_error(name: str, names: Sequence[str], where: str, what: str) -> Exception:
    """tensor_not_found, listing all the names when there are few and none is close (models have few inputs)."""
    err = tensor_not_found(name, names, where, what)
    if err.hint == "no similar name found" and 0 < len(names) <= 8:
        err.hint = f"the model's {what}s are: " + ", ".join(repr(n) for n in names)
    return err


def _prepare_feed(feed: Mapping[str, np.ndarray], inputs: Sequence[TensorInfo], where: str) -> dict[str, np.ndarray]:
    """Feed keyed by the model's own input names, dtype-checked; one clear error for anything off."""
    names = [i.name for i in inputs]
    out: dict[str, np.ndarray] = {}
    for key, value in feed.items():
        name = _match(key, names)
        if name is None:
            raise _name_error(key, names, where, "input")
        out[name] = np.asarray(value)
    missing = [n for n in names if n not in out]
    if missing:
        raise RunnerError(f"{where}: no value fed for input(s) {', '.join(missing)}",
                          hint="inputs are " + ", ".join(f"{i.name} {list(i.shape)} {i.dtype}" for i in inputs))
    for info in inputs:
        value = out[info.name]
        want = np.dtype(info.dtype) if info.dtype not in ("unknown", "") else value.dtype
        if value.dtype != want:
            if not np.can_cast(value.dtype, want, casting="same_kind"):
                raise RunnerError(f"{where}: input {info.name} expects {want.name}, got {value.dtype.name}")
            value = value.astype(want)
        if info.shape and len(info.shape) != value.ndim:
            raise RunnerError(f"{where}: input {info.name} expects rank {len(info.shape)} {list(info.shape)}, "
                              f"got shape {list(value.shape)}")
        for want_dim, got in zip(info.shape, value.shape):
            if isinstance(want_dim, int) and want_dim >= 0 and want_dim != got:
                raise RunnerError(f"{where}: input {info.name} expects shape {list(info.shape)}, "
                                  f"got {list(value.shape)}")
        out[info.name] = np.ascontiguousarray(value)
    return out


def _override_shapes(infos: list[TensorInfo], shapes: Mapping[str, Sequence[int]] | None,
                     where: str) -> list[TensorInfo]:
    if not shapes:
        return infos
    names = [i.name for i in infos]
    result = {i.name: i for i in infos}
    for key, shape in shapes.items():
        name = _match(key, names)
        if name is None:
            raise _name_error(key, names, where, "input")
        result[name] = TensorInfo(name, tuple(int(d) for d in shape), result[name].dtype)
    return [result[n] for n in names]


# ----------------------------------------------------------------------------------------------------------------
# TF frozen graph


class TFGraphRunner(_Lifecycle):
    """A frozen GraphDef in a tf.compat.v1 Session. Tensor names are node names (':k' for outputs past the first)."""

    def __init__(self, path: Path, outputs: Sequence[str] | None = None,
                 inputs: Mapping[str, Sequence[int]] | None = None, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        tf = tf_graph._tf()
        self.path = Path(path)
        self.where = str(self.path)
        graph_def = tf_graph.load_graph_def(self.path)
        self.graph = tf_graph.import_graph(graph_def, self.path)
        # The GraphDef (weights included) is not kept: the imported graph has everything a run needs.
        self._nodes = tf_graph.node_names(graph_def)
        self._node_set = set(self._nodes)
        placeholders = tf_graph.placeholders(graph_def)
        sinks = tf_graph.sink_nodes(graph_def)
        del graph_def
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=self.threads,
                                          inter_op_parallelism_threads=1)
        # Grappler rewrites (constant folding, fusions) cost ~500 MB and ~0.6 s on ResNet50 for a few runs: a
        # verification run wants the graph as written, cheaply.
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        self._session = tf.compat.v1.Session(graph=self.graph, config=config)
        self.inputs = _override_shapes([self._info(f"{n}:0") for n in placeholders], inputs, self.where)
        default = list(outputs) if outputs else [n for n in sinks if self.graph.get_operation_by_name(n).outputs]
        self.outputs = [self._info(self._tensor(o, "output")) for o in default]

    def tensor_names(self) -> list[str]:
        """Names that can be asked for as outputs."""
        return list(self._nodes)

    def _tensor(self, name: str, what: str) -> str:
        """'name' or 'name:k' -> 'name:k', checked against the graph's nodes."""
        node = base_name(name)
        if node not in self._node_set:
            raise tensor_not_found(name, self._nodes, self.where, what)
        return name if name != node else f"{node}:0"

    def _info(self, tensor_name: str) -> TensorInfo:
        t = self.graph.get_tensor_by_name(tensor_name)
        shape = tuple(t.shape.as_list()) if t.shape.rank is not None else ()
        shown = tensor_name[:-2] if tensor_name.endswith(":0") else tensor_name
        return TensorInfo(shown, shape, t.dtype.as_numpy_dtype.__name__ if t.dtype.is_numpy_compatible else "unknown")

    def _release(self) -> None:
        self._session.close()  # frees the session's buffers and its thread pools

    def run(self, feed: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        import tensorflow as tf

        self._check_open()
        fed = _prepare_feed(feed, self.inputs, self.where)
        names = list(outputs) if outputs else [o.name for o in self.outputs]
        fetches = [self._tensor(n, "output") for n in names]
        try:
            values = self._session.run(fetches, {f"{k}:0" if ":" not in k else k: v for k, v in fed.items()})
        except tf.errors.OpError as exc:
            raise RunnerError(f"{self.where}: TensorFlow failed to run the graph: {exc.message.splitlines()[0]}") from None
        return {n: np.asarray(v) for n, v in zip(names, values)}


# ----------------------------------------------------------------------------------------------------------------
# ONNX Runtime


class OnnxRunner(_Lifecycle):
    """ONNX Runtime on CPU. Intermediate tensors can be asked for; the model is then re-made with them as outputs."""

    def __init__(self, path: Path, outputs: Sequence[str] | None = None,
                 inputs: Mapping[str, Sequence[int]] | None = None, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self.path = Path(path)
        self.where = str(self.path)
        self.model = onnx_model.load(self.path)
        self._sessions: dict[tuple[str, ...], Any] = {}
        # per requested output list: (the graph's spellings, the session that gives them); resolving names walks the
        # whole graph, which would cost more than a small model's inference if done per call
        self._plans: dict[tuple[str, ...], tuple[list[str], Any]] = {}
        # Sessions are made on first use, with the extra outputs asked for: a full-size model costs its size again
        # per session, so a runner that is only asked for intermediate tensors never builds the plain one.
        self.inputs = _override_shapes([onnx_model.info(i) for i in onnx_model.graph_inputs(self.model)], inputs,
                                       self.where)
        if outputs:
            resolved = tuple(onnx_model.resolve(self.model, o, self.where, "output") for o in outputs)
            present = set(onnx_model.output_names(self.model))
            session = self._session(tuple(n for n in dict.fromkeys(resolved) if n not in present))
            by_name = {o.name: self._ort_info(o) for o in session.get_outputs()}
            self.outputs = [by_name[n] for n in resolved]
        else:
            self.outputs = [onnx_model.info(o) for o in self.model.graph.output]

    def tensor_names(self) -> list[str]:
        """Names that can be asked for as outputs."""
        return onnx_model.tensor_names(self.model)

    @staticmethod
    def _ort_info(node_arg: Any) -> TensorInfo:
        kind = node_arg.type  # "tensor(float)"
        names = {"float": "float32", "double": "float64", "float16": "float16", "uint8": "uint8", "int8": "int8",
                 "int32": "int32", "int64": "int64", "bool": "bool", "string": "str"}
        dtype = names.get(kind[len("tensor("):-1], "unknown") if kind.startswith("tensor(") else "unknown"
        shape = tuple(d if isinstance(d, (int, str)) else None for d in (node_arg.shape or ()))
        return TensorInfo(node_arg.name, shape, dtype)

    def _session(self, extra: tuple[str, ...]) -> Any:
        """A session whose outputs include `extra` (cached per set of extra outputs)."""
        key = tuple(sorted(extra))
        if key in self._sessions:
            return self._sessions[key]
        import onnxruntime as ort  # lazy

        model = onnx_model.add_outputs(self.model, key, self.where) if key else self.model
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except onnx_model.ort_errors() as exc:  # e.g. an operator of a custom domain ORT does not have
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelFileError(f"{self.path}: ONNX Runtime cannot load the model: {first}",
                                 hint="run 'edgezoo check' on it, or re-export it") from None
        self._sessions[key] = session
        return session

    def _release(self) -> None:
        self._plans.clear()
        self._sessions.clear()  # ORT frees a session (and its threads) with its last reference

    def run(self, feed: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self._check_open()
        fed = _prepare_feed(feed, self.inputs, self.where)
        wanted = list(outputs) if outputs else [o.name for o in self.outputs]
        plan = self._plans.get(tuple(wanted))
        if plan is None:
            resolved = [onnx_model.resolve(self.model, n, self.where, "output") for n in wanted]
            base_outputs = set(onnx_model.output_names(self.model))
            extra = tuple(n for n in dict.fromkeys(resolved) if n not in base_outputs)
            # Any cached session that already outputs these will do (avoids re-making one per call pattern).
            session = next((sess for key, sess in self._sessions.items() if set(extra) <= set(key)), None) \
                or self._session(extra)
            plan = self._plans[tuple(wanted)] = (resolved, session)
        resolved, session = plan
        try:
            values = session.run(resolved, fed)
        except onnx_model.ort_errors() as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunnerError(f"{self.where}: ONNX Runtime failed to run the model: {first}") from None
        return {n: np.asarray(v) for n, v in zip(wanted, values)}


# ----------------------------------------------------------------------------------------------------------------
# LiteRT


class TfliteRunner(_Lifecycle):
    """The LiteRT interpreter. Intermediate tensors are readable when asked for at load time."""

    def __init__(self, path: Path, outputs: Sequence[str] | None = None,
                 inputs: Mapping[str, Sequence[int]] | None = None, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self.path = Path(path)
        self.where = str(self.path)
        self._interp = tflite_model.load_interpreter(self.path, num_threads=self.threads)
        self._input_details = {d["name"]: d for d in self._interp.get_input_details()}
        self._output_details = {d["name"]: d for d in self._interp.get_output_details()}
        self._all = {d["name"]: d["index"] for d in self._interp.get_tensor_details()}
        self.inputs = _override_shapes(tflite_model.inputs(self._interp), inputs, self.where)
        model_outputs = tflite_model.outputs(self._interp)
        if outputs:
            resolved = [self._resolve(o) for o in outputs]
            if any(n not in self._output_details for n in resolved):
                # Intermediate tensors are overwritten during invoke unless the interpreter keeps them all.
                import warnings

                from ai_edge_litert.interpreter import Interpreter

                with warnings.catch_warnings():  # LiteRT warns that keeping all tensors costs memory: we ask for it
                    warnings.simplefilter("ignore", UserWarning)
                    self._interp = Interpreter(model_path=str(self.path), num_threads=self.threads,
                                               experimental_preserve_all_tensors=True)
                with quiet_native_logs():
                    self._interp.allocate_tensors()
            by_name = {o.name: o for o in model_outputs}
            details = {d["name"]: d for d in self._interp.get_tensor_details()}
            self.outputs = [by_name.get(n) or TensorInfo(n, tuple(int(x) for x in details[n]["shape"]),
                                                         np.dtype(details[n]["dtype"]).name) for n in resolved]
        else:
            self.outputs = model_outputs

    def tensor_names(self) -> list[str]:
        """Names that can be asked for as outputs."""
        return list(self._all)

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        """The static shape of any tensor of the model."""
        self._check_open()
        name = self._resolve(name)
        detail = next(d for d in self._interp.get_tensor_details() if d["name"] == name)
        return tuple(int(d) for d in detail["shape"])

    def _resolve(self, name: str) -> str:
        found = _match(name, list(self._all))
        if found is None:
            raise tensor_not_found(name, list(self._all), self.where, "tensor")
        return found

    def _release(self) -> None:
        self._interp = None  # the interpreter's arena goes with its last reference

    def run(self, feed: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self._check_open()
        fed = _prepare_feed(feed, self.inputs, self.where)
        resized = False
        for name, value in fed.items():
            detail = self._input_details[name]
            if tuple(detail["shape"]) != value.shape:
                self._interp.resize_tensor_input(detail["index"], list(value.shape))
                resized = True
        try:
            if resized:
                self._interp.allocate_tensors()
            for name, value in fed.items():
                self._interp.set_tensor(self._input_details[name]["index"], value)
            self._interp.invoke()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunnerError(f"{self.where}: LiteRT failed to run the model: {first}") from None
        wanted = list(outputs) if outputs else [o.name for o in self.outputs]
        return {n: np.array(self._interp.get_tensor(self._all[self._resolve(n)])) for n in wanted}


_RUNNERS = {ModelFormat.TF: TFGraphRunner, ModelFormat.ONNX: OnnxRunner, ModelFormat.TFLITE: TfliteRunner}


def load_runner(path: Path, *, outputs: Sequence[str] | None = None,
                inputs: Mapping[str, Sequence[int]] | None = None, threads: int | None = None) -> Runner:
    """The runner for a model file, chosen by suffix.

    `outputs`: tensors to produce by default (intermediates allowed; TF graphs default to their sink nodes).
    `inputs`: input shapes to report instead of the file's own (e.g. a fixed batch for a dynamic graph).
    `threads`: the runtime's intra-op threads (default: available_cpus()).
    """
    path = Path(path)
    cls = _RUNNERS.get(ModelFormat.of(path))
    if cls is None:
        raise ModelFileError(f"{path}: unknown model format {path.suffix or '(no suffix)'!r}",
                             hint="expected a .pb (TF frozen graph), .onnx or .tflite file")
    threads = check_threads(threads)  # before any model is read
    return cls(path, outputs=outputs, inputs=inputs, threads=threads)
