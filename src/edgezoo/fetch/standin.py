"""The stand-in namespace: files built by registered builders, cached apart from published files.

Key: standins/<variant>/<builder>-v<version>/<file name>, with `<file name>.sha256.json` beside it recording the
sha256 and size computed right after the build. A cached stand-in is re-verified against that record before use
and rebuilt when it does not match. The seed is fixed so a stand-in is the same on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from edgezoo.core.errors import FetchError, disk_full, fullest_folder, is_disk_full
from edgezoo.core.progress import step
from edgezoo.fetch.cache import ensure_dir, locked, standin_dir
from edgezoo.fetch.leftovers import sweep
from edgezoo.fetch.result import Fetched, Source
from edgezoo.fetch.verify import Digest, hash_file
from edgezoo.standins import STANDIN_BANNER, StandinBuilder, StandinVariant, get_builder
from edgezoo.zoo.schema import Checksum, ModelCard

SEED = 0
SIDECAR_SUFFIX = ".sha256.json"
_SHA256_ONLY = Checksum(None, None)  # hash_file always computes sha256


def sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + SIDECAR_SUFFIX)


def get_standin(card: ModelCard, file_name: str, variant: StandinVariant) -> Fetched:
    f = card.file(file_name)
    if not f.standin:
        having = [x.name for x in card.files if x.standin]
        raise FetchError(f"{card.id}: {f.name} has no stand-in builder",
                         hint=("stand-ins exist for: " + ", ".join(having)) if having
                         else "this card has no stand-ins; fetch the published file instead (drop --standin)")
    try:
        builder = get_builder(f.standin)
    except FetchError as exc:
        raise exc.with_context(f"{card.id}: {f.name}") from None
    variant = StandinVariant(variant)
    dest = standin_dir(builder.name, builder.version, variant) / f.name
    origin = f"{builder.name} v{builder.version} ({variant.value}, seed {SEED})"

    sweep(dest.parent)  # build folders of killed runs (no live owner): the same rule as `cache clean --stale`
    digest = _verified(dest, card.id)
    if digest is None:
        with locked(dest):
            digest = _verified(dest, card.id, quiet=True)  # another process may have built it meanwhile
            if digest is None:
                digest = _build(card.id, f.name, dest, builder, variant)
                return Fetched(card.id, f.name, dest, digest.size, digest.sha256, Source.STANDIN_BUILT, origin, True)
    return Fetched(card.id, f.name, dest, digest.size, digest.sha256, Source.STANDIN_CACHE, origin, True)


def _verified(dest: Path, card_id: str, *, quiet: bool = False) -> Digest | None:
    """The digest of a cached stand-in that matches its own record; None (and a note) otherwise."""
    sidecar = sidecar_path(dest)
    if not dest.is_file() or not sidecar.is_file():
        return None
    try:
        rec = json.loads(sidecar.read_text(encoding="utf-8"))
        want_sha, want_size = str(rec["sha256"]), int(rec["size"])
    except (OSError, ValueError, KeyError, TypeError):
        want_sha, want_size = "", -1
    digest = hash_file(dest, _SHA256_ONLY)
    if digest.sha256 == want_sha and digest.size == want_size:
        return digest
    if not quiet:
        step(f"{STANDIN_BANNER}: {card_id}: cached {dest.name} does not match its recorded sha256; rebuilding")
    return None


def _build(card_id: str, name: str, dest: Path, builder: StandinBuilder, variant: StandinVariant) -> Digest:
    folder = ensure_dir(dest.parent)
    sidecar = sidecar_path(dest)
    sidecar.unlink(missing_ok=True)  # a file without its record is never trusted
    step(f"{STANDIN_BANNER}: {card_id}: building {name} with {builder.name} v{builder.version} ({variant.value})")
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".build", dir=folder))
    try:
        tmp = tmpdir / name  # same name: builders may rely on the suffix (.onnx, .tgz)
        builder.build(tmp, variant, SEED)
        if not tmp.is_file():
            raise FetchError(f"{STANDIN_BANNER} builder {builder.name!r} did not write {name}",
                             hint="this is a bug in the builder")
        digest = hash_file(tmp, _SHA256_ONLY)
        os.replace(tmp, dest)
        record = {"sha256": digest.sha256, "size": digest.size, "builder": builder.name,
                  "version": builder.version, "variant": variant.value, "seed": SEED,
                  "note": f"{STANDIN_BANNER}: built by edgezoo, not the published file"}
        tmp_side = tmpdir / sidecar.name
        tmp_side.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp_side, sidecar)
        return digest
    except OSError as exc:
        if is_disk_full(exc):  # the builders write with plain Python I/O: a full disk is an OSError here
            raise disk_full(exc, fullest_folder(folder), f"building the stand-in {name}") from None
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

