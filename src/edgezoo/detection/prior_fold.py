"""Fold the prior sizes Caffe semantics cannot express into the box head, so TIDL decodes MLPerf's boxes exactly.

MLPerf clamps its default boxes to [0, 1]; a prototxt can only describe unclamped Caffe priors, so the last head's
2:1 and 1:2 boxes are 1.2304 wide in TIDL and 1.0 in MLPerf. With CENTER_SIZE coding

    cx = pcx + v0 * dx * pw        w = pw * exp(v2 * dw)

a prior width pw_tidl = pw_mlperf / r decodes like pw_mlperf when dx is scaled by r and dw shifted by ln(r) / v2
(the same for y/h). Both are affine in the conv output, so they go into the box conv's weights and bias: per anchor
and coordinate channel, exactly, at every location. Only size ratios that are the same at every location can be
folded (clamping of sizes is; centre differences are not, and are left alone and reported).

The graph's own post-processing still decodes with MLPerf's boxes, so after folding model.onnx's in-graph outputs
differ from the original's for the affected priors; TIDL replaces that part, and the verification compares the
prototxt's detections with the ORIGINAL model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgezoo.detection.priors import DefaultBoxSpec, mlperf_default_boxes, tidl_priors
from edgezoo.detection.prototxt import CaffeSsd, CodeType, DataLayout
from edgezoo.errors import RecipeError
from edgezoo.graphs.onnx_heads import HeadSet


@dataclass
class FoldResult:
    anchors: list[tuple[int, int, float, float]] = field(default_factory=list)  # (head, anchor, w ratio, h ratio)
    priors: int = 0  # priors whose decoding changed
    unfoldable: list[str] = field(default_factory=list)  # differences left as they are (e.g. centres)


def _mlperf_per_head(spec: DefaultBoxSpec) -> list[np.ndarray]:
    """MLPerf boxes as [H, W, A, 4] per head (they are stored anchor-major)."""
    boxes = mlperf_default_boxes(spec)
    out, start = [], 0
    for a, (fh, fw) in zip(spec.boxes_per_location(), spec.feature_sizes()):
        n = a * fh * fw
        out.append(boxes[start:start + n].reshape(a, fh, fw, 4).transpose(1, 2, 0, 3))
        start += n
    return out


def fold_clamped_priors(model: Any, heads: HeadSet, ssd: CaffeSsd, spec: DefaultBoxSpec) -> tuple[Any, FoldResult]:
    """A copy of `model` whose box convs absorb per-anchor size ratios MLPerf / TIDL (see the module docstring)."""
    import onnx
    from onnx import numpy_helper

    dop = ssd.detection_output_param
    if dop is None or dop.code_type is not CodeType.CENTER_SIZE:
        raise RecipeError("folding priors into the heads needs code_type CENTER_SIZE")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {i.name: i for i in out.graph.initializer}
    producers = {n.output[0]: n for n in out.graph.node if n.output}
    result = FoldResult()
    for k, (head, mlperf) in enumerate(zip(heads.heads, _mlperf_per_head(spec))):
        param = ssd.prior_box_param[k]
        tidl = tidl_priors(param, mlperf.shape[:2], param.image_size(ssd.in_height, ssd.in_width))  # type: ignore
        if tidl.shape != mlperf.shape:
            raise RecipeError(f"head {k}: TIDL priors {tidl.shape} and MLPerf boxes {mlperf.shape} do not align")
        if np.abs(tidl[..., :2] - mlperf[..., :2]).max() > 1e-5:
            result.unfoldable.append(f"head {k}: centres differ by up to "
                                     f"{np.abs(tidl[..., :2] - mlperf[..., :2]).max():.3g}")
        ratio = mlperf[..., 2:] / tidl[..., 2:]  # [H, W, A, 2]
        conv = producers[head.box_tensor]
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        if len(conv.input) > 2 and conv.input[2]:
            b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
        else:
            b = np.zeros(w.shape[0])
        a_count = head.boxes_per_location
        changed = False
        for a in range(a_count):
            r = ratio[:, :, a, :].reshape(-1, 2)
            if np.allclose(r, 1.0, atol=1e-7):
                continue
            if np.ptp(r, axis=0).max() > 1e-6:
                result.unfoldable.append(f"head {k}, anchor {a}: size ratio varies with the location")
                continue
            rw, rh = float(r[0, 0]), float(r[0, 1])
            channel = (lambda c: c * a_count + a) if heads.layout is DataLayout.INTERLEAVED else \
                (lambda c: a * 4 + c)
            for coord, scale in ((0, rw), (1, rh)):  # centre offsets scale with the prior size
                w[channel(coord)] *= scale
                b[channel(coord)] *= scale
            b[channel(2)] += np.log(rw) / param.variance[2]
            b[channel(3)] += np.log(rh) / param.variance[3]
            result.anchors.append((k, a, rw, rh))
            result.priors += ratio.shape[0] * ratio.shape[1]
            changed = True
        if not changed:
            continue
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(w.astype(np.float32), conv.input[1]))
        if len(conv.input) > 2 and conv.input[2]:
            inits[conv.input[2]].CopyFrom(numpy_helper.from_array(b.astype(np.float32), conv.input[2]))
        else:
            name = f"{conv.input[1]}_folded_bias"
            out.graph.initializer.append(numpy_helper.from_array(b.astype(np.float32), name))
            conv.input.append(name)
    return out, result
