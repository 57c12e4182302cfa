"""Bundles under concurrent runs and killed runs: two processes committing to one folder both end cleanly with one
complete bundle in place; staging folders of runs killed with SIGKILL are removed by the next run, those of live
runs are not; a swap cut between its two renames gets its old bundle back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType

from edgezoo import zoo
import edgezoo
from edgezoo.bundle.staging import STAGING_MARK
from edgezoo.core.atomic import OLD_MARK
from edgezoo.export.api import export_model
from edgezoo.recipes import register
from edgezoo.recipes.base import RecipeInput, RecipeOutput
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import RecipeSpec, Target

# Commits `rounds` bundles to FINAL through the real bundle API; each bundle's manifest records its model's sha256,
# so a bundle mixed from two writers is detectable. Starts at START (a shared wall-clock time) to maximise overlap.
RACER = """
import os, random, sys, time
from pathlib import Path
from edgezoo.bundle.staging import BundleStaging
final, rounds, start = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
for i in range(rounds):
    with BundleStaging(final) as staging:
        (staging.workdir / "m.bin").write_bytes(f"{os.getpid()}-{i}".encode() * 1000)
        model = staging.add_file(staging.workdir / "m.bin", "model.bin")
        staging.add_json("manifest.json", {"sha256": model.sha256})
        time.sleep(random.random() * 0.004)
        staging.commit()
"""

# Opens a staging folder, writes into it, says where, then waits for stdin to close (or to be killed).
HOLDER = """
import sys
from pathlib import Path
from edgezoo.bundle.staging import BundleStaging
with BundleStaging(Path(sys.argv[1])) as staging:
    (staging.workdir / "half.tflite").write_bytes(b"half a model")
    print(staging.dir, flush=True)
    sys.stdin.read()
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(edgezoo.__file__).parents[1])}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **kwargs)


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_two_processes_committing_to_one_folder_both_succeed(tmp_path):
    final = tmp_path / "out" / "model" / "tflite"
    for trial in range(3):
        start = str(time.time() + 1.0)  # both past their imports before the first commit
        racers = [_python(RACER, str(final), "40", start, stderr=subprocess.PIPE) for _ in range(2)]
        errors = [p.communicate(timeout=120)[1] for p in racers]
        assert [p.returncode for p in racers] == [0, 0], errors
        manifest = json.loads((final / "manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256((final / "model.bin").read_bytes()).hexdigest(), trial
        assert sorted(p.name for p in final.iterdir()) == [".edgezoo-output.json", "manifest.json", "model.bin"]
        assert sorted(p.name for p in final.parent.iterdir()) == ["tflite"]  # no staging, no old bundle left


@register("test-concurrency-ok")
def _ok(rin: RecipeInput) -> RecipeOutput:
    model = rin.workdir / "converted.tflite"
    model.write_bytes(b"a small model")
    report = ParityReport(original="orig.pb", converted=str(model), task="tensors", standin=rin.standin)
    report.add("y: max_abs_error", 0.0, 1e-3)
    return RecipeOutput(model=model, verify=report)


def _card():
    card = zoo.get_card("resnet50")
    return dataclasses.replace(card, recipes=MappingProxyType({Target.TFLITE: RecipeSpec("test-concurrency-ok", {})}))


def test_next_export_removes_staging_of_killed_runs_not_of_live_ones(tmp_path):
    out = tmp_path / "out"
    final = out / "resnet50-v1.5" / "tflite"
    live = _python(HOLDER, str(final), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        live_dir = Path(live.stdout.readline().strip())
        killed = _python(HOLDER, str(final), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        killed_dir = Path(killed.stdout.readline().strip())
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed_dir.is_dir() and live_dir.is_dir() and STAGING_MARK in killed_dir.name  # as kill -9 leaves it

        result = export_model(_card(), "tflite", out_dir=out, standin=True)
        assert result.passed and (final / "model.tflite").read_bytes() == b"a small model"
        assert not killed_dir.exists()
        assert (live_dir / ".work" / "half.tflite").is_file()  # a live run's work is never touched
    finally:
        live.stdin.close()  # the live run ends normally and removes its own staging folder
        live.wait(timeout=30)
    assert live.returncode == 0 and _hidden(final.parent) == []


def test_a_swap_cut_between_its_renames_gets_the_old_bundle_back(tmp_path):
    out = tmp_path / "out"
    folder = out / "resnet50-v1.5"
    # As a run killed between the two renames of a swap leaves it: the good bundle moved aside, nothing in its place.
    aside = folder / f".onnx{OLD_MARK}0123456789ab"
    aside.mkdir(parents=True)
    (aside / "manifest.json").write_text("{}")
    # And an old bundle whose replacement did land: garbage.
    replaced = folder / f".tflite.failed{OLD_MARK}ba9876543210"
    replaced.mkdir()
    (folder / "tflite.failed").mkdir()

    export_model(_card(), "tflite", out_dir=out, standin=True)
    assert (folder / "onnx" / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in folder.iterdir()) == ["onnx", "tflite", "tflite.failed"]
