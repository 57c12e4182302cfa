"""Accuracy evaluation with MLPerf semantics: scoring (metrics), LoadGen-format accuracy logs (accuracy_log)."""
