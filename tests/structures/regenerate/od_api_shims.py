"""What the 2022 TF Object Detection API imports from TF 1.x and older numpy / tf_keras, provided on TF 2.21.

`install(tf1=True)` must run before the first `object_detection` import. With tf1=True it also switches TF to
v1 behaviour, which is what makes the OD API pick its TF1 (slim) feature extractors and exporters.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator


def install(*, tf1: bool) -> None:
    import numpy as np
    import tensorflow as tf

    if tf1:
        tf.compat.v1.disable_v2_behavior()
    if not hasattr(np, "int"):
        np.int = int  # nets/mobilenet/mobilenet_v3.py at import time
    from tensorflow.python.framework import ops

    if not hasattr(ops, "Tensor"):
        ops.Tensor = tf.Tensor  # tf_slim's fused batch norm path
    _module("tensorflow.contrib")
    tfprof = _module("tensorflow.contrib.tfprof")
    tfprof.model_analyzer = _module("tensorflow.contrib.tfprof.model_analyzer",
                                    TRAINABLE_VARS_PARAMS_STAT_OPTIONS={}, FLOAT_OPS_OPTIONS={},
                                    print_model_analysis=lambda *a, **k: None)  # only prints statistics
    sys.modules["tensorflow.contrib"].tfprof = tfprof
    _module("tensorflow.contrib.quantize")
    _module("tensorflow.contrib.quantize.python")
    matcher = _module("tensorflow.contrib.quantize.python.graph_matcher", OpTypePattern=OpTypePattern,
                      GraphMatcher=GraphMatcher)
    sys.modules["tensorflow.contrib.quantize.python"].graph_matcher = matcher
    _module("tensorflow.contrib.image")
    _module("tensorflow.contrib.image.python")
    _module("tensorflow.contrib.image.python.ops")
    _module("tensorflow.contrib.image.python.ops.image_ops")  # bipartite_matcher only; SSD uses argmax_matcher
    _module("tensorflow.tools.graph_transforms", TransformGraph=transform_graph)
    try:
        import tf_keras
        from tf_keras.src import legacy_tf_layers
        from tf_keras.src.legacy_tf_layers import normalization

        sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy_tf_layers)
        sys.modules.setdefault("tf_keras.legacy_tf_layers.normalization", normalization)
        if not hasattr(tf_keras, "legacy_tf_layers"):
            tf_keras.legacy_tf_layers = legacy_tf_layers
    except ImportError:
        pass


def _module(name: str, **attrs) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        sys.modules[name] = module
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def transform_graph(graph_def, input_names, output_names, transforms):
    """TF1's graph_transforms, for the one transform export_tflite_ssd_graph asks: strip_unused_nodes."""
    import tensorflow as tf

    if list(transforms) != ["strip_unused_nodes"]:
        raise NotImplementedError(transforms)
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def, [n.split(":")[0] for n in output_names])


class OpTypePattern:
    """An op whose type is one of `op_type` ("A|B", "*" = any) with inputs matching `inputs` (patterns or op types),
    in order or in any order."""

    def __init__(self, op_type: str, name: str | None = None, inputs=None, ordered_inputs: bool = True) -> None:
        self.op_types = None if op_type == "*" else set(op_type.split("|"))
        self.inputs = None if inputs is None else [i if isinstance(i, OpTypePattern) else OpTypePattern(i)
                                                   for i in inputs]
        self.ordered_inputs = ordered_inputs


class MatchResult:
    def __init__(self, bindings: dict[int, object]) -> None:
        self._bindings = bindings

    def get_op(self, pattern: OpTypePattern):
        return self._bindings.get(id(pattern))

    def get_tensor(self, pattern: OpTypePattern):
        op = self.get_op(pattern)
        return None if op is None else op.outputs[0]


class GraphMatcher:
    """Finds ops matching a pattern tree; a pattern used twice must bind the same op both times."""

    def __init__(self, pattern: OpTypePattern) -> None:
        self.pattern = pattern

    def match_graph(self, graph) -> Iterator[MatchResult]:
        for op in graph.get_operations():
            bindings = self._match(self.pattern, op, {})
            if bindings is not None:
                yield MatchResult(bindings)

    def match_op(self, op) -> MatchResult | None:
        bindings = self._match(self.pattern, op, {})
        return None if bindings is None else MatchResult(bindings)

    def _match(self, pattern: OpTypePattern, op, bindings: dict[int, object]) -> dict[int, object] | None:
        bound = bindings.get(id(pattern))
        if bound is not None:
            return bindings if bound is op else None
        if pattern.op_types is not None and op.type not in pattern.op_types:
            return None
        bindings = {**bindings, id(pattern): op}
        if pattern.inputs is None:
            return bindings
        producers = [t.op for t in op.inputs]
        if len(producers) != len(pattern.inputs):
            return None
        orders = [producers] if pattern.ordered_inputs else _permutations(producers)
        for order in orders:
            trial = bindings
            for sub, producer in zip(pattern.inputs, order):
                trial = self._match(sub, producer, trial)
                if trial is None:
                    break
            if trial is not None:
                return trial
        return None


def _permutations(items: list) -> Iterator[list]:
    import itertools

    return (list(p) for p in itertools.permutations(items))
