import onnx
import onnxruntime as ort
import numpy as np
import pytest

import ssd_models
from edgezoo.core.errors import RecipeError
from edgezoo.detection.codings import DataLayout
from edgezoo.graphs import onnx_model
from edgezoo.ssd.onnx_heads import find_heads, sanitize_head_names


def _fixed(model, h=1200, w=1200):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = h, w
    return m


@pytest.mark.parametrize("naming", ["pytorch", "numbered"])
def test_heads_of_the_reduced_standin_in_prior_order(naming):
    """Published naming (node name == output name, static input, reshape targets from Shape of the feature maps)
    and the older one (tensors by number, symbolic spatial dims)."""
    model = onnx.load(ssd_models.reduced_standin(**({} if naming == "pytorch" else {"naming": naming})))
    heads = find_heads(_fixed(model), num_classes=81)
    assert heads.layout is DataLayout.INTERLEAVED and heads.num_classes == 81
    assert [h.boxes_per_location for h in heads.heads] == [4, 6, 6, 6, 4, 4]
    assert [h.grid for h in heads.heads] == [(50, 50), (25, 25), (13, 13), (7, 7), (3, 3), (3, 3)]
    assert heads.num_priors == 15130
    nodes = {n.output[0]: n for n in model.graph.node}
    for h in heads.heads:
        # first output TENSOR of a Conv node; the PyTorch-style node name is something else
        assert nodes[h.box_tensor].op_type == "Conv" and nodes[h.box_tensor].name == h.box_node
        assert (h.box_node == h.box_tensor) == (naming == "pytorch")
        assert h.box_channels == 4 * h.boxes_per_location and h.class_channels == 81 * h.boxes_per_location
    # prior order = concat input order, whatever the node numbering
    concat = next(n for n in model.graph.node if n.output[0] == heads.box_concat)
    producers = onnx_model.producers(model)
    reshaped = [producers[i].input[0] for i in concat.input]
    assert reshaped == heads.box_inputs
    if naming == "numbered":  # without a fixed input size the heads are still found, only the grids are unknown
        assert find_heads(model).box_inputs == heads.box_inputs and heads.heads[0].grid is not None
        assert find_heads(model).heads[0].grid is None
    else:  # the published input is static: plain shape inference still leaves the reshaped dims unknown
        inferred = onnx.shape_inference.infer_shapes(model)
        shapes = {vi.name: vi for vi in inferred.graph.value_info}
        concat = shapes.get(heads.box_concat)
        known = concat is not None and concat.type.tensor_type.HasField("shape") and all(
            d.HasField("dim_value") for d in concat.type.tensor_type.shape.dim)
        assert not known
        assert find_heads(model).heads[0].grid == (50, 50)


@pytest.mark.parametrize("layout", ["interleaved", "separated"])
def test_heads_found_by_structure_with_shuffled_node_order(layout):
    model = ssd_models.tiny_ssd(num_classes=3, anchors=(2, 3), layout=layout)
    ort.InferenceSession(model.SerializeToString())  # a real, runnable graph
    nodes = list(model.graph.node)
    np.random.default_rng(1).shuffle(nodes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    heads = find_heads(model)
    assert heads.layout is (DataLayout.INTERLEAVED if layout == "interleaved" else DataLayout.SEPARATED)
    assert heads.box_inputs == ["box_0", "box_1"] and heads.class_inputs == ["cls_0", "cls_1"]
    assert [h.boxes_per_location for h in heads.heads] == [2, 3]
    assert [h.grid for h in heads.heads] == [(8, 8), (4, 4)] and heads.num_classes == 3


def test_wrong_class_count_and_non_ssd_graph_are_clear_errors():
    with pytest.raises(RecipeError, match="no SSD heads found.*of 81 classes"):
        find_heads(ssd_models.tiny_ssd(num_classes=3), num_classes=81, where="tiny.onnx")
    from onnx import TensorProto, helper
    plain = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]))
    with pytest.raises(RecipeError, match="found 0 box and 0 class"):
        find_heads(plain)


def test_too_long_names_are_renamed_consistently_and_recorded():
    long = "backbone/" + "very_long_scope/" * 40 + "box"
    names = (long, "cls_0", "box_1", "cls_1")
    model = ssd_models.tiny_ssd(head_names=names)
    heads = find_heads(model)
    assert heads.box_inputs[0] == long and len(long) >= 512
    fixed, renamed = sanitize_head_names(model, heads)
    assert renamed.renamed == {long: "ssd_box_0"} and renamed.box_inputs == ["ssd_box_0", "box_1"]
    assert find_heads(fixed).box_inputs == ["ssd_box_0", "box_1"]  # consumers follow the rename
    x = np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    after = ort.InferenceSession(fixed.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(before[0], after[0])
    # names TIDL can take are left alone
    tiny = ssd_models.tiny_ssd()
    same, untouched = sanitize_head_names(tiny, find_heads(tiny))
    assert untouched.renamed == {} and same is tiny


def test_four_classes_look_like_boxes_and_are_told_apart_by_the_decoding():
    """3 classes + background: class rows of 4 like the boxes; the class concat is the scored one."""
    model, _ = ssd_models.tiny_decoding_ssd(num_classes=4)
    with pytest.raises(RecipeError, match="no SSD heads found"):
        find_heads(model)  # without the class count the rows of 4 are boxes only
    heads = find_heads(model, num_classes=4)
    assert heads.box_inputs == ["box_0", "box_1"] and heads.class_inputs == ["cls_0", "cls_1"]
