"""`edgezoo fetch`: the table, --json, --file, and one-line errors for bad arguments."""

from __future__ import annotations

import hashlib
import json

from fetch_cards import file_entry, make_card
from loopback_server import sized

from edgezoo.cli import main

DATA = sized(10_000, seed=9)


def test_table_lists_file_size_sha256_source_and_path(server, in_zoo, capsys):
    in_zoo(make_card(file_entry("model.onnx", server.add("model.onnx", DATA), DATA)))
    assert main(["fetch", "fetch-test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["model", "file", "bytes", "sha256[:16]", "source", "path"]
    row = lines[2].split()
    assert row[:5] == ["fetch-test", "model.onnx", "10,000", hashlib.sha256(DATA).hexdigest()[:16], "download"]
    assert row[5].endswith("published/fetch-test/model.onnx")

    assert main(["fetch", "--all", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["source"] == "cache" and entry["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert entry["standin"] is False


def test_argument_errors_are_one_line_exit_2(in_zoo, capsys):
    in_zoo(make_card(file_entry("model.onnx", "https://zenodo.example/model.onnx", DATA)))
    for argv, expected in ((["fetch"], "no model given"),
                           (["fetch", "fetch-test", "--all"], "not both"),
                           (["fetch", "fetch-tset"], "did you mean 'fetch-test'"),
                           (["fetch", "fetch-test", "--file", "modle.onnx"], "did you mean 'model.onnx'")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err, (argv, err)
