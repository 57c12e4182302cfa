"""Image files before they are decoded: is the file there and readable, and how big will it be once decoded?

A PNG of a few megabytes can declare 30000x30000 pixels and decode to gigabytes ("decompression bomb"). The size is
in the file's header, so it is read there (Pillow reads headers without decoding) and checked against a pixel
budget before OpenCV decodes anything. Decoding threads also share one budget of pixels in flight
(`decode_slot`), so a pool of N threads never holds N large images at once.

A missing file, one whose name the file system cannot hold (over 255 bytes: ENAMETOOLONG), or one that cannot be
read is a DatasetError naming it, like a corrupt one: with --skip-bad it is skipped and counted.
"""

from __future__ import annotations

import errno
import os
import warnings
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgezoo.core.errors import DatasetError

# 8192 x 8192: larger than any photograph of ImageNet (largest about 5000 x 4000) or COCO (640 x 640). Decoded as
# BGR uint8 that is 192 MiB, and preprocessing makes a few resized copies of it.
MAX_IMAGE_PIXELS = 1 << 26
# Pixels being decoded or preprocessed at the same time across the decoding threads of this process: two images at
# the budget, or any number of ordinary ones (an ImageNet photograph is about 0.2 megapixels).
IN_FLIGHT_PIXELS = 2 * MAX_IMAGE_PIXELS
SKIP_HINT = "restore it, or pass --skip-bad to leave out missing and corrupt images (they are counted)"
# Pillow warns about images between its own limit (89 megapixels) and twice it; ours is lower and decides, with an
# error naming the file. A filter set once: warnings.catch_warnings() is not safe in the decoding threads.
warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit of \d+ pixels, could be "
                                          r"decompression bomb", category=RuntimeWarning)
_NAME_SHOWN = 80  # characters of an overlong file name quoted in a message


def shown_path(path: Path) -> str:
    """A path for a message, an overlong one cut in the middle."""
    text = str(path)
    return text if len(text) <= 2 * _NAME_SHOWN else f"{text[:_NAME_SHOWN]}...{text[-_NAME_SHOWN:]}"


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be an image file ("is missing", ...), or None when it is a readable regular file."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "is missing"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "has a name longer than the file system allows (255 bytes per name)"
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(mode):
        return "is not a file"
    return None


def image_pixels(path: Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> int:
    """width x height from the file's header, checked against `max_pixels`; DatasetError naming the file when it
    is missing, unreadable, not an image Pillow recognises, or larger than the budget."""
    from PIL import Image  # lazy: reads headers only; decoding stays OpenCV's (MLPerf's loader)

    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise DatasetError(f"image {shown_path(path)} {problem}", hint=SKIP_HINT)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:  # past twice Pillow's own limit, which is above ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _over_budget(path, int(found.group(1)) if found else max_pixels + 1, "", max_pixels) from None
    except (OSError, ValueError, SyntaxError):  # UnidentifiedImageError is an OSError
        raise DatasetError(f"image {shown_path(path)} cannot be decoded (corrupt or not an image)",
                           hint=SKIP_HINT) from None
    pixels = int(width) * int(height)
    if pixels > max_pixels:
        raise _over_budget(path, pixels, f"{width}x{height} = ", max_pixels)
    return pixels


def _over_budget(path: Path, pixels: int, size: str, max_pixels: int) -> DatasetError:
    return DatasetError(f"image {shown_path(path)} is {size}{pixels:,} pixels, over the budget of {max_pixels:,} "
                        f"(decoding it would take {3 * pixels / 2**30:.1f} GiB)",
                        hint="a decompression bomb? " + SKIP_HINT)


class PixelGate:
    """A budget of pixels shared by decoding threads: `hold(n)` waits until n more pixels fit, then keeps them
    until the block ends. One request never waits for more than the whole budget (it is capped to it)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.peak = 0  # the most pixels held at once (for the benchmarks)
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        pixels = max(0, min(int(pixels), self.budget))
        with self._cond:
            self._cond.wait_for(lambda: self.used + pixels <= self.budget)
            self.used += pixels
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= pixels
                self._cond.notify_all()


DECODE_GATE = PixelGate(IN_FLIGHT_PIXELS)


@contextmanager
def decode_slot(sample: Any) -> Iterator[None]:
    """Around decoding + preprocessing one sample on a pool: its header checked (DatasetError when it is missing,
    unreadable or over the budget) and its pixels held in the process-wide DECODE_GATE."""
    path = getattr(sample, "path", None)
    if path is None:
        yield
        return
    with DECODE_GATE.hold(image_pixels(path)):
        yield
