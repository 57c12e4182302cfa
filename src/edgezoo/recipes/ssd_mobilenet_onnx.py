"""The ONNX route for SSD-MobileNet v1 (recipe `ssd-mobilenet-onnx-caffe-meta`): published ONNX -> TIDL ONNX SSD.

1. The published ONNX (tf2onnx of the frozen graph: uint8 NHWC image_tensor:0, NMS inside a Loop) is fixed to batch
   1 and cut at `Preprocessor/sub`: the new input `normalized_input_image_tensor` [1, 3, 300, 300] float is what
   tf2onnx's NCHW convolutions already read ((x - 127.5) / 127.5, as the card says).
2. The box-predictor heads (the Convs writing BoxPredictor_i/{BoxEncodingPredictor,ClassPredictor}/BiasAdd) are
   rewritten so TIDL's Caffe priors equal the TF anchors (tidl/meta_arch/ssd_caffe_priors.py): channels permuted into
   Caffe prior order, layer 0 split in two heads, a zero-weight dummy prior where Caffe insists on a ratio-1 box.
3. An opset-10 post-processing tail (ssd/onnx_ssd_tail.py) makes the model runnable in ONNX Runtime with the
   published four outputs; TIDL replaces it with its detection layer described by meta_arch.prototxt
   (caffe_ssd, CENTER_SIZE_YXHW, SIGMOID, SEPARATED, variances 1/y_scale, 1/x_scale, 1/h_scale, 1/w_scale).
4. Verified twice against the frozen graph on real photographs: the prototxt's semantics in numpy (what TIDL
   computes) and the ONNX model in ONNX Runtime.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgezoo.bundle.config import (META_ARCH_ONNX_SSD, PROTOTXT, YXYX_TO_XYXY, detection_postprocess,
                                   ssd_runtime_options)
from edgezoo.core.errors import RecipeError
from edgezoo.datasets.images import verification_images
from edgezoo.detection.anchors import check_against_graph, generate_anchors
from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
from edgezoo.detection.pipeline_config import load_pipeline_config
from edgezoo.graphs import onnx_model, tf_graph
from edgezoo.graphs.onnx_values import GraphIndex
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.recipes.params import chosen_limits
from edgezoo.recipes.ssd_mobilenet import ONNX_PARAMS, _card, config_member, graph_anchor_tensor
from edgezoo.ssd import onnx_ssd_tail, ssd_surgery
from edgezoo.tidl.meta_arch import ssd_caffe_priors
from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, MetaArch, NmsParam, save_meta_arch
from edgezoo.verify.detection import compare_detectors, detection_tolerances
from edgezoo.verify.detectors import meta_arch_detector, od_api_detector
from edgezoo.zoo.schema import ModelFormat

INPUT_NAME = "normalized_input_image_tensor"
_KINDS = ("BoxEncodingPredictor", "ClassPredictor")


@dataclass
class RouteResult:
    model: Any  # onnx.ModelProto
    meta: MetaArch
    figures: dict[str, Any]
    notes: list[str]


@dataclass(frozen=True)
class _HeadConv:
    conv: Any  # the Conv NodeProto
    weights: np.ndarray
    bias: np.ndarray  # zeros when tf2onnx dropped an all-zero BiasAdd; an Add of a constant after the Conv folded in


def _constant(model: Any, tensor: str) -> np.ndarray | None:
    """An initializer / Constant, also behind Identity or a Transpose / Reshape of one (shared weights)."""
    from onnx import helper

    g = GraphIndex(model)
    value = g.constant(tensor)
    if value is not None:
        return value
    node = onnx_model.producers(model).get(tensor)
    if node is None or node.op_type not in ("Identity", "Transpose", "Reshape"):
        return None
    inner = _constant(model, node.input[0])
    if inner is None:
        return None
    if node.op_type == "Transpose":
        perm = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"), None)
        return np.transpose(inner, perm)
    if node.op_type == "Reshape":
        shape = g.constant(node.input[1])
        return None if shape is None else inner.reshape([int(v) for v in shape])
    return inner


def _head_conv(model: Any, head: str, where: str) -> _HeadConv:
    """The Conv computing the TF head tensor `head`, with its weights and bias. tf2onnx writes the head as Conv ->
    Transpose(0, 2, 3, 1) -> head; on a 1x1 map its optimiser turns that identity Transpose into a Reshape (or
    removes it), an all-zero BiasAdd can be dropped (no bias input) or a bias left as an Add after the Conv."""
    from onnx import helper

    tensor = onnx_model.resolve(model, head, where, "head tensor")
    producers = onnx_model.producers(model)
    inferred = onnx_model.value_infos(onnx_model.infer_shapes(model))
    node = producers.get(tensor)
    if node is not None and node.op_type == "Transpose":
        perm = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), None)
        node = producers.get(node.input[0]) if perm == [0, 2, 3, 1] else None
    elif node is not None and node.op_type == "Reshape":
        src = producers.get(node.input[0])
        shape = onnx_model.info(inferred[node.input[0]]).shape if node.input[0] in inferred else ()
        node = src if len(shape) == 4 and shape[2] == 1 and shape[3] == 1 else None  # a 1x1 map: same order
    bias_add = None
    if node is not None and node.op_type == "Add":
        consts = [_constant(model, i) for i in node.input]
        if sum(c is not None for c in consts) == 1:
            bias_add = next(c for c in consts if c is not None)
            node = producers.get(node.input[0] if consts[1] is not None else node.input[1])
    if node is None or node.op_type != "Conv":
        raise RecipeError(f"{where}: head {tensor!r} is not computed by a Conv (through tf2onnx's Transpose, or a "
                          "Reshape on a 1x1 map)",
                          hint="the ONNX route expects tf2onnx's export of the TF OD API box predictor")
    weights = _constant(model, node.input[1])
    if weights is None:
        raise RecipeError(f"{where}: head conv {node.name or node.output[0]!r} has no constant weights")
    bias = _constant(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    bias = np.zeros(weights.shape[0], np.float32) if bias is None else bias.reshape(-1)
    if bias_add is not None:
        bias = bias + bias_add.reshape(-1).astype(np.float32)
    return _HeadConv(node, weights.astype(np.float32), bias.astype(np.float32))


def _cut_input(model: Any, normalized: str, size: tuple[int, int], where: str) -> Any:
    """Replace the tensor `normalized` (NCHW after tf2onnx's transposes, or NHWC) by a new float NCHW input."""
    import onnx
    from onnx import TensorProto, helper

    tensor = onnx_model.resolve(model, normalized, where, "normalized input")
    consumers = [n for n in model.graph.node if tensor in n.input]
    if not consumers:
        raise RecipeError(f"{where}: nothing reads {tensor!r}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if all(n.op_type == "Transpose" and list(n.attribute[0].ints) == [0, 3, 1, 2] for n in consumers):
        replaced = {n.output[0] for n in consumers}  # NHWC tensor: its NCHW transposes become the input
    else:
        replaced = {tensor}
    for node in out.graph.node:
        for k, name in enumerate(node.input):
            if name in replaced:
                node.input[k] = INPUT_NAME
    out.graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, *size]))
    return out


