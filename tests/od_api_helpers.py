"""Stand-in OD API SSD exports (standins/od_api_ssd.py), built once per test process, and their exports."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="edgezoo-odapi-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


@functools.lru_cache(maxsize=None)
def export_folder(variant: str) -> Path:
    """An OD API export folder (frozen_inference_graph.pb + pipeline.config) of a stand-in variant."""
    from edgezoo.standins.od_api_ssd import VARIANTS, write_export

    return write_export(VARIANTS[variant], _ROOT / "src" / variant)


def config_copy(variant: str, dest: Path, edit: tuple[str, str] | None = None, text: str | None = None) -> Path:
    """A folder with the variant's graph (linked) and an edited pipeline.config."""
    src = export_folder(variant)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "frozen_inference_graph.pb").symlink_to(src / "frozen_inference_graph.pb")
    config = text if text is not None else (src / "pipeline.config").read_text()
    if edit is not None:
        assert edit[0] in config, edit[0]
        config = config.replace(*edit)
    (dest / "pipeline.config").write_text(config)
    return dest


@functools.lru_cache(maxsize=None)
def exported(variant: str, target: str):
    """export_od_api's result for a variant (ExportResult), bundle under the shared temp root."""
    from edgezoo.export.od_api import export_od_api

    return export_od_api(export_folder(variant), None, target, out_dir=_ROOT / "out", standin=True)
