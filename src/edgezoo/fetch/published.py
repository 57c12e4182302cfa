"""Published files: cache hit (re-verified) -> else, under an inter-process lock, mirror or URL(s) -> atomic rename.

Sources, in order: the user's --mirror alone when given (an air-gapped user wants no silent network attempts);
otherwise the card's URL, then the card's mirrors. A size/checksum mismatch from one source moves on to the next
one, but is the error reported when no source delivers a good copy.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from pathlib import Path

from edgezoo.core.errors import (ChecksumMismatchError, EdgezooError, MirrorError, NetworkError, OfflineMissError,
                            SizeMismatchError, SourceNotFoundError)
from edgezoo.core.progress import step
from edgezoo.fetch import tofu
from edgezoo.fetch.cache import ensure_dir, locked, part_path, published_path
from edgezoo.fetch.download import RetryPolicy, copy_local, download
from edgezoo.fetch.mirror import Mirror
from edgezoo.fetch.result import Fetched, Source
from edgezoo.fetch.verify import Digest, Expected, check, hash_file
from edgezoo.zoo.schema import ModelCard, PublishedFile


def expected_for(card: ModelCard, f: PublishedFile) -> tuple[Expected, tofu.TrustRecord | None]:
    """The card's size/checksum; for 'checksum: unknown' the trust-on-first-use record, if any."""
    if f.checksum.known:
        return Expected(f.size, f.checksum), None
    rec = tofu.trusted(card.id, f.name)
    if rec is None:
        return Expected(f.size, f.checksum), None
    return Expected(f.size if f.size is not None else rec.size, rec.checksum), rec


def get_published(card: ModelCard, file_name: str, *, mirror: Mirror | None = None, offline: bool = False,
                  progress: bool = True, policy: RetryPolicy | None = None) -> Fetched:
    f = card.file(file_name)
    if offline and mirror is not None and mirror.is_url:
        raise MirrorError(f"--offline forbids the network, so --mirror {mirror} cannot be used",
                          hint="give a mirror folder, or drop --offline")
    dest = published_path(card.id, f.name)
    expected, rec = expected_for(card, f)

    digest, problem = _cached(dest, expected)
    if digest is None:
        ensure_dir(dest.parent)
        with locked(dest):
            digest, problem = _cached(dest, expected)  # another process may have fetched it meanwhile
            if digest is None:
                return _fetch_into(card, f, dest, expected, rec, problem, mirror=mirror, offline=offline,
                                   progress=progress, policy=policy)
    if not f.checksum.known and rec is None and tofu.trusted(card.id, f.name) is None:
        tofu.record(card.id, f.name, digest, f"{f.url} (found in the cache)")
    return Fetched(card.id, f.name, dest, digest.size, digest.sha256, Source.CACHE, str(dest))


def _cached(dest: Path, expected: Expected) -> tuple[Digest | None, str | None]:
    """(digest, None) for a good cached copy; (None, why) for a bad one; (None, None) when there is none."""
    if not dest.is_file():
        return None, None
    size = dest.stat().st_size
    if expected.size is not None and size != expected.size:
        return None, f"size {size:,} instead of {expected.size:,} bytes"
    digest = hash_file(dest, expected.checksum)
    try:
        check(digest, expected, "cached copy")
    except (SizeMismatchError, ChecksumMismatchError) as exc:
        return None, exc.message.removeprefix("cached copy: ")
    return digest, None


def _fetch_into(card: ModelCard, f: PublishedFile, dest: Path, expected: Expected, rec: tofu.TrustRecord | None,
                problem: str | None, *, mirror: Mirror | None, offline: bool, progress: bool,
                policy: RetryPolicy | None) -> Fetched:
    what = f"{card.id}: {f.name}"
    if problem:
        dest.unlink(missing_ok=True)  # a corrupt copy never stays in the cache
        if offline and mirror is None:
            raise OfflineMissError(f"{what}: the cached copy failed verification ({problem}) and --offline "
                                   f"forbids downloading {f.url}",
                                   hint=f"expected {expected.describe}; fetch it elsewhere and use --mirror DIR")
        step(f"{what}: cached copy failed verification ({problem}); fetching it again")
    elif offline and mirror is None:
        size = f", {expected.size:,} bytes" if expected.size is not None else ""
        raise OfflineMissError(f"{what}: not in the cache and --offline is set; it comes from {f.url} "
                               f"(expected {expected.describe}{size})",
                               hint="download it on a connected machine and pass its folder with --mirror DIR, "
                                    "or run without --offline")
    part = part_path(dest)
    try:
        if mirror is not None:
            digest, source, origin = _from_mirror(f, mirror, part, expected, what, progress, policy)
        else:
            digest, source, origin = _from_urls(f, part, expected, what, progress, policy)
    except ChecksumMismatchError as exc:
        if rec is not None:  # the file changed since it was first trusted
            exc.message += f" (sha256 trusted on first use {rec.recorded})"
            exc.hint = tofu.forget_hint(card.id, f.name)
        raise
    if not f.checksum.known and rec is None:
        tofu.record(card.id, f.name, digest, origin)
    os.replace(part, dest)
    return Fetched(card.id, f.name, dest, digest.size, digest.sha256, source, origin)


def _from_mirror(f: PublishedFile, mirror: Mirror, part: Path, expected: Expected, what: str, progress: bool,
                 policy: RetryPolicy | None) -> tuple[Digest, Source, str]:
    names = mirror.names(f)
    for name in names:
        location = mirror.locate(name)
        try:
            if mirror.is_url:
                digest = download(location, part, expected, f"{what} (from mirror {location})", policy=policy,
                                  progress=progress, label=f.name)
            else:
                digest = copy_local(Path(location), part, expected, f"{what} (from mirror {location})",
                                    progress=progress, label=f.name)
            return digest, Source.MIRROR, location
        except SourceNotFoundError:
            continue
        except NetworkError as exc:
            raise MirrorError(f"{what}: mirror {mirror} failed: {exc.message}", hint=exc.hint) from None
    raise MirrorError(f"{what}: mirror {mirror} has no file named {' or '.join(repr(n) for n in names)}",
                      hint=f"copy the file from {f.url} there (expected {expected.describe})")


def _from_urls(f: PublishedFile, part: Path, expected: Expected, what: str, progress: bool,
               policy: RetryPolicy | None) -> tuple[Digest, Source, str]:
    errors: list[EdgezooError] = []
    urls = (f.url, *f.mirrors)
    for i, url in enumerate(urls):
        if i:
            step(f"{what}: trying the next source {url}")
        try:
            if url.startswith("file:"):
                src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
                digest = copy_local(src, part, expected, f"{what} (from {url})", progress=progress, label=f.name)
            else:
                digest = download(url, part, expected, f"{what} (from {url})", policy=policy, progress=progress,
                                  label=f.name)
            return digest, Source.DOWNLOAD, url
        except (SizeMismatchError, ChecksumMismatchError, NetworkError) as exc:
            errors.append(exc)
    mismatch = next((e for e in errors if isinstance(e, (SizeMismatchError, ChecksumMismatchError))), None)
    if mismatch is not None:
        raise mismatch
    if len(errors) == 1:
        raise errors[0]
    raise NetworkError(f"{what}: no source delivered the file: " + "; ".join(e.message for e in errors),
                       hint="check the network/proxy, or fetch the file elsewhere and use --mirror DIR")
