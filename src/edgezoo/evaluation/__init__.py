"""Accuracy evaluation with MLPerf semantics: scoring (metrics), LoadGen-format accuracy logs (accuracy_log),
subjects (what is evaluated), the engine (parallel preprocessing, in-order inference), `evaluate` (api) and the
LoadGen system-under-test (loadgen_sut). Heavy libraries load inside the functions that use them."""
