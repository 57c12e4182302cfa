"""Shared artefacts for the evaluation tests, built once per test process on REDUCED stand-ins: bundles exported by
the real recipes, original subjects, and stand-in datasets labelled by the original model (edgezoo's demo wiring)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="edgezoo-eval-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)
CACHE = _ROOT / "cache"


@contextlib.contextmanager
def helper_cache():
    """The helpers' own stand-in cache (the tests' per-test cache would rebuild every stand-in)."""
    old = os.environ.get("EDGEZOO_CACHE")
    os.environ["EDGEZOO_CACHE"] = str(CACHE)
    try:
        yield CACHE
    finally:
        if old is None:
            os.environ.pop("EDGEZOO_CACHE", None)
        else:
            os.environ["EDGEZOO_CACHE"] = old


@functools.lru_cache(maxsize=None)
def bundle(model_id: str, target: str) -> Path:
    from edgezoo import zoo
    from edgezoo.export.api import export_model
    from edgezoo.standins import StandinVariant

    with helper_cache():
        result = export_model(zoo.get_card(model_id), target, out_dir=_ROOT / "out", standin=True,
                              variant=StandinVariant.REDUCED, offline=True)
    assert result.passed, result.report.render()
    return result.bundle


@functools.lru_cache(maxsize=None)
def original(model_id: str):
    from edgezoo import zoo
    from edgezoo.evaluation.subjects import original_subjects

    with helper_cache():
        (subject,) = original_subjects(zoo.get_card(model_id), standin=True, variant="reduced", offline=True)
    return subject


@functools.lru_cache(maxsize=None)
def labelled_dataset(kind: str, model_id: str, count: int) -> Path:
    """A stand-in dataset whose labels / boxes are the original model's own predictions."""
    from edgezoo.datasets import DatasetKind, build_standin
    from edgezoo.evaluation.standin_labels import model_labeller

    out = _ROOT / f"{kind}-{model_id}-{count}"
    build_standin(DatasetKind(kind), out, count=count, labeller=model_labeller(original(model_id)))
    return out
