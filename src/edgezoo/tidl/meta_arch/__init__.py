"""TIDL's meta-architecture (caffe_ssd): prototxt read/write, validate, generate, a reference executor, verification,
Caffe PriorBox priors and the fits/folds/permutations that make TIDL's priors equal a graph's own."""
