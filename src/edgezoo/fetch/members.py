"""Archive members: unpack a verified archive once (safely, atomically) and reuse the folder.

`<archive>.unpacked/` holds the members; `<archive>.unpacked.json` records the sha256 of the archive it came from
and the size of every regular member. The folder is reused only while that record matches the archive (which the
caller has just re-verified) and the requested member still has its recorded size; otherwise it is unpacked again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgezoo.errors import ArchiveError, did_you_mean
from edgezoo.fetch.archive import ArchiveKind, normalise_name, unpack
from edgezoo.fetch.cache import unpacked_dir
from edgezoo.fetch.lock import locked
from edgezoo.fetch.result import Fetched, Source
from edgezoo.fetch.verify import hash_file
from edgezoo.progress import step
from edgezoo.standins import STANDIN_BANNER
from edgezoo.zoo.schema import Checksum, PublishedFile


def record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".unpacked.json")


def get_member(archive: Fetched, f: PublishedFile, member: str) -> Fetched:
    """`member` of the (already verified) archive `archive`, unpacking it into the cache if needed."""
    what = f"{archive.card_id}: {f.name}"
    if not f.archive:
        raise ArchiveError(f"{what} is not an archive, so it has no member {member!r}",
                           hint="fetch the file itself (fetch_file)")
    name = normalise_name(archive.path, member)
    folder = unpacked_dir(archive.path)
    files = _reusable(archive, folder, name)
    if files is None:
        with locked(folder):
            files = _reusable(archive, folder, name)
            if files is None:
                banner = f"{STANDIN_BANNER}: " if archive.standin else ""
                step(f"{banner}{what}: unpacking into {folder}")
                files = unpack(archive.path, ArchiveKind(f.archive), folder)
                _write_record(archive, files)
    if name not in files:
        raise ArchiveError(f"{what}: the archive has no member {member!r}",
                           hint=did_you_mean(name, files) + f" ({len(files)} files in the archive)")
    path = folder / name
    digest = hash_file(path, Checksum(None, None))
    source = Source.STANDIN_UNPACKED if archive.standin else Source.UNPACKED
    return Fetched(archive.card_id, f"{f.name}::{name}", path, digest.size, digest.sha256, source,
                   str(archive.path), archive.standin)


def _reusable(archive: Fetched, folder: Path, name: str) -> dict[str, int] | None:
    record = record_path(archive.path)
    if not folder.is_dir() or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        files = {str(k): int(v) for k, v in data["files"].items()}
        source_sha = str(data["archive_sha256"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if source_sha != archive.sha256:
        return None
    if name in files:
        path = folder / name
        if not path.is_file() or path.stat().st_size != files[name]:
            return None  # a member was deleted or truncated: unpack again
    return files


def _write_record(archive: Fetched, files: dict[str, int]) -> None:
    record = record_path(archive.path)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"archive_sha256": archive.sha256, "files": files}, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, record)
