"""A user's TF graph may hold only the ops a converted model can contain: nothing with file I/O or side effects runs.

The attack cases run the real CLI in a real process on graphs whose outputs depend on WriteFile/ReadFile; the list
itself is checked against the stand-ins' graphs and TF's own op registry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgezoo
import tiny_models as tm
from edgezoo.graphs import tf_graph
from edgezoo.graphs.tf_op_policy import ALLOWED_OPS, VARIABLE_READS, UnsafeGraphError, check_graph_ops

# Allowed ops TF marks stateful, each reviewed: none reads or writes outside its tensors.
_REVIEWED_STATEFUL = {
    "Assert", "CheckNumerics",  # can only fail the run
    "If", "While", "Case", "StatefulPartitionedCall",  # call library functions, which are checked op by op
    "TensorArrayV3", "TensorArrayReadV3", "TensorArrayWriteV3", "TensorArrayGatherV3", "TensorArrayScatterV3",
    "TensorArraySizeV3", "TensorArrayConcatV3", "TensorArraySplitV3", "TensorArrayCloseV3",  # in-memory arrays
}
# Op-name families that mean I/O, persistence, Python or randomness: none may be allowed.
_FORBIDDEN = re.compile(r"File|Save|Restore|Summary|Queue|Reader|Dataset|Iterator|PyFunc|Print|Lookup|Debug|"
                        r"Random|Decode|Encode|Checkpoint|Sharded|Socket|Send|Recv|Variable|Assign|Mutex|Barrier")


def _hostile_pb(dest: Path, kind: str, target: Path) -> Path:
    """The tiny classifier whose 'probs' output waits (control edge) for a file-system op on `target`."""
    import tensorflow as tf

    w = tm.weights(0)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, tm.H, tm.W, tm.C_IN], name="x")
        y = tf.nn.relu(tf.nn.conv2d(x, tf.constant(w["conv_w"]), strides=1, padding="SAME"))
        logits = tf.nn.bias_add(tf.matmul(tf.reduce_mean(y, axis=[1, 2]), tf.constant(w["fc_w"])),
                                tf.constant(w["fc_b"]), name="dense/BiasAdd")
        if kind == "WriteFile":
            effect = tf.io.write_file(str(target), "written by the graph", name="leak")
        elif kind == "ReadFile":
            effect = tf.io.read_file(str(target), name="leak")
        else:
            effect = tf.io.matching_files(str(target.parent / "*"), name="leak")
        with tf.control_dependencies([effect]):
            tf.nn.softmax(logits, name="probs")
    dest.write_bytes(graph.as_graph_def().SerializeToString())
    return dest


def _edgezoo(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(edgezoo.__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "edgezoo", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _one_line_naming(err: str, op: str) -> None:
    # TF's C++ start-up notices (printed before any setting is read) are not edgezoo's output.
    lines = [line for line in err.splitlines()
             if not line.startswith("WARNING: All log messages") and not re.match(r"[IWE]\d{4} ", line)]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"op '{op}' (node 'leak')" in err and "side-effect ops" in err, err


def test_verify_refuses_a_graph_that_writes_a_file_before_running_it(tmp_path):
    target = tmp_path / "written-by-the-graph.txt"
    pb = _hostile_pb(tmp_path / "hostile.pb", "WriteFile", target)
    converted = tm.build_onnx(tmp_path / "m.onnx")
    done = _edgezoo("verify", str(pb), str(converted), "--random", "1", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    _one_line_naming(done.stderr, "WriteFile")
    assert not target.exists()


@pytest.mark.parametrize("kind,target", [("ReadFile", "tflite"), ("WriteFile", "onnx")])
def test_export_graph_refuses_file_ops_before_converting(tmp_path, kind, target):
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's data")
    pb = _hostile_pb(tmp_path / "hostile.pb", kind, secret)
    before = secret.stat().st_mtime_ns
    done = _edgezoo("export", "--graph", str(pb), "--inputs", f"x:1x{tm.H}x{tm.W}x3", "--outputs", "probs",
                    "--to", target, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    _one_line_naming(done.stderr, kind)
    assert secret.read_text() == "the user's data" and secret.stat().st_mtime_ns == before
    assert not (tmp_path / "out").exists()  # nothing staged, nothing published


def test_matching_files_and_ops_inside_library_functions_are_refused(tmp_path):
    import tensorflow as tf

    pb = _hostile_pb(tmp_path / "glob.pb", "MatchingFiles", tmp_path / "x")
    with pytest.raises(UnsafeGraphError, match="op 'MatchingFiles'"):
        tf_graph.load_graph_def(pb)

    @tf.function
    def hidden(v):
        tf.io.write_file(str(tmp_path / "from-a-function"), "x")
        return v * 2.0

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1], name="x")
        tf.identity(hidden(x), name="y")
    gd = graph.as_graph_def()
    assert {n.op for n in gd.node} <= ALLOWED_OPS  # only the call is visible at the top level
    with pytest.raises(UnsafeGraphError, match=r"op 'WriteFile' \(node '.*hidden.*'"):
        check_graph_ops(gd, "fn.pb")


def test_a_call_op_naming_a_primitive_op_as_its_function_is_refused():
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    node = gd.node.add(name="call", op="PartitionedCall")
    node.attr["f"].func.name = "WriteFile"
    with pytest.raises(UnsafeGraphError, match="op 'WriteFile' .*called as a function"):
        check_graph_ops(gd, "call.pb")


def test_only_what_the_outputs_need_runs(tmp_path):
    """An allowed node off the output's path never executes: here an Assert that would fail the run."""
    import tensorflow as tf

    from edgezoo.graphs.runners import load_runner

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        tf.identity(x * 3.0, name="y")
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(x < 0), [x], name="never")]):
            tf.identity(x, name="z")
    pb = tmp_path / "pruned.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    out = load_runner(pb, outputs=["y"]).run({"x": np.array([1.0, 2.0], np.float32)})
    assert [float(v) for v in next(iter(out.values()))] == [3.0, 6.0]


