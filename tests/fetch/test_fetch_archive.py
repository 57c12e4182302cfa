"""Safe unpacking: every malicious-archive trick is refused before anything is extracted; good archives unpack
once into the cache and are reused while the archive is unchanged."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import pytest
from archives import tar, tar_info, zip_
from fetch_cards import file_entry, make_card

from edgezoo.cli import main
from edgezoo.core.errors import ArchiveError
from edgezoo.fetch import Source, fetch_member, resolve_member
from edgezoo.fetch.archive import scan
from edgezoo.fetch.unpack import unpack
from edgezoo.fetch.cache import published_path

GOOD = b"a harmless file\n"


TAR_TRICKS = {
    "absolute path": [("ok.txt", GOOD), ("/tmp/evil.txt", b"x")],
    "'..' in the path": [("ok.txt", GOOD), ("sub/../../evil.txt", b"x")],
    "symlink points outside": [("ok.txt", GOOD), tar_info("link", tarfile.SYMTYPE, "../../etc/passwd")],
    "symlink to absolute path": [("ok.txt", GOOD), tar_info("link", tarfile.SYMTYPE, "/etc/passwd")],
    "hardlink points outside": [("ok.txt", GOOD), tar_info("hard", tarfile.LNKTYPE, "../outside.txt")],
    "hardlink to absolute": [("ok.txt", GOOD), tar_info("hard2", tarfile.LNKTYPE, "/etc/shadow")],
    "device file": [("ok.txt", GOOD), tar_info("dev/null", tarfile.CHRTYPE)],
    "block device": [("ok.txt", GOOD), tar_info("dev/sda", tarfile.BLKTYPE)],
    "fifo": [("ok.txt", GOOD), tar_info("pipe", tarfile.FIFOTYPE)],
}

ZIP_TRICKS = {
    "absolute path": [("ok.txt", GOOD, 0), ("/tmp/evil.txt", b"x", 0)],
    "'..' in the path": [("ok.txt", GOOD, 0), ("../evil.txt", b"x", 0)],
    "'..' with backslashes": [("ok.txt", GOOD, 0), ("..\\evil.txt", b"x", 0)],
    "symlink points outside": [("ok.txt", GOOD, 0), ("link", b"../../etc", stat.S_IFLNK | 0o777)],
    "symlink to absolute path": [("ok.txt", GOOD, 0), ("link", b"/etc", stat.S_IFLNK | 0o777)],
    "device file": [("ok.txt", GOOD, 0), ("dev", b"", stat.S_IFCHR | 0o644)],
    "fifo": [("ok.txt", GOOD, 0), ("pipe", b"", stat.S_IFIFO | 0o644)],
}


def _assert_nothing_extracted(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name != "evil.tgz" and p.name != "evil.zip"] == []


@pytest.mark.parametrize("trick", list(TAR_TRICKS))
def test_tar_trick_is_refused_before_extracting(tmp_path, trick):
    work = tmp_path / "w"
    work.mkdir()
    archive = tar(work / "evil.tgz", TAR_TRICKS[trick])
    dest = work / "out"
    with pytest.raises(ArchiveError) as info:
        unpack(archive, "tgz", dest)
    reason = trick.split(" (")[0].replace("block device", "device file").replace("hardlink to absolute",
                                                                                "hardlink points outside")
    assert reason in str(info.value) and "nothing was extracted" in str(info.value)
    _assert_nothing_extracted(dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("trick", list(ZIP_TRICKS))
def test_zip_trick_is_refused_before_extracting(tmp_path, trick):
    work = tmp_path / "w"
    work.mkdir()
    archive = zip_(work / "evil.zip", ZIP_TRICKS[trick])
    dest = work / "out"
    with pytest.raises(ArchiveError) as info:
        unpack(archive, "zip", dest)
    reason = {"'..' with backslashes": "'..' in the path", "fifo": "fifo or socket"}.get(trick, trick)
    assert reason in str(info.value)
    _assert_nothing_extracted(dest)


def test_links_inside_the_archive_are_fine(tmp_path):
    archive = tar(tmp_path / "ok.tgz", [("d/real.txt", GOOD), tar_info("d/alias", tarfile.SYMTYPE, "real.txt"),
                                         tar_info("top", tarfile.SYMTYPE, "d/../d/real.txt"),
                                         tar_info("hard", tarfile.LNKTYPE, "d/real.txt")])
    files = unpack(archive, "tgz", tmp_path / "out")
    assert files == {"d/real.txt": len(GOOD), "hard": len(GOOD)}
    assert (tmp_path / "out/d/alias").read_bytes() == GOOD and (tmp_path / "out/hard").read_bytes() == GOOD
    z = zip_(tmp_path / "ok.zip", [("d/real.txt", GOOD, 0), ("d/alias", b"real.txt", stat.S_IFLNK | 0o777)])
    unpack(z, "zip", tmp_path / "outz")
    assert (tmp_path / "outz/d/alias").is_symlink() and (tmp_path / "outz/d/alias").read_bytes() == GOOD


def test_corrupt_archive_is_an_archive_error(tmp_path):
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"\x1f\x8b\x08 not really gzip")
    with pytest.raises(ArchiveError, match="not a readable tgz archive"):
        scan(bad, "tgz")
    truncated = tmp_path / "t.zip"
    truncated.write_bytes(zip_(tmp_path / "z.zip", [("a", GOOD * 100, 0)]).read_bytes()[:-30])
    with pytest.raises(ArchiveError):
        unpack(truncated, "zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _archive_card(server, tmp_path, entries, name="bundle.tgz", members=("model/model.pb",)):
    data = tar(tmp_path / name, entries).read_bytes()
    return make_card(file_entry(name, server.add(name, data), data, archive="tgz", members=list(members))), data


def test_fetch_member_unpacks_once_and_reuses(server, tmp_path):
    pb = b"frozen graph bytes" * 100
    card, _ = _archive_card(server, tmp_path, [("model/model.pb", pb), ("model/info.txt", GOOD)])
    first = resolve_member(card, "bundle.tgz", "model/model.pb", progress=False)
    assert first.path.read_bytes() == pb and first.source is Source.UNPACKED
    assert first.path.parent.parent.name == "bundle.tgz.unpacked"
    mtime = first.path.stat().st_mtime_ns
    again = fetch_member(card, "bundle.tgz", "./model/model.pb", progress=False)
    assert again == first.path and again.stat().st_mtime_ns == mtime  # reused, not unpacked again
    assert len(server.log) == 1

    first.path.write_bytes(b"truncated")  # a damaged member -> unpacked again from the verified archive
    assert fetch_member(card, "bundle.tgz", "model/model.pb", progress=False).read_bytes() == pb


def test_missing_member_suggests_close_names(server, tmp_path):
    card, _ = _archive_card(server, tmp_path, [("model/model.pb", GOOD)])
    with pytest.raises(ArchiveError, match="no member 'model/modle.pb'.*did you mean 'model/model.pb'"):
        fetch_member(card, "bundle.tgz", "model/modle.pb", progress=False)


def test_malicious_published_archive_through_the_cli(server, tmp_path, in_zoo, capsys):
    card, _ = _archive_card(server, tmp_path, [("model/model.pb", GOOD), ("../../escape.txt", b"x")],
                            name="evil.tgz")
    in_zoo(card)
    assert main(["fetch", "fetch-test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "refusing entry '../../escape.txt': '..' in the path" in err
    cached = published_path("fetch-test", "evil.tgz")
    assert cached.is_file()  # the archive itself verified fine (its checksum is the card's) ...
    assert not (cached.parent / "evil.tgz.unpacked").exists()  # ... but nothing of it was unpacked
    assert [p.name for p in cached.parent.iterdir()] == ["evil.tgz"]
