"""`--mirror DIR|URL`: a local folder or a base URL holding the published files under their names.

For air-gapped machines: copy the files once (from anywhere), then `edgezoo fetch --mirror /media/models`.
A file is looked up by the card's file name first, then by the basename of its URL (the two differ for some
MLPerf files). Everything from a mirror is verified exactly like a download.
"""

from __future__ import annotations

import posixpath
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgezoo.core.errors import MirrorError
from edgezoo.zoo.schema import PublishedFile

_HINT = "give a folder (or http(s):// base URL) holding the published files under their file names"


@dataclass(frozen=True)
class Mirror:
    location: str  # a resolved folder path, or a base URL without trailing '/'
    is_url: bool

    @classmethod
    def parse(cls, text: str | Path) -> "Mirror":
        raw = str(text).strip()
        if not raw:
            raise MirrorError("--mirror is empty", hint=_HINT)
        parsed = urllib.parse.urlparse(raw)
        if parsed.scheme in ("http", "https"):
            if not parsed.netloc:
                raise MirrorError(f"mirror URL {raw!r} has no host", hint=_HINT)
            return cls(raw.rstrip("/"), True)
        if parsed.scheme == "file":
            raw = urllib.request.url2pathname(parsed.path)
        elif parsed.scheme and len(parsed.scheme) > 1:  # 'c:' would be a Windows drive, anything else is a typo
            raise MirrorError(f"mirror {raw!r}: unsupported scheme {parsed.scheme!r}", hint=_HINT)
        folder = Path(raw).expanduser()
        if not folder.exists():
            raise MirrorError(f"mirror folder {folder} does not exist", hint=_HINT)
        if not folder.is_dir():
            raise MirrorError(f"mirror {folder} is not a folder", hint=_HINT)
        return cls(str(folder.resolve()), False)

    def names(self, file: PublishedFile) -> list[str]:
        """File names to try, in order: the card's name, then the URL's basename."""
        url_name = urllib.parse.unquote(posixpath.basename(urllib.parse.urlparse(file.url).path))
        return list(dict.fromkeys(n for n in (file.name, url_name) if n))

    def locate(self, name: str) -> str:
        """The URL or local path of `name` on this mirror."""
        if self.is_url:
            return f"{self.location}/{urllib.parse.quote(name)}"
        return str(Path(self.location) / name)

    def __str__(self) -> str:
        return self.location
