"""Link chains: links that each look harmless but together leave the target are refused by the
scan, before anything is written; a refused archive trusted on first use is deleted and no longer trusted."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from archives import tar, tar_info, tar_link, zip_, zip_link

from edgezoo.cli import main
from edgezoo.core.errors import ArchiveError
from edgezoo.fetch import tofu
from edgezoo.fetch.archive import EntryKind, scan
from edgezoo.fetch.unpack import unpack
from edgezoo.fetch.cache import cache_root, published_path

GOOD = b"a harmless file\n"
CARD, ZIP = "ssd-resnet34-1200", "tf_ssd_resnet34_22.1.zip"  # a real card file with `checksum: unknown`


def _escape_zip(path: Path, escape_to: Path) -> Path:
    """The reported exploit: `a -> .`, `u1 -> a/..`, ... each `u<k>` one folder higher than the extraction folder,
    enough of them to reach '/', then a regular file written through the last link to `escape_to`."""
    levels = len(cache_root().parts) + 4  # the temporary folder: <cache>/published/<card>/.<zip>.unpacked.*.tmp
    assert levels < 40  # the kernel follows at most 40 links in one lookup
    links = [zip_link("a", ".")] + [zip_link(f"u{k}", f"{'a' if k == 1 else f'u{k - 1}'}/..")
                                    for k in range(1, levels + 1)]
    inside = escape_to.relative_to("/").as_posix()
    return zip_(path, [*links, (f"u{levels}/{inside}", b"PWNED\n", 0)])


def test_the_reported_zip_chain_through_the_cli_writes_nothing_outside_and_is_not_trusted(tmp_path, capsys):
    mirror, victim = tmp_path / "mirror", tmp_path / "somewhere" / "PWNED.txt"
    mirror.mkdir()
    _escape_zip(mirror / ZIP, victim)
    cached = published_path(CARD, ZIP)
    for attempt in (1, 2):  # the rerun must not find the archive cached and trusted, and must write nothing either
        assert main(["fetch", "ssd-resnet34", "--file", ZIP, "--mirror", str(mirror)]) == 2
        err = capsys.readouterr().err
        assert not victim.exists() and not victim.parent.exists(), f"attempt {attempt} wrote outside the cache"
        assert "trusting it on first use" in err  # it was trusted (again) after the copy ...
        last = err.strip().splitlines()[-1]
        assert last.startswith("edgezoo: error: ") and "Traceback" not in err
        assert f"refusing entry 'u{len(cache_root().parts) + 4}/" in last and "passes through the symlink" in last
        assert "deleted from the cache" in last and "trust-on-first-use record forgotten" in last
        assert not cached.exists() and tofu.trusted(CARD, ZIP) is None  # ... and no longer is
        assert list(cached.parent.iterdir()) == []  # no unpacked folder, no temporary folder, no .part


def test_without_the_scan_the_same_zip_would_escape(tmp_path):
    # The premise of the test above: the kernel really resolves this chain to `victim` (so the test above would
    # catch a regression). Built by hand with os.symlink in a scratch folder, never through edgezoo.
    scratch, victim = tmp_path / "x" / "y", tmp_path / "victim" / "PWNED.txt"
    scratch.mkdir(parents=True)
    os.symlink(".", scratch / "a")
    levels = len(scratch.parts) + 1
    for k in range(1, levels + 1):
        os.symlink(f"{'a' if k == 1 else f'u{k - 1}'}/..", scratch / f"u{k}")
    assert os.path.realpath(scratch / f"u{levels}" / victim.relative_to("/")) == str(victim)


LEAVING = {  # each link alone stays inside lexically; followed through the archive's other links, it leaves
    "link to the root, then up": [("a", "."), ("b", "a/..")],
    "link to a link, then up": [("sub/keep.txt", None), ("l1", "sub/.."), ("l2", "l1/..")],
    "link in a folder, up twice": [("sub/deep/keep.txt", None), ("sub/up", ".."), ("sub/up2", "up/..")],
    "target defined after the link": [("b", "a/.."), ("a", ".")],
    "a deep link to the root, then up": [("sub/deep/keep.txt", None), ("sub/deep/up", "../.."),
                                         ("x", "sub/deep/up/..")],
}


def _build(kind: str, path: Path, spec: list[tuple[str, str | None]]) -> Path:
    if kind == "tgz":
        return tar(path, [(n, GOOD) if t is None else tar_link(n, t) for n, t in spec])
    return zip_(path, [(n, GOOD, 0) if t is None else zip_link(n, t) for n, t in spec])


@pytest.mark.parametrize("kind", ["tgz", "zip"])
@pytest.mark.parametrize("case", list(LEAVING))
def test_scan_refuses_link_chains_that_leave(tmp_path, kind, case):
    archive = _build(kind, tmp_path / f"chain.{kind}", LEAVING[case])
    with pytest.raises(ArchiveError, match="symlink points outside the target .*other links are followed"):
        scan(archive, kind)
    with pytest.raises(ArchiveError):
        unpack(archive, kind, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]


REFUSED = {  # (entries, what the refusal says)
    "a file through a folder link": ([("sub/keep.txt", None), ("d", "sub"), ("d/new.txt", None)],
                                     "'d/new.txt': its path passes through the symlink 'd'"),
    "a file through a root link": ([("a", "."), ("a/x.txt", None)], "passes through the symlink 'a'"),
    "a loop": ([("a", "b"), ("b", "a")], "symlink loop"),
    "a self loop": ([("a", "a/x")], "symlink loop"),
    "a link replacing a folder": ([("d/x.txt", None), ("d", "elsewhere")],
                                  "given twice in the archive (as a dir and as a symlink)"),
    "a file under a file": ([("f", None), ("f/x.txt", None)], "passes through 'f', a file"),
    "a name given twice": ([("x.txt", None), ("x.txt", "y")], "given twice"),
}


@pytest.mark.parametrize("kind", ["tgz", "zip"])
@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile warns while writing the clash on purpose
def test_scan_refuses_writes_through_links_loops_and_clashes(tmp_path, kind, case):
    spec, why = REFUSED[case]
    with pytest.raises(ArchiveError, match=why.replace("(", r"\(").replace(")", r"\)")):
        scan(_build(kind, tmp_path / f"a.{kind}", spec), kind)


def test_hardlinks_must_name_an_earlier_regular_file(tmp_path):
    for entries, target in (([tar_info("h", tarfile.LNKTYPE, "later.txt"), ("later.txt", GOOD)], "later.txt"),
                            ([tar_link("s", "x"), tar_info("h", tarfile.LNKTYPE, "s")], "s")):
        with pytest.raises(ArchiveError, match=f"hardlink to '{target}', not a regular file earlier"):
            scan(tar(tmp_path / "h.tgz", entries), "tgz")


def test_links_that_stay_inside_are_resolved_and_extracted_last(tmp_path):
    spec = [("sub/deep/model.pb", None), ("l1", "sub"), ("l2", "l1/deep/model.pb"), ("sub/up", ".."),
            ("sub/deep/top", "../../l2"), ("root", ".")]
    for kind in ("tgz", "zip"):
        entries = {e.name: e for e in scan(_build(kind, tmp_path / f"ok.{kind}", spec), kind)}
        assert {n: e.target for n, e in entries.items() if e.kind is EntryKind.SYMLINK} == {
            "l1": "sub", "l2": "sub/deep/model.pb", "sub/up": "", "sub/deep/top": "sub/deep/model.pb",
            "root": ""}
        out = tmp_path / f"out-{kind}"
        unpack(tmp_path / f"ok.{kind}", kind, out)
        assert (out / "sub/deep/top").read_bytes() == GOOD and os.path.realpath(out / "root") == str(out)
