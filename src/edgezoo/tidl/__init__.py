"""TIDL target knowledge: which operators TIDL runs (tidl.md), the check that finds where a graph must be cut, TI's
config.yaml contract, and the caffe_ssd meta-architecture TIDL appends after a detector's heads (meta_arch/)."""