def rewrite(model: Any, cfg: Any, anchors: Any, *, normalized: str | None, score_threshold: float,
            iou_threshold: float, per_class: int, keep: int, where: str,
            heads: Sequence[tuple[str, str]] | None = None, name: str = "ssd_mobilenet_v1",
            top_k: int | None = None) -> RouteResult:
    """Cut, rewrite the heads, add the tail and write the prototxt (see the module docstring).

    `normalized`: the tensor the new input replaces (None: the model already takes INPUT_NAME, NCHW). `heads`: the
    (box, class) head tensors per layer, found by structure (default: the published graph's names). The
    pipeline.config's logit_scale is folded into the class heads (the prototxt has no such field); SOFTMAX scores
    give a SOFTMAX prototxt and tail. `top_k`: nms_param.top_k (default: every prior, the original's semantics)."""
    from onnx import helper, numpy_helper

    size = (cfg.image_height, cfg.image_width)
    c = cfg.box_coder
    variances = (1.0 / c.y_scale, 1.0 / c.x_scale, 1.0 / c.height_scale, 1.0 / c.width_scale)
    groups = ssd_caffe_priors.prior_groups(cfg.anchors, anchors, size, variances)
    classes = cfg.num_classes + 1
    softmax = cfg.score_converter == "SOFTMAX"
    if cfg.score_converter not in ("SIGMOID", "SOFTMAX"):
        raise RecipeError(f"{cfg.source}: model.ssd.post_processing.score_converter: {cfg.score_converter} is not "
                          "supported by the ONNX route (TIDL: SIGMOID or SOFTMAX)", hint="export to TFLite")
    if normalized is not None:
        model = _cut_input(onnx_model.fix_batch(model, 1), normalized, size, where)
    heads = heads or [tuple(f"BoxPredictor_{layer}/{kind}/BiasAdd" for kind in _KINDS)
                      for layer in range(len(anchors.feature_maps))]
    new_nodes, new_inits, tail_heads = [], [], []
    box_names, class_names = [], []
    for layer, (fh, fw) in enumerate(anchors.feature_maps):
        found = [_head_conv(model, head, where) for head in heads[layer]]
        convs = [h.conv for h in found]
        (w_box, b_box), (w_cls, b_cls) = ((h.weights, h.bias) for h in found)
        if cfg.logit_scale != 1.0:  # scores are converter(logits / logit_scale): linear, so exact in the weights
            w_cls, b_cls = w_cls / np.float32(cfg.logit_scale), b_cls / np.float32(cfg.logit_scale)
        count = anchors.layers[layer].count
        if w_box.shape[0] != count * 4 or w_cls.shape[0] != count * classes:
            raise RecipeError(f"{where}: layer {layer} heads have {w_box.shape[0]} / {w_cls.shape[0]} channels; the "
                              f"pipeline.config gives {count} boxes x (4 / {classes})")
        layer_groups = [g for g in groups if g.layer == layer]
        for g, weights in zip(layer_groups, ssd_caffe_priors.caffe_head_weights(groups, layer, w_box, b_box, w_cls,
                                                                                  b_cls, classes, softmax)):
            names = []
            for kind, conv, (w, bias) in zip(_KINDS, convs, (weights[:2], weights[2:])):
                out_name = f"BoxPredictor_{layer}{g.suffix}/{kind}/caffe_order"
                w_name, b_name = f"{out_name}/weights", f"{out_name}/biases"
                new_inits += [numpy_helper.from_array(w, w_name), numpy_helper.from_array(bias, b_name)]
                new_nodes.append(helper.make_node("Conv", [conv.input[0], w_name, b_name], [out_name],
                                                  name=out_name, **{a.name: helper.get_attribute_value(a)
                                                                    for a in conv.attribute}))
                names.append(out_name)
            box_names.append(names[0])
            class_names.append(names[1])
            tail_heads.append(onnx_ssd_tail.TailHead(names[0], names[1], len(g.tf_boxes), (fh, fw)))
    model.graph.node.extend(new_nodes)
    model.graph.initializer.extend(new_inits)
    priors = np.concatenate([p.reshape(-1, 4) for p in ssd_caffe_priors.group_priors(groups, size)])
    model = onnx_ssd_tail.add_detection_tail(model, tail_heads, priors, variances, classes, score_threshold,
                                             iou_threshold, per_class, keep, softmax=softmax)
    model = onnx_model.cut(model, list(onnx_ssd_tail.OUTPUTS), where)
    model = onnx_model.infer_shapes(model)
    total_priors = len(priors)
    meta = MetaArch(name=name, caffe_ssd=(CaffeSsd(
        box_input=tuple(box_names), class_input=tuple(class_names), output=onnx_ssd_tail.OUTPUTS,
        in_width=size[1], in_height=size[0],
        score_converter=ScoreConverter.SOFTMAX if softmax else ScoreConverter.SIGMOID,
        prior_box_param=tuple(g.param for g in groups),
        detection_output_param=DetectionOutputParam(
            num_classes=classes, share_location=True, background_label_id=0,
            nms_param=NmsParam(nms_threshold=iou_threshold, top_k=top_k or total_priors),
            code_type=CodeType.CENTER_SIZE_YXHW, keep_top_k=keep, confidence_threshold=score_threshold),
        data_layout=DataLayout.SEPARATED),))
    cmp = ssd_caffe_priors.compare_with_anchors(groups, anchors, size)
    figures = {"heads": len(groups), "priors": total_priors, "dummy_priors": cmp.dummy_priors,
               "priors_max_abs_diff_vs_tf_anchors": cmp.max_abs_diff, "worst_prior": cmp.worst,
               "interpolated_size_error_from_int_max_size": ssd_caffe_priors.interp_int_cast_error(groups, cfg.anchors,
                                                                                                 size)}
    if name != "ssd_mobilenet_v1":
        return RouteResult(model, meta, figures, _generic_notes(groups, cmp, total_priors, per_class, softmax))
    notes = [
        f"TF anchors as Caffe priors: {cmp.real_priors} priors equal the TF anchors to {cmp.max_abs_diff:.2g} "
        f"(worst: {cmp.worst}); layer 0 (scales 0.1 and 0.2) is split into heads 0a/0b; head 0b carries "
        f"{cmp.dummy_priors} dummy ratio-1 priors with zero weights and class logit "
        f"{ssd_caffe_priors.DUMMY_LOGIT:g} (score {1 / (1 + np.exp(-ssd_caffe_priors.DUMMY_LOGIT)):.1e}): they "
        "never pass a threshold >= 1e-8",
        "layers 1-5: head channels permuted to Caffe's prior order (interpolated box second); ratios listed with "
        "flip false so 0.3333 stays 0.3333",
        f"nms_param.top_k = {total_priors} (every prior): Caffe's top_k caps candidates BEFORE NMS, the original "
        f"caps {per_class} per class AFTER it; they differ only if a class keeps more than {per_class} boxes",
        "TIDL does not clip boxes; the original clips to the image before NMS (same difference as the TFLite op)",
        "the ONNX model ends in an opset-10 tail (decode + NonMaxSuppression) so it runs in ONNX Runtime; TIDL "
        "replaces it by the detection layer meta_arch.prototxt describes",
    ]
    return RouteResult(model, meta, figures, notes)


