"""Which structures the default test run calibrates, and pytest parameters that say so.

Calibrating a structure runs it layer by layer on photographs: a few CPU seconds for a PyTorch MobileNet or
ResNet18, 6-14 s for a TF1 OD API graph, 15-20 s for a TF2 SavedModel, ~25 s for VGG; the tests of realism then
run it again, TF2's convert it to TFLite. The default run calibrates one structure per family (the TF2 one excepted:
its SavedModel checks are the heaviest of all) and checks every other structure's graph with plain weights
(`materialize(..., weights=False)`); realism tests on the others are fullsize. Full-size structures are fullsize in
every form.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.structures.catalog import STRUCTURES

CALIBRATED_BY_DEFAULT = frozenset({
    "nvidia-ssd300-r18-onnxnms",  # NVIDIA / MLPerf-style PyTorch SSD: the NMS-limit case
    "tv-ssdlite320-c21",  # torchvision
    "tf1-ssd_mobilenet_v1_ppn_coco",  # TF1 OD API (and its tflite_graph.pb): weight-shared tower, per-level norms
})


def weights_source(name: str) -> str:
    """The structure whose calibration gives `name` its weights (a tflite_graph.pb shares its export's)."""
    return STRUCTURES[name].manifest.get("weights_from", {}).get("structure", name)


def calibrated_by_default(name: str) -> bool:
    return not STRUCTURES[name].fullsize and weights_source(name) in CALIBRATED_BY_DEFAULT


def params(names: Iterable[str], weights: bool = True) -> list:
    """One pytest parameter per structure: fullsize when the structure is full-size, or when the test needs
    calibrated weights and the default run does not calibrate that structure."""
    out = []
    for name in names:
        heavy = STRUCTURES[name].fullsize or (weights and not calibrated_by_default(name))
        out.append(pytest.param(name, marks=[pytest.mark.fullsize] if heavy else [], id=name))
    return out


def weight_params(names: Iterable[str]) -> list:
    """(name, weights) pytest parameters for a test of the materialised structure itself: every structure with plain
    weights, and calibrated as `params` allows (the same graph, the refill must not change it)."""
    out = []
    for weights in (False, True):
        for param in params(names, weights):
            (name,) = param.values
            out.append(pytest.param(name, weights, marks=param.marks,
                                    id=f"{name}-{'calibrated' if weights else 'plain'}"))
    return out
