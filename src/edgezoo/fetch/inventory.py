"""What the cache holds: every entry with its size, the models it belongs to, its trust state and, for leftovers,
whether `edgezoo cache clean --stale` may remove it. Read-only (probing a leftover's lock takes it for a moment).

The layout is the one fetch/cache.py describes; anything else found under the root is not edgezoo's and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from edgezoo.fetch import tofu
from edgezoo.fetch.cache import PART_SUFFIX, PUBLISHED, STANDINS, UNPACKED_SUFFIX, cache_root
from edgezoo.fetch.leftovers import Leftover, LeftoverKind, Owner, children, find_leftovers, in_use, tree_size
from edgezoo.fetch.members import record_path
from edgezoo.fetch.standin import SIDECAR_SUFFIX, sidecar_path
from edgezoo.zoo.schema import ModelCard

_BUILDER_DIR = re.compile(r"^(?P<builder>.+)-v(?P<version>\d+)$")


class EntryKind(str, Enum):
    PUBLISHED = "published"
    UNPACKED = "unpacked"
    STANDIN = "stand-in"
    PARTIAL = "partial"
    LEFTOVER = "leftover"


class Trust(str, Enum):
    """Why a cached file can be believed (published files and stand-ins only)."""

    CARD = "card checksum"
    FIRST_USE = "trusted on first use"
    NO_RECORD = "no record"  # checksum unknown and no first-use record: the next fetch records one
    NOT_IN_ZOO = "not in the zoo"  # no card (or no such file in it): nothing to check it against
    STANDIN = "stand-in"  # checked against the record written when it was built


@dataclass(frozen=True)
class CacheEntry:
    kind: EntryKind
    models: tuple[str, ...]  # card ids it belongs to (one stand-in can serve several cards)
    file: str  # the card's file name (an unpacked folder or leftover: the file it belongs to)
    path: Path
    size: int  # bytes, `extra` included
    state: str  # one phrase for people: trust state, "partial download", "left by an interrupted run", ...
    trust: Trust | None = None
    recorded: str = ""  # first-use records: when
    stale: str = ""  # why `cache clean --stale` removes it (when nobody owns it); "" = not stale
    busy: bool = False  # a live edgezoo process owns it right now
    extra: tuple[Path, ...] = ()  # files that go with it (a stand-in's sha256 record, an unpacked folder's record)
    owner: Owner = Owner()

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path, *self.extra)


def inventory(cards: Iterable[ModelCard], builders: dict[str, int]) -> list[CacheEntry]:
    """Every entry under the cache root. `builders`: the current version of each stand-in builder."""
    cards_by_id = {c.id: c for c in cards}
    root = cache_root()
    records = tofu.records() if tofu.trust_path().is_file() else {}
    entries = [_leftover(item, ()) for item in find_leftovers(root)]  # e.g. trust.json being rewritten
    for folder in _subdirs(root / PUBLISHED):
        card = cards_by_id.get(folder.name)
        entries += _published_folder(folder, card, records)
    serving = _standin_users(cards_by_id.values())
    for variant in _subdirs(root / STANDINS):
        for folder in _subdirs(variant):
            entries += _standin_folder(folder, variant.name, builders, serving)
    return entries


# ----------------------------------------------------------------------------------------------------------------
# Published files: published/<card id>/


def _published_folder(folder: Path, card: ModelCard | None,
                      records: dict[str, tofu.TrustRecord | None]) -> list[CacheEntry]:
    models = (folder.name,)
    entries = [_leftover(item, models) for item in find_leftovers(folder)]
    for path in children(folder):
        name = path.name
        if name.startswith(".") or name.endswith(PART_SUFFIX):
            continue  # leftovers, above
        if name.endswith(UNPACKED_SUFFIX) or name.endswith(UNPACKED_SUFFIX + ".json"):
            entries += _unpacked(path, models, "")
        elif path.is_file() and not path.is_symlink():
            trust, recorded = _trust(card, name, records.get(f"{folder.name}/{name}"))
            state = f"{trust.value} {recorded[:10]}" if recorded else trust.value
            entries.append(CacheEntry(EntryKind.PUBLISHED, models, name, path, tree_size(path), state, trust,
                                      recorded, owner=Owner((path,))))
    return entries


def _trust(card: ModelCard | None, name: str, record: tofu.TrustRecord | None) -> tuple[Trust, str]:
    f = next((f for f in card.files if f.name == name), None) if card else None
    if f is None:
        return Trust.NOT_IN_ZOO, ""
    if f.checksum.known:
        return Trust.CARD, ""
    if record is not None:
        return Trust.FIRST_USE, record.recorded
    return Trust.NO_RECORD, ""


def _unpacked(path: Path, models: tuple[str, ...], note: str) -> list[CacheEntry]:
    """An archive's `<name>.unpacked/` folder with its `.json` record: one entry, listed once (from the folder,
    or from the record when the folder is gone)."""
    name = _file_of(path.name)
    archive = path.with_name(name)
    folder = path.with_name(name + UNPACKED_SUFFIX)
    record = record_path(archive)
    if path == record and folder.exists():
        return []  # listed with its folder
    main = folder if folder.exists() else record
    extra = (record,) if main != record and record.exists() else ()
    stale = "" if archive.is_file() else "its archive is gone"
    state = f"members of {name}{note}" + (f" ({stale})" if stale else "")
    size = sum(tree_size(p) for p in (main, *extra))
    return [CacheEntry(EntryKind.UNPACKED, models, name, main, size, state, stale=stale, extra=extra,
                       owner=Owner((folder,)))]


def _leftover(item: Leftover, models: tuple[str, ...]) -> CacheEntry:
    busy = in_use(item.owner)
    if item.kind is LeftoverKind.PARTIAL:
        kind, what = EntryKind.PARTIAL, "partial download"
        state = f"{what}, being downloaded" if busy else f"{what}, resumed by the next fetch"
    else:
        kind, what = EntryKind.LEFTOVER, f"{item.kind.value} left by an interrupted run"
        state = f"{item.kind.value} of a running edgezoo process" if busy else what
    return CacheEntry(kind, models, item.target.name, item.path, tree_size(item.path), state, stale=what,
                      busy=busy, owner=item.owner)


# ----------------------------------------------------------------------------------------------------------------
# Stand-ins: standins/<variant>/<builder>-v<version>/


def _standin_users(cards: Iterable[ModelCard]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(builder, file name) -> ids of the cards whose file that builder makes."""
    users: dict[tuple[str, str], tuple[str, ...]] = {}
    for card in cards:
        for f in card.files:
            if f.standin:
                users[(f.standin, f.name)] = (*users.get((f.standin, f.name), ()), card.id)
    return users


