"""Accuracy with MLPerf semantics: subjects (what is evaluated), the engine (parallel preprocessing, in-order
inference), metrics and LoadGen's accuracy log, `evaluate` (api) and the LoadGen system-under-test (loadgen_sut).

Heavy libraries load inside the functions that use them."""
