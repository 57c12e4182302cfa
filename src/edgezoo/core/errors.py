"""One exception hierarchy for everything a user can get wrong.

Every `EdgezooError` renders as one line: what was wrong, with its context ("mobilenet-v1: files[1].sha256: ..."),
followed by a hint saying what to do. The CLI prints that line on stderr and exits with `exit_code`
(2 = bad input; 1 = verification failed), never with a traceback.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class EdgezooError(Exception):
    """Base of all user-facing errors."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = " ".join(self.message.split())  # always one line
        if self.hint:
            text += f" -- {' '.join(self.hint.split())}"
        return text

    def with_context(self, context: str) -> "EdgezooError":
        """Prefix the message with where it happened ("In model X: ...") and return self."""
        self.message = f"{context}: {self.message}"
        return self


class CardError(EdgezooError):
    """A model card (zoo/cards/*.yaml) is malformed; the message names the field path."""


class UnknownModelError(EdgezooError):
    """A model id or alias that is not in the zoo."""


class FetchError(EdgezooError):
    """Downloading, caching or locating a published file failed."""


class ChecksumMismatchError(FetchError):
    """The bytes on disk or on the wire do not match the card's checksum."""


class SizeMismatchError(FetchError):
    """The byte count does not match the card's size."""


class NetworkError(FetchError):
    """The network failed after all retries."""


class OfflineMissError(FetchError):
    """--offline and the file is not in the cache."""


class MirrorError(FetchError):
    """A --mirror folder or URL is unusable."""


class ArchiveError(EdgezooError):
    """An archive is corrupt or unsafe (absolute paths, '..', links out, device files)."""


class ModelFileError(EdgezooError):
    """A model file (.pb, .onnx, .tflite) is missing, truncated or corrupt."""


class TensorNameError(EdgezooError):
    """A tensor or node name that the graph does not have."""


class RecipeError(EdgezooError):
    """A conversion recipe cannot run with the inputs or options it was given."""


class ConfigError(EdgezooError):
    """A pipeline.config, prototxt or other config text is malformed or inconsistent."""


class BundleError(EdgezooError):
    """The output folder cannot hold a bundle (not writable, a file in the way, ...)."""


class DiskFullError(EdgezooError):
    """The disk (or quota) ran out while edgezoo was writing; the message names the folder."""


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC / EDQUOT ("No space left on device", "Disk quota exceeded")."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: OSError, folder: object, doing: str) -> DiskFullError:
    """The one message for a full disk: what edgezoo was doing, in which folder, and what to do."""
    return DiskFullError(f"no space left on the device while {doing} in {folder} ({exc.strerror or exc})",
                         hint=f"free space there (df -h {folder}) or point the command at another folder")


def fullest_folder(*candidates: object) -> str:
    """Of the folders a failed write may have gone to, the one on the filesystem with the least free space.

    For an OSError without a file name: a write into the cache or the output folder may also have used the temp
    folder (builders and converters keep scratch files there), and the message must name the one that is full.
    """
    import shutil
    import tempfile

    def free(folder: str) -> int:
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            return 1 << 62  # gone or unreadable: not the one to name

    folders = [str(c) for c in candidates] + [tempfile.gettempdir()]
    return min(folders, key=free)  # on a tie (one filesystem) the first, i.e. the caller's own folder


class VerificationFailed(EdgezooError):
    """Parity between an original and its conversion exceeded the tolerances."""

    exit_code = 1


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most similar to `name`, best first (for "did you mean" hints)."""
    pool = list(dict.fromkeys(candidates))
    found = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if not found:
        # Long graph names often differ only in a prefix: fall back to a match on the last path part.
        tail = name.rsplit("/", 1)[-1].split(":")[0]
        found = [c for c in pool if tail and tail in c][:n]
    return found


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """A hint string "did you mean 'a', 'b'?" or a generic one when nothing is close."""
    found = closest(name, candidates, n)
    if found:
        return "did you mean " + ", ".join(repr(c) for c in found) + "?"
    return "no similar name found"


def tensor_not_found(name: str, candidates: Iterable[str], where: str, what: str = "tensor") -> TensorNameError:
    """The standard error for a wrong tensor/node name, listing the closest ones in the graph."""
    return TensorNameError(f"{where}: no {what} named {name!r}", hint=did_you_mean(name, candidates))


class SourceNotFoundError(NetworkError):
    """A server or mirror answered that it does not have the file (HTTP 404/410, missing mirror file)."""


class DatasetError(EdgezooError):
    """A dataset folder, its index files (val_map.txt, COCO annotations) or one of its images is unusable."""
