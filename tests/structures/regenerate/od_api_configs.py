"""pipeline.config texts for the OD API structures, composed from the published configurations' model settings.

The settings (feature extractor, box predictor, anchors, resizer, box coder, post-processing) are those of the OD
API's own sample configs for COCO (research/object_detection/samples/configs and configs/tf2 in
tensorflow/models); the training sections are reduced to what a published pipeline.config carries.
"""

from __future__ import annotations

from dataclasses import dataclass

_BATCH_NORM = "batch_norm {{ train: true, scale: true, center: true, decay: {decay}, epsilon: 0.001 }}"


def _hyperparams(*, init: str, batch_norm_decay: float | None, stddev: float) -> str:
    initializer = (f"truncated_normal_initializer {{ stddev: {stddev} mean: 0.0 }}" if init == "truncated"
                   else f"random_normal_initializer {{ stddev: {stddev} mean: 0.0 }}")
    bn = "" if batch_norm_decay is None else _BATCH_NORM.format(decay=batch_norm_decay)
    return (f"conv_hyperparams {{ activation: RELU_6, regularizer {{ l2_regularizer {{ weight: 0.00004 }} }} "
            f"initializer {{ {initializer} }} {bn} }}")


@dataclass(frozen=True)
class OdApiModel:
    """The model section of an SSD pipeline.config."""

    extractor: str  # feature_extractor type
    size: int = 300
    classes: int = 90
    # anchors: ssd_anchor_generator (num_layers 6) or multiscale (FPN)
    min_scale: float = 0.2
    reduce_lowest: bool = True
    multiscale: tuple[int, int] | None = None  # (min_level, max_level)
    # box predictor
    shared: bool = False  # weight_shared_convolutional_box_predictor
    kernel_size: int = 1
    predictor_depthwise: bool = False
    predictor_batch_norm: bool = True
    shared_depth: int = 256
    layers_before_predictor: int = 0
    share_tower: bool = False
    extractor_depthwise: bool = False
    override_base_hyperparams: bool = False
    init: str = "truncated"
    stddev: float = 0.03
    bn_decay: float = 0.9997
    focal: bool = False
    focal_alpha: float = 0.25
    fpn: tuple[int, int, int] | None = None  # TF2 FPN extractors: (min_level, max_level, additional_layer_depth)
    shared_depthwise: bool = False  # weight-shared predictor with separable convs (FPN-lite)
    class_bias_init: float | None = None  # convolutional_box_predictor's class_prediction_bias_init
    predictor_bn_decay: float | None = None  # when the box predictor's batch norm decay differs

    def text(self) -> str:
        hp = _hyperparams(init=self.init, batch_norm_decay=self.bn_decay, stddev=self.stddev)
        predictor_hp = _hyperparams(init=self.init, stddev=self.stddev,
                                    batch_norm_decay=(self.predictor_bn_decay or self.bn_decay)
                                    if self.predictor_batch_norm else None)
        if self.multiscale:
            anchors = (f"multiscale_anchor_generator {{ min_level: {self.multiscale[0]} max_level: "
                       f"{self.multiscale[1]} anchor_scale: 4.0 aspect_ratios: [1.0, 2.0, 0.5] "
                       f"scales_per_octave: 2 }}")
        else:
            ratios = " ".join(f"aspect_ratios: {r}" for r in ("1.0", "2.0", "0.5", "3.0", "0.3333"))
            reduce = "" if self.reduce_lowest else " reduce_boxes_in_lowest_layer: false"
            anchors = (f"ssd_anchor_generator {{ num_layers: 6 min_scale: {self.min_scale} max_scale: 0.95 "
                       f"{ratios}{reduce} }}")
        if self.shared:
            tower = " share_prediction_tower: true" if self.share_tower else ""
            tower += " use_depthwise: true" if self.shared_depthwise else ""
            predictor = (f"weight_shared_convolutional_box_predictor {{ depth: {self.shared_depth} "
                         f"class_prediction_bias_init: -4.6 {predictor_hp} num_layers_before_predictor: "
                         f"{self.layers_before_predictor} kernel_size: {self.kernel_size}{tower} }}")
        else:
            depthwise = " use_depthwise: true" if self.predictor_depthwise else ""
            if self.class_bias_init is not None:
                depthwise += f" class_prediction_bias_init: {self.class_bias_init}"
            predictor = (f"convolutional_box_predictor {{ min_depth: 0 max_depth: 0 num_layers_before_predictor: 0 "
                         f"use_dropout: false dropout_keep_probability: 0.8 kernel_size: {self.kernel_size}"
                         f"{depthwise} box_code_size: 4 apply_sigmoid_to_scores: false {predictor_hp} }}")
        extractor = f"type: '{self.extractor}' min_depth: 16 depth_multiplier: 1.0"
        if self.extractor_depthwise:
            extractor += " use_depthwise: true"
        if self.fpn:
            extractor += (f" fpn {{ min_level: {self.fpn[0]} max_level: {self.fpn[1]} "
                          f"additional_layer_depth: {self.fpn[2]} }}")
        extractor += f" {hp}"
        if self.override_base_hyperparams:
            extractor += " override_base_feature_extractor_hyperparams: true"
        loss = (f"classification_loss {{ weighted_sigmoid_focal {{ alpha: {self.focal_alpha} gamma: 2.0 }} }}"
                if self.focal else
                "classification_loss { weighted_sigmoid { } } hard_example_miner { num_hard_examples: 3000 "
                "iou_threshold: 0.99 loss_type: CLASSIFICATION max_negatives_per_positive: 3 "
                "min_negatives_per_image: 3 }")
        background = " encode_background_as_zeros: true" if self.shared or self.focal else ""
        return f"""model {{
  ssd {{
    num_classes: {self.classes}
    box_coder {{ faster_rcnn_box_coder {{ y_scale: 10.0 x_scale: 10.0 height_scale: 5.0 width_scale: 5.0 }} }}
    matcher {{ argmax_matcher {{ matched_threshold: 0.5 unmatched_threshold: 0.5 ignore_thresholds: false
      negatives_lower_than_unmatched: true force_match_for_each_row: true }} }}
    similarity_calculator {{ iou_similarity {{ }} }}{background}
    anchor_generator {{ {anchors} }}
    image_resizer {{ fixed_shape_resizer {{ height: {self.size} width: {self.size} }} }}
    box_predictor {{ {predictor} }}
    feature_extractor {{ {extractor} }}
    loss {{ {loss} localization_loss {{ weighted_smooth_l1 {{ }} }} classification_weight: 1.0
      localization_weight: 1.0 }}
    normalize_loss_by_num_matches: true
    post_processing {{
      batch_non_max_suppression {{ score_threshold: 1e-8 iou_threshold: 0.6 max_detections_per_class: 100
        max_total_detections: 100 }}
      score_converter: SIGMOID
    }}
  }}
}}
"""


