from __future__ import annotations

import pytest

import tiny_models as tm
from edgezoo.core.errors import ModelFileError, TensorNameError
from edgezoo.graphs import base_name, tf_graph


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    return tm.build_tf_pb(tmp_path_factory.mktemp("tfg") / "m.pb")


def test_names_inputs_sinks(pb):
    gd = tf_graph.load_graph_def(pb)
    assert tf_graph.placeholders(gd) == ["x"]
    assert tf_graph.sink_nodes(gd) == ["probs", "ArgMax"]
    assert "dense/BiasAdd" in tf_graph.node_names(gd)
    assert tf_graph.resolve_tensor(gd, "dense/BiasAdd", "m.pb") == "dense/BiasAdd:0"
    assert tf_graph.resolve_tensor(gd, "probs:0", "m.pb") == "probs:0"


def test_cut_keeps_only_what_the_outputs_need(pb):
    gd = tf_graph.load_graph_def(pb)
    cut = tf_graph.cut(gd, ["dense/BiasAdd:0"])
    ops = tf_graph.ops(cut)
    assert "Softmax" not in ops.values() and "ArgMax" not in ops.values()
    assert tf_graph.sink_nodes(cut) == ["dense/BiasAdd"]


def test_wrong_name_and_corrupt_file(pb, tmp_path):
    gd = tf_graph.load_graph_def(pb)
    with pytest.raises(TensorNameError, match="did you mean 'dense/BiasAdd'"):
        tf_graph.cut(gd, ["dense/BiasAd"])
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x00\xff" * 50)
    with pytest.raises(ModelFileError, match="junk.pb: not a valid TF frozen graph"):
        tf_graph.load_graph_def(junk)
    # A cut that ends on a node boundary still parses: the dangling inputs give it away.
    data = pb.read_bytes()
    partial = type(gd)()
    partial.node.extend(gd.node[len(gd.node) // 2:])
    half = tmp_path / "half.pb"
    half.write_bytes(partial.SerializeToString())
    assert len(data) > 0
    with pytest.raises(ModelFileError, match="missing nodes"):
        tf_graph.load_graph_def(half)


def test_base_name():
    assert base_name("a/b:0") == "a/b" and base_name("a/b") == "a/b" and base_name("a:b") == "a:b"
