"""What is generic to detectors: boxes, TF OD API anchors and pipeline.config, protobuf text format, NMS references."""
