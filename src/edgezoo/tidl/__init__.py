"""TIDL target knowledge: which operators TIDL runs (tidl.md), and the check that finds where a graph must be cut."""
