"""A tiny deterministic stand-in used to test the stand-in mechanism itself (no ML libraries)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.standins import StandinVariant, register


@register("tiny-bytes", description="deterministic random bytes (mechanism tests)")
def build_tiny_bytes(dest: Path, variant: StandinVariant, seed: int) -> None:
    n = 4096 if variant is StandinVariant.FULL else 512
    dest.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
