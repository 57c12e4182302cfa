"""Verified fetching: download or copy a card's files into a cache, verify them, unpack archives safely.

Public API (other modules code against exactly these):

    fetch_file(card, file_name, *, mirror=None, offline=False, standin=False, variant=FULL, progress=True) -> Path
    fetch_member(card, file_name, member, **same) -> Path
    fetch_model(card, **same) -> dict[str, Path]
    cache_root() -> Path

`resolve_file` / `resolve_member` return a `Fetched` record (size, sha256, source) for tables and manifests.
Modules: cache (layout), download (HTTP streaming, resume, retries), verify (size + checksum in one pass),
lock (inter-process), archive (safe unpack), members (unpack once, reuse), tofu (trust on first use),
mirror (--mirror), standin (stand-in namespace), published (the published-file flow).
No module here imports anything heavy; urllib is only imported when this package is.

Why not pooch (1.9, read before writing this): it checks the hash in a second pass after the download and never
the size; a failed download restarts from byte 0 (no Range resume); retries wait linearly; there is no
inter-process lock (two processes download twice); its Untar applies the tarfile 'data' filter only on
Python >= 3.12 and stops mid-extraction into the final folder, and its Unzip lets zipfile silently rewrite
absolute and '..' names instead of refusing the archive. Offline mode, folder mirrors, trust on first use and the
stand-in namespace would all have to be built around it anyway, so edgezoo uses the standard library only.
"""

from __future__ import annotations

from pathlib import Path

from edgezoo.core.errors import FetchError
from edgezoo.fetch.cache import cache_root
from edgezoo.fetch.members import get_member
from edgezoo.fetch.mirror import Mirror
from edgezoo.fetch.published import get_published
from edgezoo.fetch.result import Fetched, Source
from edgezoo.fetch.standin import get_standin
from edgezoo.standins import StandinVariant
from edgezoo.zoo.schema import ModelCard

__all__ = ["Fetched", "Source", "cache_root", "fetch_file", "fetch_member", "fetch_model", "model_files",
           "resolve_file", "resolve_member"]


def _mirror(mirror: str | Path | Mirror | None) -> Mirror | None:
    if mirror is None or isinstance(mirror, Mirror):
        return mirror
    return Mirror.parse(mirror)


def resolve_file(card: ModelCard, file_name: str, *, mirror: str | Path | Mirror | None = None,
                 offline: bool = False, standin: bool = False, variant: StandinVariant = StandinVariant.FULL,
                 progress: bool = True) -> Fetched:
    """Like fetch_file, returning where the bytes came from and their sha256 as well."""
    if standin:
        return get_standin(card, file_name, StandinVariant(variant))

    return get_published(card, file_name, mirror=_mirror(mirror), offline=offline, progress=progress)


def resolve_member(card: ModelCard, file_name: str, member: str, *, mirror: str | Path | Mirror | None = None,
                   offline: bool = False, standin: bool = False, variant: StandinVariant = StandinVariant.FULL,
                   progress: bool = True) -> Fetched:
    """Like fetch_member, returning the member's size and sha256 as well."""
    archive = resolve_file(card, file_name, mirror=mirror, offline=offline, standin=standin, variant=variant,
                           progress=progress)
    return get_member(archive, card.file(file_name), member)


def fetch_file(card: ModelCard, file_name: str, *, mirror: str | Path | Mirror | None = None, offline: bool = False,
               standin: bool = False, variant: StandinVariant = StandinVariant.FULL, progress: bool = True) -> Path:
    """A verified local copy of one of the card's files (a stand-in with `standin=True`)."""
    return resolve_file(card, file_name, mirror=mirror, offline=offline, standin=standin, variant=variant,
                        progress=progress).path


def fetch_member(card: ModelCard, file_name: str, member: str, *, mirror: str | Path | Mirror | None = None,
                 offline: bool = False, standin: bool = False, variant: StandinVariant = StandinVariant.FULL,
                 progress: bool = True) -> Path:
    """A member of an archive file, safely unpacked into the cache (the archive is re-verified first)."""
    return resolve_member(card, file_name, member, mirror=mirror, offline=offline, standin=standin,
                          variant=variant, progress=progress).path


def model_files(card: ModelCard, *, standin: bool = False) -> list[str]:
    """Names of the card's files that its formats use (with `standin`, only those that have a stand-in)."""
    used = {spec.file for spec in card.formats.values()}
    names = [f.name for f in card.files if f.name in used]
    if standin:
        names = [n for n in names if card.file(n).standin]
        if not names:
            raise FetchError(f"{card.id}: none of its files has a stand-in builder",
                             hint="fetch the published files instead (drop --standin)")
    return names


def fetch_model(card: ModelCard, *, mirror: str | Path | Mirror | None = None, offline: bool = False,
                standin: bool = False,
                variant: StandinVariant = StandinVariant.FULL, progress: bool = True) -> dict[str, Path]:
    """Every file of the card that its formats use, verified: {file name: path}."""
    mirror_obj = _mirror(mirror)  # validated once, before anything is fetched
    return {name: fetch_file(card, name, mirror=mirror_obj, offline=offline, standin=standin, variant=variant,
                             progress=progress)
            for name in model_files(card, standin=standin)}
