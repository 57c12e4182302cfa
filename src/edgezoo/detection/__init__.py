"""Detection building blocks: boxes, anchors/priors, box coding, NMS references, configs and meta-arch prototxts."""
