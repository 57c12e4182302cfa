"""The API behind `edgezoo cache`: see the cache (list), re-check it (verify) and repair it (clean, untrust).

Nothing here removes what a running edgezoo process is using: every removal holds the same inter-process locks the
fetch code takes (fetch/leftovers.py), and an entry whose lock is taken is kept and reported. Trust-on-first-use
records are only removed by `untrust`: cleaning a cached copy keeps its record, so the next download is still
checked against the hash first seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgezoo import zoo
from edgezoo.core.errors import (ChecksumMismatchError, FetchError, SizeMismatchError, UnknownModelError,
                            did_you_mean)
from edgezoo.core.progress import ProgressBar
from edgezoo.fetch import tofu
from edgezoo.fetch.cache import part_path, published_path, unpacked_dir
from edgezoo.fetch.inventory import CacheEntry, EntryKind, Trust, inventory
from edgezoo.fetch.leftovers import Owner, remove_path, remove_unowned, tree_size, unowned
from edgezoo.fetch.members import record_path
from edgezoo.fetch.published import expected_for
from edgezoo.fetch.verify import Digest, StreamHasher, check, hash_file
from edgezoo.standins import builders
from edgezoo.zoo.schema import Checksum

PROGRESS_FROM_BYTES = 64 << 20  # re-hashing smaller files takes well under a second: no progress bar


def list_cache(model: str | None = None) -> list[CacheEntry]:
    """Every cache entry (of `model`, an id or alias, when given)."""
    entries = inventory(zoo.all_cards(), {name: b.version for name, b in builders().items()})
    if model is None:
        return entries
    card_id = model_id(model, entries)
    return [e for e in entries if card_id in e.models]


def model_id(name: str, entries: list[CacheEntry]) -> str:
    """The card id for `name`; also accepts the id of a card no longer in the zoo that still has cache entries."""
    cached = {m for e in entries for m in e.models}
    try:
        return zoo.get_card(name).id
    except UnknownModelError:
        if name in cached:
            return name
        known = [key for card in zoo.all_cards() for key in (card.id, *card.aliases)] + sorted(cached)
        raise UnknownModelError(f"unknown model {name!r}",
                                hint=did_you_mean(name, known) + " ('edgezoo list' shows the zoo)") from None


# ----------------------------------------------------------------------------------------------------------------
# verify


class Status(str, Enum):
    OK = "ok"
    MISMATCH = "mismatch"
    NO_RECORD = "missing record"  # checksum unknown and never recorded: nothing to compare with
    NOT_IN_ZOO = "not in the zoo"


@dataclass(frozen=True)
class Verified:
    entry: CacheEntry
    status: Status
    detail: str  # what it was checked against, or how it differs


def verify_cache(model: str | None = None, *, progress: bool = True) -> list[Verified]:
    """Re-hash every cached published file against its card checksum or its first-use record."""
    cards = {c.id: c for c in zoo.all_cards()}
    results = []
    for entry in list_cache(model):
        if entry.kind is not EntryKind.PUBLISHED:
            continue
        if entry.trust is Trust.NOT_IN_ZOO:
            results.append(Verified(entry, Status.NOT_IN_ZOO, "no card lists this file: nothing to check it "
                                                               "against"))
            continue
        card = cards[entry.models[0]]
        expected, record = expected_for(card, card.file(entry.file))
        if not expected.checksum.known:
            results.append(Verified(entry, Status.NO_RECORD, f"no published checksum and no first-use record; "
                                                              f"'edgezoo fetch {card.id}' records this copy"))
            continue
        digest = _hash(entry, expected.checksum, progress)
        against = f"the first-use record of {record.recorded}" if record else "the card checksum"
        try:
            check(digest, expected, "cached copy")
        except (SizeMismatchError, ChecksumMismatchError) as exc:
            results.append(Verified(entry, Status.MISMATCH, f"{exc.message} ({against})"))
            continue
        results.append(Verified(entry, Status.OK, f"matches {against}"))
    return results


class _ShownHasher(StreamHasher):
    """A StreamHasher that also advances a progress bar."""

    def __init__(self, checksum: Checksum, bar: ProgressBar) -> None:
        super().__init__(checksum)
        self._bar = bar

    def update(self, data: bytes | memoryview) -> None:
        super().update(data)
        self._bar.update(len(data))


def _hash(entry: CacheEntry, checksum: Checksum, progress: bool) -> Digest:
    bar = ProgressBar(f"verifying {entry.file}", entry.size, enabled=progress and entry.size >= PROGRESS_FROM_BYTES)
    failed = True
    try:
        digest = hash_file(entry.path, checksum, _ShownHasher(checksum, bar))
        failed = False
    except OSError as exc:
        raise FetchError(f"cannot read {entry.path}: {exc.strerror}", hint="check the cache folder") from None
    finally:
        bar.close(failed=failed)
    return digest


# ----------------------------------------------------------------------------------------------------------------
# clean


@dataclass(frozen=True)
class Cleaned:
    removed: list[CacheEntry]
    in_use: list[CacheEntry]  # owned by a running edgezoo process: kept

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


def clean_plan(model: str | None = None, *, stale: bool = False) -> list[CacheEntry]:
    """What `clean` would remove: every entry (of `model`), or with `stale` only leftovers nobody owns."""
    entries = list_cache(model)
    return [e for e in entries if e.stale and not e.busy] if stale else entries


def clean(entries: list[CacheEntry]) -> Cleaned:
    """Remove `entries`, each under the locks of whoever could be using it; keep (and report) those in use.

    Empty folders stay: a run may have just created one to write into."""
    removed, in_use = [], []
    for entry in entries:
        (removed if remove_unowned(entry.paths, entry.owner) else in_use).append(entry)
    return Cleaned(removed, in_use)


# ----------------------------------------------------------------------------------------------------------------
# untrust


@dataclass(frozen=True)
class Untrusted:
    key: str  # MODEL/FILE_NAME
    record: tofu.TrustRecord | None  # None: the entry was malformed
    removed: list[str]  # cache paths removed with it
    freed: int


def untrust(name: str) -> Untrusted:
    """Forget the first-use record `name` (MODEL/FILE_NAME, or FILE_NAME when unambiguous) and remove the cached
    copy, so that the next fetch records the file afresh."""
    records = tofu.records() if tofu.trust_path().is_file() else {}
    key = _record_key(name, records)
    card_id, _, file_name = key.partition("/")
    dest = published_path(card_id, file_name)
    paths = [dest, part_path(dest), unpacked_dir(dest), record_path(dest)]
    with unowned(Owner((dest, unpacked_dir(dest)))) as free:
        if not free:
            raise FetchError(f"{key} is in use by another edgezoo process; nothing was changed",
                             hint="run 'edgezoo cache untrust' again when that process has finished")
        tofu.forget(card_id, file_name)
        present = [p for p in paths if p.exists() or p.is_symlink()]
        freed = sum(tree_size(p) for p in present)
        for path in present:
            remove_path(path)
    return Untrusted(key, records[key], [str(p) for p in present], freed)


def _record_key(name: str, records: dict[str, tofu.TrustRecord | None]) -> str:
    if name in records:
        return name
    model, sep, file_name = name.rpartition("/")
    if sep:
        try:
            alias_key = f"{zoo.get_card(model).id}/{file_name}"  # an alias in place of the id
        except UnknownModelError:
            alias_key = ""
        if alias_key in records:
            return alias_key
    else:
        same_name = [key for key in records if key.rpartition("/")[2] == name]
        if len(same_name) == 1:
            return same_name[0]
        if same_name:
            raise FetchError(f"{name!r} names {len(same_name)} trust-on-first-use records: {', '.join(same_name)}",
                             hint="say which one as MODEL/FILE_NAME")
    if not records:
        raise FetchError(f"no trust-on-first-use record named {name!r}: there are no records",
                         hint="only files without a published checksum get one, on their first fetch")
    raise FetchError(f"no trust-on-first-use record named {name!r}",
                     hint=f"{did_you_mean(name, records)} Records: {', '.join(sorted(records))}")
