"""SSD structure in graphs, for any exporter: finding heads and in-graph decoding (ONNX), the TF Object Detection
API surgery (new input, TFLite_Detection_PostProcess), frozen OD API graphs, and the post-processing tail that keeps
a cut ONNX SSD runnable."""
