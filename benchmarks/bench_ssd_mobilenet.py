"""Figures: SSD-MobileNet v1 on the FULL-size stand-in (or --variant reduced).

Usage: .venv/bin/python benchmarks/bench_ssd_mobilenet.py [--variant full|reduced] [--runs N]

Tables printed:
1. export wall time: the TFLite recipe (surgery + conversion, then + detection parity) and the ONNX route (head
   rewrite + prototxt, then + parity through the prototxt semantics and ONNX Runtime); stand-ins are built (and
   cached) before timing; TensorFlow/ORT/LiteRT are imported before the clock starts;
2. latency per image, same process, same images (the card's 300x300 input): the original frozen graph (its own
   NMS, TF session with 2 intra-op threads) vs the TFLite model (LiteRT, 1 and 2 threads) vs the ONNX route model
   (ONNX Runtime, 2 threads); median of N runs per image;
3. the numpy reference post-processing vs the LiteRT kernel on the same head tensors (the model's own, from real
   photographs), regular and fast NMS, 1 thread;
4. detection parity figures of both routes against the frozen graph, plus what a "usual" hand-written prototxt
   (no head rewrite: layer 0 as one min_size, ratios 2 and 3 with flip) gets on the unmodified heads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import median_ms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _preload() -> None:
    import ai_edge_litert.interpreter  # noqa: F401
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import tensorflow  # noqa: F401


def _sources(variant: str, root: Path) -> dict[str, Path]:
    from edgezoo.standins import StandinVariant
    from edgezoo.standins import ssd_mobilenet as S
    from edgezoo.standins.ssd_mobilenet_config import PIPELINE_CONFIG
    from edgezoo.standins.tf_build import write_graph_def

    t0 = time.perf_counter()
    pb = write_graph_def(S.build_ssd_graph(StandinVariant(variant), 0), root / "frozen_inference_graph.pb")
    (root / "pipeline.config").write_text(PIPELINE_CONFIG)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    onnx_path = root / "ssd_mobilenet_v1_coco_2018_01_28.onnx"
    opset = S.convert_graph_to_onnx(pb, onnx_path)
    print(f"stand-in ({variant}): frozen graph {pb.stat().st_size / 1e6:.1f} MB built in {built:.1f} s; "
          f"ONNX (tf2onnx opset {opset}) {onnx_path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
    return {"pb": pb, "config": root / "pipeline.config", "onnx": onnx_path}


def _rin(src: dict[str, Path], workdir: Path, target: str):
    from edgezoo import zoo
    from edgezoo.recipes.base import RecipeInput
    from edgezoo.standins.ssd_mobilenet import CONFIG_MEMBER, GRAPH_MEMBER
    from edgezoo.zoo.schema import Target

    card = zoo.get_card("ssd-mobilenet-v1")
    archive = card.format("tf").file
    sources = {f"{archive}::{GRAPH_MEMBER}": src["pb"], f"{archive}::{CONFIG_MEMBER}": src["config"],
               card.format("onnx").file: src["onnx"]}
    workdir.mkdir(parents=True, exist_ok=True)
    return RecipeInput(card=card, target=Target(target), sources=sources, params=dict(card.recipe(target).params),
                       workdir=workdir, standin=True, tolerances=dict(card.tolerances))


def table(headers, rows) -> str:
    from edgezoo.core.report import render_table

    return render_table(headers, rows)


def bench_export(src, root, runs):
    from edgezoo import zoo
    from edgezoo.detection.pipeline_config import load_pipeline_config
    from edgezoo.recipes import get_recipe
    from edgezoo.recipes.ssd_mobilenet import build_tflite, resolve_options

    card = zoo.get_card("ssd-mobilenet-v1")
    cfg = load_pipeline_config(src["config"])
    rows, outputs = [], {}
    conv = []
    for k in range(runs):
        (root / f"conv{k}").mkdir()
        t0 = time.perf_counter()
        build_tflite(src["pb"], cfg, resolve_options({}, cfg, []), card, root / f"conv{k}", [])
        conv.append(time.perf_counter() - t0)
    rows.append(["tflite: surgery + anchors check + conversion", statistics.median(conv), min(conv)])
    for target, label in (("tflite", "tflite: recipe incl. parity (6 images)"),
                          ("onnx", "onnx: head rewrite + prototxt + parity x2")):
        times = []
        for k in range(runs):
            rin = _rin(src, root / f"{target}{k}", target)
            t0 = time.perf_counter()
            outputs[target] = get_recipe(card.recipe(target).name)(rin)
            times.append(time.perf_counter() - t0)
        rows.append([label, statistics.median(times), min(times)])
    print(table(["export step", "median s", "min s"], rows))
    return outputs


def bench_latency(src, outputs, runs):
    from ai_edge_litert.interpreter import Interpreter

    from edgezoo import zoo
    from edgezoo.datasets import images
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.graphs.runners import load_runner
    from edgezoo.standins.ssd_mobilenet import OUTPUTS

    card = zoo.get_card("ssd-mobilenet-v1")
    pics = images.photographs()
    tf_runner = load_runner(src["pb"], outputs=list(OUTPUTS))
    onnx_runner = load_runner(outputs["onnx"].model)
    interps = {}
    for threads in (1, 2):
        it = Interpreter(model_path=str(outputs["tflite"].model), num_threads=threads)
        it.allocate_tensors()
        interps[threads] = it
    per = {"frozen graph (TF, 2 threads)": [], "TFLite (LiteRT, 1 thread)": [], "TFLite (LiteRT, 2 threads)": [],
           "ONNX route (ORT, 2 threads)": []}
    for _, image in pics:
        u8 = preprocess(image, card.preprocess, dtype="uint8")
        f32 = preprocess(image, card.preprocess, dtype="float32")
        nchw = preprocess(image, card.preprocess, dtype="float32", layout="NCHW")
        per["frozen graph (TF, 2 threads)"].append(median_ms(lambda: tf_runner.run({"image_tensor": u8}), runs))
        for threads, it in interps.items():
            def run(it=it):
                it.set_tensor(it.get_input_details()[0]["index"], f32)
                it.invoke()
            per[f"TFLite (LiteRT, {threads} thread{'s' if threads > 1 else ''})"].append(median_ms(run, runs))
        per["ONNX route (ORT, 2 threads)"].append(
            median_ms(lambda: onnx_runner.run({onnx_runner.inputs[0].name: nchw}), runs))
    base = statistics.median(per["frozen graph (TF, 2 threads)"])
    rows = [[name, statistics.median(v), min(v), max(v), statistics.median(v) / base] for name, v in per.items()]
    print(table(["model (same 4 photographs, 300x300 input)", "median ms", "min ms", "max ms", "vs frozen graph"],
                rows))


def bench_postprocess(outputs, runs, root):
    import warnings

    from ai_edge_litert.interpreter import Interpreter

    from edgezoo import zoo
    from edgezoo.datasets import images
    from edgezoo.detection.tflite_postprocess import PostProcessParams, detection_postprocess
    from edgezoo.ssd import ssd_surgery
    from edgezoo.preprocessing.card import preprocess

    card = zoo.get_card("ssd-mobilenet-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        full = Interpreter(model_path=str(outputs["tflite"].model), num_threads=1,
                           experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    index = {d["name"]: d["index"] for d in full.get_tensor_details()}
    heads = []
    for _, image in images.photographs():
        full.set_tensor(full.get_input_details()[0]["index"], preprocess(image, card.preprocess, dtype="float32"))
        full.invoke()
        heads.append(tuple(np.array(full.get_tensor(index[n])) for n in
                           (ssd_surgery.BOX_OUTPUT, ssd_surgery.CLASS_OUTPUT, ssd_surgery.ANCHORS_NAME)))
    rows = []
    for regular in (True, False):
        params = PostProcessParams(max_detections=4000 if regular else 100, nms_score_threshold=0.3,
                                   nms_iou_threshold=0.6, num_classes=90, use_regular_nms=regular)
        path = ssd_surgery.standalone_postprocess_tflite(params, heads[0][0].shape[1], heads[0][1].shape[2],
                                                         root / f"pp_{regular}.tflite", root)
        kernel = Interpreter(model_path=str(path), num_threads=1)
        kernel.allocate_tensors()
        kin = {d["name"]: d["index"] for d in kernel.get_input_details()}
        ref_ms, ker_ms, same = [], [], 0
        for box, cls, anc in heads:
            def run_kernel():
                kernel.set_tensor(kin[ssd_surgery.BOX_OUTPUT], box)
                kernel.set_tensor(kin[ssd_surgery.CLASS_OUTPUT], cls)
                kernel.set_tensor(kin[ssd_surgery.ANCHORS_NAME], anc)
                kernel.invoke()
            ref_ms.append(median_ms(lambda: detection_postprocess(box, cls, anc, params), runs))
            ker_ms.append(median_ms(run_kernel, runs))
            ref = detection_postprocess(box, cls, anc, params)
            out = kernel.get_output_details()
            n = int(kernel.get_tensor(out[3]["index"])[0])
            same += int(n == ref.num_detections and np.array_equal(kernel.get_tensor(out[0]["index"])[0][:n],
                                                                   ref.boxes[:n]))
        r, k = statistics.median(ref_ms), statistics.median(ker_ms)
        rows.append(["regular (max 4000)" if regular else "fast (max 100)", r, k, r / k, f"{same}/{len(heads)}"])
    print(table(["NMS", "numpy ref ms", "LiteRT kernel ms", "ratio", "identical outputs"], rows))


def _naive_parity(src):
    """A 'usual' hand-written caffe_ssd on the UNMODIFIED heads: layer 0 one min_size (60) with ratios 2/0.5,
    layers 1-5 min/max with aspect_ratio 2, 3 and flip (Caffe order, 1/3)."""
    from edgezoo import zoo
    from edgezoo.datasets import images
    from edgezoo.detection.anchors import layer_scales
    from edgezoo.detection.pipeline_config import load_pipeline_config
    from edgezoo.graphs import onnx_model
    from edgezoo.preprocessing.card import preprocess
    from edgezoo.recipes.ssd_mobilenet_onnx import _cut_input
    from edgezoo.tidl.meta_arch.execute import MetaArchExecutor
    from edgezoo.detection.codings import CodeType, DataLayout, ScoreConverter
    from edgezoo.tidl.meta_arch.prototxt import CaffeSsd, DetectionOutputParam, NmsParam, PriorBoxParam
    from edgezoo.verify.detection import compare_detectors, detection_tolerances
    from edgezoo.verify.detectors import Detector, Domain, od_api_detector
    import onnxruntime as ort

    card = zoo.get_card("ssd-mobilenet-v1")
    cfg = load_pipeline_config(src["config"])
    s = [x * 300 for x in layer_scales(cfg.anchors)]
    grids = (19, 10, 5, 3, 2, 1)
    var = (0.1, 0.1, 0.2, 0.2)
    params = [PriorBoxParam(min_size=(s[0],), aspect_ratio=(2.0,), flip=True, variance=var, step=300 / grids[0])]
    params += [PriorBoxParam(min_size=(s[i],), max_size=(s[i + 1],), aspect_ratio=(2.0, 3.0), flip=True, variance=var,
                             step=300 / grids[i]) for i in range(1, 6)]
    heads_box = [f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd:0" for i in range(6)]
    heads_cls = [f"BoxPredictor_{i}/ClassPredictor/BiasAdd:0" for i in range(6)]
    ssd = CaffeSsd(box_input=tuple(heads_box), class_input=tuple(heads_cls), in_width=300, in_height=300,
                   score_converter=ScoreConverter.SIGMOID, prior_box_param=tuple(params),
                   detection_output_param=DetectionOutputParam(
                       num_classes=91, background_label_id=0, nms_param=NmsParam(nms_threshold=0.6, top_k=2000),
                       code_type=CodeType.CENTER_SIZE_YXHW, keep_top_k=100, confidence_threshold=0.3),
                   data_layout=DataLayout.SEPARATED)
    model = _cut_input(onnx_model.fix_batch(onnx_model.load(src["onnx"]), 1), "Preprocessor/sub", (300, 300), "onnx")
    model = onnx_model.cut(model, heads_box + heads_cls, "onnx")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    executor = MetaArchExecutor(ssd)

    def run(image):
        x = preprocess(image, card.preprocess, dtype="float32", layout="NCHW")
        out = dict(zip(heads_box + heads_cls, sess.run(heads_box + heads_cls, {sess.get_inputs()[0].name: x})))
        return executor([out[n] for n in heads_box], [out[n] for n in heads_cls]).detections()

    original = od_api_detector(src["pb"], card.preprocess, card, cfg.nms.score_threshold, "pipeline.config")
    original.domain.slots = 100
    naive = Detector("usual prototxt", run, Domain(0.3, 100))
    return compare_detectors(original, naive, images.verification_images(), detection_tolerances(card, None))


def bench_parity(src, outputs):
    rows = []

    def add(label, report, prefix=""):
        c = {x.name: x.value for x in report.checks}
        det = report.metrics["detection"] if not prefix else report.metrics["onnx_runtime"]
        rows.append([label, int(c[prefix + "original_detections"]), c[prefix + "matched_fraction_of_original"],
                     c[prefix + "matched_fraction_of_converted"], c[prefix + "max_box_error"],
                     c[prefix + "max_score_error"],
                     sum(len(i["unmatched_original"]) + len(i["unmatched_converted"]) for i in det["images"]),
                     det["total_clipped"]])

    add("TFLite (regular NMS, 4000)", outputs["tflite"].verify)
    from edgezoo.recipes import get_recipe

    with tempfile.TemporaryDirectory() as tmp:
        rin = _rin(src, Path(tmp), "tflite")
        fast = get_recipe("ssd-tf-to-tflite-postprocess")(
            type(rin)(**{**rin.__dict__, "params": {**rin.params, "nms": "fast", "max_detections": 100}}))
    add("TFLite (fast NMS, 100)", fast.verify)
    add("ONNX route: prototxt semantics (TIDL)", outputs["onnx"].verify)
    add("ONNX route: ONNX Runtime tail", outputs["onnx"].verify, "onnx_runtime: ")
    add("usual hand-written prototxt, heads as published", _naive_parity(src))
    print(table(["converted (vs frozen graph, 6 images)", "orig dets", "matched of orig", "matched of conv",
                 "worst box err", "worst score err", "unmatched", "conv boxes clipped"], rows))
    route = outputs["onnx"].verify.metrics["route"]
    print(f"ONNX route priors vs TF anchors: max abs diff {route['priors_max_abs_diff_vs_tf_anchors']:.2e} over "
          f"{route['priors'] - route['dummy_priors']} priors ({route['dummy_priors']} dummy priors never fire); "
          f"LiteRT regular NMS classes lost on 2 threads: "
          f"{outputs['tflite'].verify.metrics.get('litert_regular_nms_skipped_classes_with_2_threads')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=("full", "reduced"), default="full")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    _preload()
    with tempfile.TemporaryDirectory(prefix="bench-ssd-") as tmp:
        root = Path(tmp)
        src = _sources(args.variant, root)
        print("\n1. export")
        outputs = bench_export(src, root, max(1, args.runs // 2 + 1))
        print("\n2. latency per image")
        bench_latency(src, outputs, max(5, args.runs * 3))
        print("\n3. post-processing: numpy reference vs LiteRT kernel (same head tensors, 4 photographs)")
        bench_postprocess(outputs, root=root, runs=max(5, args.runs * 3))
        print("\n4. detection parity vs the frozen graph")
        bench_parity(src, outputs)


if __name__ == "__main__":
    main()