def test_a_saved_models_serving_graph_passes_with_variable_reads_only():
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
        def __call__(self, x):
            return tf.nn.relu(x * self.w)

    module = Scale()  # the function holds it weakly
    gd = module.__call__.get_concrete_function().graph.as_graph_def()
    check_graph_ops(gd, "saved_model", variables=True)
    with pytest.raises(UnsafeGraphError, match="ReadVariableOp"):
        check_graph_ops(gd, "saved_model")


def test_the_allow_list_holds_registered_pure_ops_only():
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    registry = {op.name: op for op in ops.op}
    not_tf = {"TFLite_Detection_PostProcess"}
    assert sorted(ALLOWED_OPS - set(registry) - not_tf) == []  # no typos: every name is a real TF op
    assert sorted(op for op in ALLOWED_OPS if _FORBIDDEN.search(op.replace("TensorArray", ""))) == []
    stateful = {op for op in ALLOWED_OPS - not_tf if registry[op].is_stateful}
    assert sorted(stateful - _REVIEWED_STATEFUL) == []
    # Stateless is not enough: TF calls ReadFile and MatchingFiles stateless (constant folding would run them).
    assert not registry["ReadFile"].is_stateful and "ReadFile" not in ALLOWED_OPS
    assert VARIABLE_READS.isdisjoint(ALLOWED_OPS)


def test_every_op_of_the_tf_stand_ins_is_allowed(tmp_path):
    """The list is derived from what converted models contain: the zoo's TF stand-ins and OD API SSD variants."""
    import tarfile

    import tensorflow as tf

    from edgezoo.standins import StandinVariant, get_builder
    from edgezoo.standins.od_api_ssd import VARIANTS, build_graph

    seen: set[str] = set()
    for name in ("mobilenet-v1-tgz", "ssd-mobilenet-v1-tgz"):
        dest = tmp_path / f"{name}.tar.gz"
        get_builder(name).build(dest, StandinVariant.REDUCED, 0)
        with tarfile.open(dest) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".pb"):
                    gd = tf.compat.v1.GraphDef()
                    gd.ParseFromString(tar.extractfile(member).read())
                    seen |= {n.op for n in gd.node}
    for variant in VARIANTS.values():
        seen |= {n.op for n in build_graph(variant).node}
    assert {"TensorArrayScatterV3", "NonMaxSuppressionV3", "Enter", "DepthwiseConv2dNative"} <= seen
    assert sorted(seen - ALLOWED_OPS) == []


def test_a_tflite_carrying_tf_file_ops_as_flex_ops_is_refused(tmp_path):
    """TF ops can ride inside a .tflite (SELECT_TF_OPS, 'Flex' custom ops): the same allow-list applies."""
    import tensorflow as tf

    from edgezoo.graphs import tflite_model

    target = tmp_path / "written-by-the-model.txt"

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def leaky(x):
        with tf.control_dependencies([tf.io.write_file(str(target), "x")]):
            return x * 2.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions([leaky.get_concrete_function()], leaky)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    model = tmp_path / "flex.tflite"
    model.write_bytes(converter.convert())
    with pytest.raises(UnsafeGraphError, match=r"flex.tflite: the model holds the TF op 'WriteFile' \(a Flex op\)"):
        tflite_model.load_interpreter(model)
    assert not target.exists()
