"""Write a SavedModel's variables/ checkpoint from refilled values, under the keys the exporter's checkpoint had."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def write_variables(prefix: Path, checkpoint: dict, values: dict[str, np.ndarray], object_graph: bytes) -> None:
    """prefix.index + prefix.data-00000-of-00001: every key of the original checkpoint, with the value of the
    serving function's constant it feeds (checkpoint["weights"]) or the small value kept as it was."""
    import tensorflow as tf

    names, tensors = [], []
    for key, (shape, dtype) in sorted(checkpoint["keys"].items()):
        if key in checkpoint["weights"]:
            value = values[checkpoint["weights"][key]].reshape(shape)
        else:
            value = np.asarray(checkpoint["kept"][key], dtype=dtype).reshape(shape)
        names.append(key)
        tensors.append(tf.constant(value.astype(dtype)))
    names.append(OBJECT_GRAPH_KEY)
    tensors.append(tf.constant(object_graph, dtype=tf.string))
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
