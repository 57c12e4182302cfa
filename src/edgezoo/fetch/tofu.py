"""Trust on first use for published files whose card says `checksum: unknown`.

The first verified fetch records the sha256 it computed in `<cache>/trust.json` and says so on stderr; every later
fetch or cache hit must match that record (the expected checksum becomes the recorded sha256), so a file that
changes under the same URL is caught. edgezoo never invents a checksum for a card.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edgezoo.core.errors import FetchError
from edgezoo.fetch.cache import cache_root, confined, ensure_dir, locked, open_for_writing
from edgezoo.fetch.verify import Digest
from edgezoo.zoo.schema import Checksum, HashAlgorithm

TRUST_FILE = "trust.json"


@dataclass(frozen=True)
class TrustRecord:
    sha256: str
    size: int
    url: str
    recorded: str  # ISO date-time of the first use

    @property
    def checksum(self) -> Checksum:
        return Checksum(HashAlgorithm.SHA256, self.sha256)


def trust_path() -> Path:
    return confined(cache_root() / TRUST_FILE)


def _key(card_id: str, file_name: str) -> str:
    return f"{card_id}/{file_name}"


def _read(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"trust file {path} is unreadable ({exc})",
                         hint="fix or delete it (its hashes will be recorded again on the next fetch)") from None
    if not isinstance(data, dict):
        raise FetchError(f"trust file {path} is not a JSON object", hint="fix or delete it")
    return data


def _write(path: Path, data: dict[str, dict]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open_for_writing(tmp, exclusive=True) as out:
        out.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    os.replace(tmp, path)


def trusted(card_id: str, file_name: str) -> TrustRecord | None:
    """The recorded hash of a file without a published checksum, if it was fetched before."""
    return _parse(_read(trust_path()).get(_key(card_id, file_name)))


def records() -> dict[str, TrustRecord | None]:
    """Every first-use record, keyed `MODEL/FILE_NAME` (None for an entry too malformed to read)."""
    return {key: _parse(entry) for key, entry in _read(trust_path()).items()}


def _parse(entry: object) -> TrustRecord | None:
    if not isinstance(entry, dict):
        return None
    try:
        return TrustRecord(str(entry["sha256"]), int(entry["size"]), str(entry.get("url", "")),
                           str(entry.get("recorded", "")))
    except (KeyError, TypeError, ValueError):
        return None


def record(card_id: str, file_name: str, digest: Digest, url: str) -> TrustRecord:
    """Record the first-use hash (atomic read-modify-write under a lock) and tell the user on stderr."""
    path = trust_path()
    ensure_dir(path.parent)
    rec = TrustRecord(digest.sha256, digest.size, url,
                      _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    with locked(path, quiet=True):
        data = _read(path)
        data[_key(card_id, file_name)] = asdict(rec)
        _write(path, data)
    print(f"edgezoo: {card_id}: {file_name} has no published checksum; trusting it on first use: "
          f"recorded sha256:{digest.sha256} ({digest.size:,} bytes) in {path}", file=sys.stderr, flush=True)
    return rec


def forget(card_id: str, file_name: str) -> TrustRecord | None:
    """Remove the first-use record of one file (atomic, under the lock); return what was removed, if anything.

    Used by `edgezoo cache untrust` and whenever a trusted file turns out unusable (e.g. a refused archive)."""
    path = trust_path()
    if not path.exists():
        return None
    with locked(path, quiet=True):
        data = _read(path)
        entry = data.pop(_key(card_id, file_name), None)
        if entry is None:
            return None
        _write(path, data)
    return _parse(entry) or TrustRecord("", 0, "", "")  # a malformed entry was removed all the same


def forget_hint(card_id: str, file_name: str) -> str:
    return (f"if the publisher really changed the file, run 'edgezoo cache untrust {_key(card_id, file_name)}' "
            f"(it removes the entry from {trust_path()}) and fetch again")
