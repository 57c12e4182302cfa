"""Images -> model inputs: a card's preprocess section (card), MLPerf's per-model pipelines bit for bit (mlperf), and
a bundle's config.yaml preprocessing (bundle). Heavy libraries load inside the functions."""
