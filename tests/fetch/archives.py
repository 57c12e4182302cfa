"""Archives built in tests: tar/zip with any entry (links, devices, hostile names) and cheap archive bombs.

The bombs are genuine (valid CRCs, readable to the end by tarfile/zipfile) yet cost almost nothing to build: the
zeros are compressed once and the compressed bytes reused, as separate zip members or as concatenated gzip
members (a .tgz may consist of many).
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

SYMLINK = 0o120777  # stat.S_IFLNK | 0o777, the mode a Unix zip stores for a symlink


def tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A .tgz of `entries`: (name, data) regular files, or TarInfo headers without data (links, devices...)."""
    with tarfile.open(path, "w:gz") as tf:
        for e in entries:
            if isinstance(e, tuple):
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
            else:
                tf.addfile(e)
    return path


def tar_info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def tar_link(name: str, target: str) -> tarfile.TarInfo:
    return tar_info(name, tarfile.SYMTYPE, target)


def zip_(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    """entries: (name, data, unix mode incl. file type; 0 = plain file without Unix attributes)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode:
                info.create_system, info.external_attr = 3, mode << 16
            zf.writestr(info, data)
    return path


def zip_link(name: str, target: str) -> tuple[str, bytes, int]:
    return name, target.encode(), SYMLINK


def zip_of_zeros(path: Path, members: int, size: int, *, declared: int | None = None) -> Path:
    """A deflate zip of `members` files of `size` zero bytes each, written field by field so that the zeros are
    compressed once. `declared` makes the headers claim another uncompressed size (a lying archive)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    data = packer.compress(bytes(size)) + packer.flush()
    crc, claim = zlib.crc32(bytes(size)), size if declared is None else declared
    dos_date = (1 << 5) | 1  # 1980-01-01
    local, central = bytearray(), bytearray()
    for i in range(members):
        name = f"zeros/{i:04d}.bin".encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, zipfile.ZIP_DEFLATED, 0, dos_date, crc,
                             len(data), claim, len(name), 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, zipfile.ZIP_DEFLATED, 0, dos_date, crc,
                               len(data), claim, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, members, members, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def tgz_of_zeros(path: Path, size: int, *, block: int = 16 << 20) -> Path:
    """A .tgz holding one member 'zeros.bin' of `size` zero bytes, as concatenated gzip members: the header, the
    same compressed block of zeros repeated, then the rest, the tar padding and the end-of-archive blocks."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    repeats, rest = divmod(size, block)
    zeros = gzip.compress(bytes(block), compresslevel=9, mtime=0) if repeats else b""
    tail = bytes(rest + (-size) % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE)
    path.write_bytes(gzip.compress(info.tobuf(), mtime=0) + zeros * repeats + gzip.compress(tail, mtime=0))
    return path