def _generic_notes(groups: Sequence[Any], cmp: Any, total_priors: int, per_class: int, softmax: bool) -> list[str]:
    split = sorted({g.layer for g in groups if g.suffix})
    logit = ssd_caffe_priors.DUMMY_LOGIT
    bias = f"background logit {-logit:g}" if softmax else f"class logit {logit:g}"
    dummy = (f"; {cmp.dummy_priors} dummy ratio-1 priors (a box size without a ratio-1 box) get zero weights and "
             f"{bias}: they never pass a threshold >= 1e-8") if cmp.dummy_priors else ""
    return [
        f"TF anchors as Caffe priors: {cmp.real_priors} priors equal the TF anchors to {cmp.max_abs_diff:.2g} "
        f"(worst: {cmp.worst}); {len(groups)} heads, layers {split or 'none'} split by box size, head channels "
        f"permuted to Caffe's prior order{dummy}",
        f"nms_param.top_k = {total_priors} (every prior): Caffe's top_k caps candidates BEFORE NMS, the original "
        f"caps {per_class} per class AFTER it; with every prior they agree",
        "TIDL does not clip boxes; the original clips to the image before NMS (same difference as the TFLite op)",
        "the ONNX model ends in an opset-10 tail (decode + NonMaxSuppression) so it runs in ONNX Runtime; TIDL "
        "replaces it by the detection layer meta_arch.prototxt describes",
    ]


