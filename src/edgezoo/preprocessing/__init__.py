"""Images -> model inputs. Every step is in `steps`, once, in MLPerf's or TI's arithmetic (`steps.Arithmetic`); the
sources of a pipeline are thin readers over it: a card's preprocess section (card), MLPerf's per-model pipelines bit
for bit (mlperf), a bundle's config.yaml with MLPerf's arithmetic (bundle) and the same config.yaml with TI's
edgeai-benchmark arithmetic (ti). Heavy libraries load inside the functions."""
