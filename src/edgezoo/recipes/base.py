"""The contract between `edgezoo export` and a recipe."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgezoo.core.errors import RecipeError
from edgezoo.verify.report import ParityReport
from edgezoo.zoo.schema import ModelCard, Target


@dataclass(frozen=True)
class RecipeInput:
    card: ModelCard | None  # None for `export --graph FILE` on a user's own model
    target: Target
    # Local paths of the sources, keyed by the card's file name, or "file::member" for archive members.
    sources: Mapping[str, Path]
    params: Mapping[str, Any]  # the card's recipe params, overridden by CLI options
    workdir: Path  # scratch folder inside the bundle's staging directory (discarded)
    standin: bool
    tolerances: Mapping[str, float] = field(default_factory=dict)  # the card's, overridden by CLI options
    resolve_source: Callable[[str, str | None], Path] | None = None  # (file, member) -> local path, fetching on demand

    def source(self, file: str, member: str | None = None) -> Path:
        key = f"{file}::{member}" if member else file
        if key in self.sources:
            return self.sources[key]
        if self.resolve_source is None:
            raise RecipeError(f"source {key!r} was not provided to the recipe")
        return self.resolve_source(file, member)


@dataclass
class RecipeOutput:
    model: Path  # the converted model (in workdir); becomes model.tflite / model.onnx
    verify: ParityReport  # parity of the converted model against its original
    cut: list[str] = field(default_factory=list)  # tensor names the converted model ends at
    cut_reason: str = ""  # "card", "check --target tidl", "published as is", ...
    extra_files: dict[str, Path] = field(default_factory=dict)  # bundle name -> file in workdir (meta_arch.prototxt)
    runtime_options: dict[str, Any] = field(default_factory=dict)  # TIDL options for runtime_options.yaml
    config: dict[str, Any] = field(default_factory=dict)  # TI model-zoo style config.yaml (preprocess/session/...)
    params: dict[str, Any] = field(default_factory=dict)  # effective recipe parameters, for the manifest
    original: Path | None = None  # the model the verification compared against
    notes: list[str] = field(default_factory=list)  # said to the user and kept in the manifest
