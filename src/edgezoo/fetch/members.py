"""Archive members: unpack a verified archive once (safely, atomically) and reuse the folder.

Only the members the card names (`files[].members`) are unpacked, or everything when it names none: an archive
may hold much more than the recipes use, and nothing else of it is needed on disk. Asking for a member the card
does not name is an error that says so.

`<archive>.unpacked/` holds the members; `<archive>.unpacked.json` records the sha256 of the archive it came from,
the member names asked for and the size of every regular member unpacked. The folder is reused only while that
record matches the archive (which the caller has just re-verified) and the card, and the requested member still has
its recorded size; otherwise it is unpacked again.

An archive that is refused (unsafe, a bomb, corrupt) and was only trusted on first use (`checksum: unknown`) does
not stay: it is deleted from the cache and its trust record forgotten, so the next fetch downloads and judges it
again instead of trusting the same bad bytes forever. An archive whose checksum is the card's stays (fetching it
again would give the same bytes); the error is about the card's file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgezoo.core.errors import ArchiveError, FetchError, did_you_mean, disk_full, is_disk_full
from edgezoo.core.progress import step
from edgezoo.fetch import tofu
from edgezoo.fetch.archive import CACHE_NOT_WRITABLE, ArchiveKind, normalise_name
from edgezoo.fetch.cache import locked, open_for_writing, unpacked_dir
from edgezoo.fetch.result import Fetched, Source
from edgezoo.fetch.unpack import unpack
from edgezoo.fetch.verify import hash_file
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
    wanted = [normalise_name(archive.path, m) for m in f.members]  # [] = everything
    if wanted and name not in wanted:
        raise ArchiveError(f"{what}: no member {member!r} among the {len(wanted)} the card names",
                           hint=did_you_mean(name, wanted) + " (only the members in the card's files[].members "
                                                             "are unpacked; add it there to use it)")
    folder = unpacked_dir(archive.path)
    files = _reusable(archive, folder, name, wanted)
    if files is None:
        with locked(folder):
            files = _reusable(archive, folder, name, wanted)
            if files is None:
                banner = f"{STANDIN_BANNER}: " if archive.standin else ""
                step(f"{banner}{what}: unpacking into {folder}")
                files = _unpack(archive, f, folder, wanted)
                _write_record(archive, wanted, files)
    if name not in files:
        raise ArchiveError(f"{what}: the archive has no member {member!r}",
                           hint=did_you_mean(name, files) + f" ({len(files)} files unpacked)")
    path = folder / name
    digest = hash_file(path, Checksum(None, None))
    source = Source.STANDIN_UNPACKED if archive.standin else Source.UNPACKED
    return Fetched(archive.card_id, f"{f.name}::{name}", path, digest.size, digest.sha256, source,
                   str(archive.path), archive.standin)


def _unpack(archive: Fetched, f: PublishedFile, folder: Path, wanted: list[str]) -> dict[str, int]:
    try:
        return unpack(archive.path, ArchiveKind(f.archive), folder, wanted)
    except ArchiveError as exc:
        exc.with_context(archive.card_id)  # the message already starts with the archive's name
        if not archive.standin and not f.checksum.known:
            with locked(archive.path, quiet=True):  # the lock get_published holds while it writes this file
                archive.path.unlink(missing_ok=True)
            tofu.forget(archive.card_id, f.name)
            exc.message += ("; the archive was deleted from the cache and its trust-on-first-use record "
                            "forgotten, so it is not trusted again")
        raise


def _reusable(archive: Fetched, folder: Path, name: str, wanted: list[str]) -> dict[str, int] | None:
    record = record_path(archive.path)
    if not folder.is_dir() or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        files = {str(k): int(v) for k, v in data["files"].items()}
        source_sha = str(data["archive_sha256"])
        members = list(data["members"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if source_sha != archive.sha256 or members != wanted:
        return None
    if name in files:
        path = folder / name
        if not path.is_file() or path.stat().st_size != files[name]:
            return None  # a member was deleted or truncated: unpack again
    return files


def _write_record(archive: Fetched, wanted: list[str], files: dict[str, int]) -> None:
    record = record_path(archive.path)
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    text = json.dumps({"archive_sha256": archive.sha256, "members": wanted, "files": files}, indent=2) + "\n"
    try:
        with open_for_writing(tmp, exclusive=True) as out:
            out.write(text.encode("utf-8"))
        os.replace(tmp, record)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):  # the members are unpacked; without the record they are unpacked again next time
            raise disk_full(exc, record.parent, f"recording what was unpacked from {archive.path.name}") from None
        raise FetchError(f"cannot write {record}: {exc.strerror}", hint=CACHE_NOT_WRITABLE) from None