def pipeline_text(model: OdApiModel) -> str:
    """A whole pipeline.config as the published tarballs carry it (training paths left to be configured)."""
    return model.text() + """train_config {
  batch_size: 24
  optimizer { rms_prop_optimizer { learning_rate { exponential_decay_learning_rate {
    initial_learning_rate: 0.004 decay_steps: 800720 decay_factor: 0.95 } }
    momentum_optimizer_value: 0.9 decay: 0.9 epsilon: 1.0 } }
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt"
  num_steps: 200000
  data_augmentation_options { random_horizontal_flip { } }
  data_augmentation_options { ssd_random_crop { } }
}
train_input_reader {
  tf_record_input_reader { input_path: "PATH_TO_BE_CONFIGURED/mscoco_train.record" }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
}
eval_config { num_examples: 8000 max_evals: 10 }
eval_input_reader {
  tf_record_input_reader { input_path: "PATH_TO_BE_CONFIGURED/mscoco_val.record" }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
  shuffle: false
  num_readers: 1
}
"""


# The TF1 structures: published COCO configurations (model sections), some at a smaller input for fast tests.
TF1 = {
    "tf1-ssd_mobilenet_v1_coco": OdApiModel("ssd_mobilenet_v1", kernel_size=1),
    "tf1-ssd_mobilenet_v2_coco": OdApiModel("ssd_mobilenet_v2", kernel_size=3, extractor_depthwise=True),
    "tf1-ssdlite_mobilenet_v2_coco": OdApiModel("ssd_mobilenet_v2", kernel_size=3, predictor_depthwise=True,
                                               extractor_depthwise=True),
    "tf1-ssd_mobilenet_v1_ppn_coco": OdApiModel(
        "ssd_mobilenet_v1_ppn", min_scale=0.15, reduce_lowest=False, shared=True, kernel_size=1, shared_depth=512,
        layers_before_predictor=1, share_tower=True, override_base_hyperparams=True, init="normal",
        stddev=0.01, bn_decay=0.97, focal=True),
    "tf1-ssd_mobilenet_v1_fpn_640": OdApiModel(
        "ssd_mobilenet_v1_fpn", size=640, multiscale=(3, 7), shared=True, kernel_size=3, shared_depth=256,
        layers_before_predictor=4, override_base_hyperparams=True, init="normal", stddev=0.01, bn_decay=0.997,
        focal=True),
    "tf1-ssd_mobilenet_v1_fpn_320": OdApiModel(
        "ssd_mobilenet_v1_fpn", size=320, multiscale=(3, 7), shared=True, kernel_size=3, shared_depth=256,
        layers_before_predictor=4, override_base_hyperparams=True, init="normal", stddev=0.01, bn_decay=0.997,
        focal=True),
    "tf1-ssd_inception_v2_coco": OdApiModel("ssd_inception_v2", kernel_size=3, predictor_batch_norm=False,
                                            override_base_hyperparams=True),
}


# The TF2 Detection Zoo structures (configs/tf2): note the "320x320" MobileNet v2 SSD resizes to 300x300.
TF2 = {
    "tf2-ssd_mobilenet_v2_320x320_coco17": OdApiModel(
        "ssd_mobilenet_v2_keras", kernel_size=1, class_bias_init=-4.6, init="normal", stddev=0.01, bn_decay=0.97,
        override_base_hyperparams=True, focal=True, focal_alpha=0.75),
    "tf2-ssd_mobilenet_v2_fpnlite_320x320_coco17": OdApiModel(
        "ssd_mobilenet_v2_fpn_keras", size=320, multiscale=(3, 7), shared=True, kernel_size=3, shared_depth=128,
        layers_before_predictor=4, share_tower=True, shared_depthwise=True, extractor_depthwise=True,
        fpn=(3, 7, 128), override_base_hyperparams=True, init="normal", stddev=0.01, bn_decay=0.997, focal=True),
}