@register("ssd-mobilenet-onnx-caffe-meta", params=ONNX_PARAMS,
          summary="SSD-MobileNet's published ONNX -> ONNX up to the heads + caffe_ssd meta_arch.prototxt, verified")
def onnx_caffe_meta_recipe(rin: RecipeInput) -> RecipeOutput:
    card = _card(rin)
    tf_spec, onnx_spec = card.format(ModelFormat.TF), card.format(ModelFormat.ONNX)
    score = rin.params.get("score_threshold")
    iou = rin.params.get("iou_threshold")
    onnx_path = rin.source(onnx_spec.file, onnx_spec.member)
    pb = rin.source(tf_spec.file, tf_spec.member)
    cfg = load_pipeline_config(rin.source(tf_spec.file, config_member(card, tf_spec.file)))
    score = cfg.nms.score_threshold if score is None else score
    iou = cfg.nms.iou_threshold if iou is None else iou
    keep = rin.params.get("keep_top_k")  # validated by the recipe's ParamSpec: None only when not given
    keep = cfg.nms.max_total_detections if keep is None else keep
    t0 = time.monotonic()
    model = onnx_model.load(onnx_path)

    graph_def = tf_graph.load_graph_def(pb)
    size = (cfg.image_height, cfg.image_width)
    heads = ssd_surgery.find_heads(graph_def, pb.name)
    probe = ssd_surgery.replace_input(graph_def, tf_spec.internal.get("normalized_input", "Preprocessor/sub"),
                                      [1, *size, 3], pb.name)
    maps, _, _, _ = ssd_surgery.head_shapes(probe, heads, [1, *size, 3], pb.name)
    anchors = generate_anchors(cfg.anchors, maps, size)
    anchor_name = tf_spec.internal.get("anchors")
    graph_anchors = graph_anchor_tensor(pb, anchor_name, tf_spec.inputs[0].name, size) if anchor_name else None
    if graph_anchors is not None:
        check_against_graph(anchors, graph_anchors, f"{pb.name}: {anchor_name}")
    route = rewrite(model, cfg, anchors, normalized=tf_spec.internal.get("normalized_input", "Preprocessor/sub"),
                    score_threshold=score, iou_threshold=iou, per_class=cfg.nms.max_detections_per_class, keep=keep,
                    where=onnx_path.name)
    dest = onnx_model.save(route.model, rin.workdir / "model.onnx")
    prototxt = save_meta_arch(route.meta, rin.workdir / PROTOTXT)
    seconds = time.monotonic() - t0

    spec = card.preprocess
    tol = detection_tolerances(card, rin.tolerances)
    original = od_api_detector(pb, spec, card, cfg.nms.score_threshold, "pipeline.config")
    original.domain.slots = cfg.nms.max_total_detections
    tidl = meta_arch_detector(dest, route.meta, spec)
    chosen = chosen_limits(rin.params, ONNX_PARAMS)
    report = compare_detectors(original, tidl, _images(), tol, standin=rin.standin, chosen=chosen)
    ort = compare_detectors(original, od_api_detector(dest, spec), _images(), tol, standin=rin.standin,
                            chosen=chosen)
    for check in ort.checks:
        report.add(f"onnx_runtime: {check.name}", check.value, check.limit, check.kind)
    report.metrics["onnx_runtime"] = ort.metrics["detection"]
    report.metrics["route"] = {**route.figures, "seconds": round(seconds, 3)}
    report.notes += [n for n in route.notes if n not in report.notes]
    report.converted = f"{dest.name} + {prototxt.name}"
    return RecipeOutput(
        model=dest, verify=report, extra_files={PROTOTXT: prototxt},
        cut=list(route.meta.caffe_ssd[0].box_input + route.meta.caffe_ssd[0].class_input),
        cut_reason="TIDL ONNX SSD: heads described by meta_arch.prototxt (meta_arch_type 3)",
        runtime_options=ssd_runtime_options(META_ARCH_ONNX_SSD, confidence=score, nms=iou,
                                            top_k=route.figures["priors"], keep_top_k=keep, prototxt=PROTOTXT),
        config=tail_ti_config(score),
        params={"score_threshold": score, "iou_threshold": iou, "keep_top_k": keep,
                "input": INPUT_NAME, "code_type": "CENTER_SIZE_YXHW", "data_layout": "SEPARATED"},
        original=pb, notes=list(route.notes))


def tail_ti_config(score_threshold: float) -> dict[str, Any]:
    """TI's config for the tail's outputs: boxes (ymin, xmin, ymax, xmax), scores, classes (COCO ids), count; TI's
    detection threshold = the tail's own score threshold (TI's pipeline then keeps what the model keeps)."""
    boxes, labels, scores = (onnx_ssd_tail.OUTPUTS.index(n) for n in
                             ("detection_boxes", "detection_classes", "detection_scores"))
    return {"preprocess": {"data_layout": "NCHW"}, "session": {"input_data_layout": "NCHW"},
            "postprocess": detection_postprocess(formatter=YXYX_TO_XYXY, shuffle_indices=[boxes, labels, scores],
                                                 threshold=score_threshold),
            "metric": {"label_offset_pred": 0}}


def _images() -> list[tuple[str, np.ndarray]]:
    return verification_images()
