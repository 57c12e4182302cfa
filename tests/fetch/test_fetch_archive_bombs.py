"""Archive bombs: declared sizes over the budget are refused before anything is written, no
member may write more than it declares, and only the members the card names are unpacked."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from archives import SYMLINK, tar, tar_info, tar_link, tgz_of_zeros, zip_, zip_of_zeros
from fetch_cards import file_entry, make_card

from edgezoo.cli import main
from edgezoo.core.errors import ArchiveError
from edgezoo.fetch import archive as archive_mod
from edgezoo.fetch import fetch_member, tofu
from edgezoo.fetch import unpack as unpack_mod
from edgezoo.fetch.archive import MAX_RATIO, Budget, scan
from edgezoo.fetch.cache import published_path
from edgezoo.fetch.members import record_path
from edgezoo.fetch.unpack import unpack

MiB, GiB = 1 << 20, 1 << 30
GOOD = b"a harmless file\n"
SMALL = Budget(ratio=10, floor=0, cap=GiB, max_entries=50)  # makes bombs of a few MiB count as bombs


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_default_budget_refuses_a_1_mb_zip_of_1_gib_from_its_declared_sizes(tmp_path):
    bomb = zip_of_zeros(tmp_path / "bomb.zip", members=64, size=16 * MiB)
    size = bomb.stat().st_size
    with zipfile.ZipFile(bomb) as zf:  # what it would expand to, read by zipfile itself
        assert sum(i.file_size for i in zf.infolist()) == GiB
    assert size < 1.1 * MiB
    with pytest.raises(ArchiveError, match="an archive bomb") as info:
        scan(bomb, "zip")
    assert f"more than the {MAX_RATIO * size:,} allowed for a {size:,}-byte archive" in str(info.value)
    assert _only(tmp_path) == ["bomb.zip"]


def test_default_budget_refuses_a_2_gib_tgz_at_its_header_before_decompressing_it(tmp_path):
    bomb = tgz_of_zeros(tmp_path / "bomb.tgz", 2 * GiB)
    size = bomb.stat().st_size
    assert size < 2.5 * MiB
    with pytest.raises(ArchiveError, match="declare over 2,147,483,648 bytes \\(refused at 'zeros.bin'\\)") as info:
        scan(bomb, "tgz")
    assert f"{MAX_RATIO}x its size" in str(info.value)


def test_the_bomb_builders_make_archives_that_unpack_to_what_they_claim(tmp_path):
    # Also: below the floor (16 MiB) the ratio does not apply, so a small, highly compressed archive is fine.
    tgz = tgz_of_zeros(tmp_path / "z.tgz", 3 * MiB + 5, block=MiB)
    zipped = zip_of_zeros(tmp_path / "z.zip", members=3, size=MiB)
    assert unpack(tgz, "tgz", tmp_path / "t") == {"zeros.bin": 3 * MiB + 5}
    assert unpack(zipped, "zip", tmp_path / "z") == {f"zeros/{i:04d}.bin": MiB for i in range(3)}
    assert (tmp_path / "t/zeros.bin").read_bytes() == bytes(3 * MiB + 5)
    assert (tmp_path / "z/zeros/0002.bin").read_bytes() == bytes(MiB)


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_a_bomb_over_a_small_budget_is_refused_before_anything_is_written(tmp_path, kind):
    work = tmp_path / "w"
    work.mkdir()
    bomb = (tgz_of_zeros(work / "b.tgz", 4 * MiB, block=MiB) if kind == "tgz"
            else zip_of_zeros(work / "b.zip", members=4, size=MiB))
    assert bomb.stat().st_size * SMALL.ratio < 4 * MiB  # over the small budget
    with pytest.raises(ArchiveError, match="an archive bomb"):
        unpack(bomb, kind, work / "out", budget=SMALL)
    assert _only(work) == [bomb.name]  # not even the temporary folder was created


def test_too_many_entries_are_refused(tmp_path):
    many = zip_(tmp_path / "many.zip", [(f"f{i}", b"", 0) for i in range(SMALL.max_entries + 1)])
    with pytest.raises(ArchiveError, match="more than 50 entries"):
        scan(many, "zip", SMALL)


def test_a_zip_that_declares_less_than_it_holds_is_refused_and_leaves_nothing(tmp_path):
    liar = zip_of_zeros(tmp_path / "liar.zip", members=1, size=MiB, declared=1000)
    with pytest.raises(ArchiveError, match="cannot extract"):
        unpack(liar, "zip", tmp_path / "out")
    assert _only(tmp_path) == ["liar.zip"]


def test_the_writer_stops_at_the_declared_size(tmp_path):
    out = tmp_path / "member.bin"
    with pytest.raises(ArchiveError, match="'m.bin': holds more than the 10 bytes it declares"):
        unpack_mod._write_member(io.BytesIO(bytes(5 * MiB)), out, 10, tmp_path / "a.zip", "m.bin")
    assert out.stat().st_size <= 10
    with pytest.raises(ArchiveError, match="holds 3 bytes, not the 10 it declares"):
        unpack_mod._write_member(io.BytesIO(b"abc"), tmp_path / "short.bin", 10, tmp_path / "a.zip", "m.bin")


def test_a_tofu_bomb_through_the_cli_is_refused_deleted_and_untrusted(server, tmp_path, in_zoo, monkeypatch,
                                                                       capsys):
    monkeypatch.setattr(archive_mod, "DEFAULT_BUDGET", SMALL)
    data = zip_of_zeros(tmp_path / "bomb.zip", members=4, size=MiB).read_bytes()
    entry = file_entry("bomb.zip", server.add("bomb.zip", data), archive="zip", members=["zeros/0000.bin"])
    in_zoo(make_card(entry))  # checksum unknown: trusted on first use
    assert main(["fetch", "fetch-test"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "an archive bomb" in last and "deleted from the cache" in last
    cached = published_path("fetch-test", "bomb.zip")
    assert _only(cached.parent) == [] and tofu.trusted("fetch-test", "bomb.zip") is None


def test_a_card_checksummed_bomb_is_refused_and_stays_cached(server, tmp_path, monkeypatch):
    # Its bytes are the ones the card vouches for: fetching it again would give the same, so it is kept.
    monkeypatch.setattr(archive_mod, "DEFAULT_BUDGET", SMALL)
    data = tgz_of_zeros(tmp_path / "bomb.tgz", 4 * MiB, block=MiB).read_bytes()
    card = make_card(file_entry("bomb.tgz", server.add("bomb.tgz", data), data, archive="tgz"))
    with pytest.raises(ArchiveError, match="an archive bomb") as info:
        fetch_member(card, "bomb.tgz", "zeros.bin", progress=False)
    assert "deleted" not in str(info.value)
    assert _only(published_path("fetch-test", "bomb.tgz").parent) == ["bomb.tgz"]


# ----------------------------------------------------------------------------------------------------------------
# Only the members the card names


def _bundle(tmp_path: Path) -> Path:
    return tar(tmp_path / "bundle.tgz", [
        ("model/model.pb", GOOD), ("model/junk.bin", bytes(1000)), ("extra/notes.txt", GOOD),
        tar_link("alias.pb", "model/model.pb"), tar_info("hard.pb", tarfile.LNKTYPE, "model/model.pb")])


def test_unpack_extracts_the_named_members_and_what_their_links_need(tmp_path):
    bundle = _bundle(tmp_path)
    assert unpack(bundle, "tgz", tmp_path / "a", ["alias.pb"]) == {"model/model.pb": len(GOOD)}
    assert sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*")) == [
        "alias.pb", "model", "model/model.pb"]
    assert (tmp_path / "a/alias.pb").read_bytes() == GOOD
    assert unpack(bundle, "tgz", tmp_path / "h", ["hard.pb"]) == {"model/model.pb": len(GOOD),
                                                                  "hard.pb": len(GOOD)}
    assert unpack(bundle, "tgz", tmp_path / "d", ["model"]) == {"model/model.pb": len(GOOD),
                                                                "model/junk.bin": 1000}
    assert len(unpack(bundle, "tgz", tmp_path / "all")) == 4  # none named: everything


def test_fetch_member_unpacks_only_the_cards_members(server, tmp_path):
    data = _bundle(tmp_path).read_bytes()
    url = server.add("bundle.tgz", data)
    card = make_card(file_entry("bundle.tgz", url, data, archive="tgz", members=["model/model.pb"]))
    path = fetch_member(card, "bundle.tgz", "model/model.pb", progress=False)
    folder = path.parent.parent
    assert path.read_bytes() == GOOD and not (folder / "model/junk.bin").exists()
    assert not (folder / "extra").exists() and not (folder / "alias.pb").exists()
    with pytest.raises(ArchiveError, match="no member 'extra/notes.txt' among the 1 the card names"):
        fetch_member(card, "bundle.tgz", "extra/notes.txt", progress=False)

    # A card that names more members (or none) unpacks again, rather than reusing the narrower folder.
    wider = make_card(file_entry("bundle.tgz", url, data, archive="tgz",
                                 members=["model/model.pb", "extra/notes.txt"]))
    assert fetch_member(wider, "bundle.tgz", "extra/notes.txt", progress=False).read_bytes() == GOOD
    assert '"extra/notes.txt"' in record_path(published_path("fetch-test", "bundle.tgz")).read_text()
    everything = make_card(file_entry("bundle.tgz", url, data, archive="tgz"))
    assert fetch_member(everything, "bundle.tgz", "model/junk.bin", progress=False).read_bytes() == bytes(1000)


def test_zip_members_that_cannot_be_read_safely_are_refused_by_the_scan(tmp_path):
    # A symlink's target is its data: a link "to" 5,000 bytes would be read into memory whole.
    with pytest.raises(ArchiveError, match="'link': symlink target of 5,000 bytes"):
        scan(zip_(tmp_path / "l.zip", [("link", b"x" * 5000, SYMLINK)]), "zip")
    # The "encrypted" bit (zipfile would ask for a password while extracting), set in both headers by hand since
    # zipfile clears it when writing.
    raw = bytearray(zip_(tmp_path / "e.zip", [("secret.bin", b"data", 0)]).read_bytes())
    raw[6] |= 0x1
    raw[raw.index(b"PK\x01\x02") + 8] |= 0x1
    encrypted = tmp_path / "e.zip"
    encrypted.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="'secret.bin': encrypted member"):
        scan(encrypted, "zip")