def _standin_folder(folder: Path, variant: str, builders: dict[str, int],
                    serving: dict[tuple[str, str], tuple[str, ...]]) -> list[CacheEntry]:
    m = _BUILDER_DIR.match(folder.name)
    if not m:
        return []
    builder, version = m["builder"], int(m["version"])
    current = builders.get(builder)
    if current is None:
        outdated = f"builder {builder!r} no longer exists"
    elif version < current:
        outdated = f"older builder version (now v{current})"
    else:
        outdated = ""
    entries = [_leftover(item, serving.get((builder, _file_of(item.target.name)), ()))
               for item in find_leftovers(folder)]
    for path in children(folder):
        name = path.name
        models = serving.get((builder, _file_of(name)), ())
        if name.startswith(".") or name.endswith((PART_SUFFIX, SIDECAR_SUFFIX)):
            continue
        if name.endswith(UNPACKED_SUFFIX) or name.endswith(UNPACKED_SUFFIX + ".json"):
            for entry in _unpacked(path, models, f", {variant} stand-in"):
                entries.append(_with_stale(entry, outdated) if outdated and not entry.stale else entry)
        elif path.is_file() and not path.is_symlink():
            sidecar = sidecar_path(path)
            extra = (sidecar,) if sidecar.exists() else ()
            state = f"stand-in ({variant}, {folder.name})" + (f", {outdated}" if outdated else "")
            entries.append(CacheEntry(EntryKind.STANDIN, models, name, path,
                                      sum(tree_size(p) for p in (path, *extra)), state, Trust.STANDIN,
                                      stale=outdated, extra=extra, owner=Owner((path,))))
    return entries


def _file_of(name: str) -> str:
    """The archive an unpacked folder or its record belongs to ("a.tgz.unpacked.json" -> "a.tgz")."""
    return name.removesuffix(UNPACKED_SUFFIX + ".json").removesuffix(UNPACKED_SUFFIX)


def _with_stale(entry: CacheEntry, why: str) -> CacheEntry:
    return replace(entry, stale=why, state=f"{entry.state}, {why}")


def _subdirs(folder: Path) -> list[Path]:
    return [p for p in children(folder) if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
