"""`edgezoo cache list|verify|clean|untrust`: see the cache and repair it without editing JSON.

Each action is a subcommand with its own options. argparse's own errors in these parsers (an unknown action, a
missing record) are printed as edgezoo's one line, like every other bad input, instead of a usage block.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from edgezoo.core.errors import VerificationFailed

if TYPE_CHECKING:
    from edgezoo.fetch.inventory import CacheEntry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list, verify and clean the cache; untrust a first-use record",
                       description="See and repair the cache (EDGEZOO_CACHE) without editing JSON.",
                       epilog="Entries a running edgezoo process is using are never removed; they are reported "
                              "and kept.")
    _one_line_errors(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = _action(actions, "list", _list, "every entry with its size and trust state (card checksum, trusted on "
                                        "first use DATE, no record, stand-in), partial downloads, leftovers")
    a.add_argument("model", nargs="?", metavar="MODEL", help="only this model's entries")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    a = _action(actions, "verify", _verify, "re-hash cached published files against the card checksum or the "
                                            "first-use record (exit 1 on a mismatch)")
    a.add_argument("model", nargs="?", metavar="MODEL", help="only this model's files")

    a = _action(actions, "clean", _clean, "remove cache entries (first-use records are kept)")
    a.add_argument("model", nargs="?", metavar="MODEL", help="only this model's entries")
    a.add_argument("--stale", action="store_true",
                   help="only leftovers nobody uses: partial downloads, folders of interrupted runs, unpacked "
                        "folders whose archive is gone, stand-ins of older builder versions")

    a = _action(actions, "untrust", _untrust, "forget a first-use record and remove the cached copy, so that the "
                                              "next fetch records the file afresh")
    a.add_argument("record", metavar="MODEL/FILE_NAME",
                   help="the record as 'edgezoo cache list' shows it (FILE_NAME alone when unambiguous)")


def _action(actions: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int],
            summary: str) -> argparse.ArgumentParser:
    a = actions.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    _one_line_errors(a)
    a.set_defaults(handler=handler)
    return a


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    def error(message: str) -> NoReturn:
        parser.exit(2, f"edgezoo: error: {parser.prog.removeprefix('edgezoo ')}: {message} "
                       f"-- see '{parser.prog} --help'\n")

    parser.error = error  # type: ignore[method-assign]  # this parser only; the others keep argparse's


def _list(args: argparse.Namespace) -> int:
    from edgezoo.fetch.cache import cache_root
    from edgezoo.fetch.cache_admin import list_cache
    from edgezoo.core.report import render_table

    entries = list_cache(args.model)
    root = cache_root()
    total = sum(e.size for e in entries)
    if args.json:
        print(json.dumps({"root": str(root), "entries": [_entry_json(e) for e in entries], "total_bytes": total},
                         indent=2))
        return 0
    if not entries:
        print(f"nothing cached{' for ' + args.model if args.model else ''} in {root}")
        return 0
    print(render_table(["model", "kind", "bytes", "state", "path"], [_row(e, root) for e in entries]))
    print(f"total: {len(entries)} entries, {total:,} bytes in {root}")
    return 0


def _entry_json(e: CacheEntry) -> dict:
    return {"kind": e.kind.value, "models": list(e.models), "file": e.file, "path": str(e.path), "bytes": e.size,
            "state": e.state, "trust": e.trust.value if e.trust else None, "recorded": e.recorded or None,
            "stale": e.stale or None, "in_use": e.busy}


def _row(e: CacheEntry, root: Path) -> list:
    return [", ".join(e.models) or "-", e.kind.value, e.size, e.state, _rel(e.path, root)]


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _verify(args: argparse.Namespace) -> int:
    from edgezoo.fetch.cache import cache_root
    from edgezoo.fetch.cache_admin import Status, verify_cache
    from edgezoo.core.report import render_table

    results = verify_cache(args.model)
    if not results:
        print(f"no published files cached{' for ' + args.model if args.model else ''} in {cache_root()}")
        return 0
    print(render_table(["model", "file", "bytes", "result", "detail"],
                       [[r.entry.models[0], r.entry.file, r.entry.size, r.status.value, r.detail] for r in results]))
    counts = {s: sum(r.status is s for r in results) for s in Status}
    print(f"{len(results)} files: " + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n))
    bad = [f"{r.entry.models[0]}/{r.entry.file}" for r in results if r.status is Status.MISMATCH]
    if bad:
        raise VerificationFailed(f"{len(bad)} cached file(s) failed verification: {', '.join(bad)}",
                                 hint="'edgezoo fetch MODEL' replaces a corrupt copy; if the publisher changed a "
                                      "file trusted on first use, 'edgezoo cache untrust MODEL/FILE_NAME'")
    return 0


def _clean(args: argparse.Namespace) -> int:
    from edgezoo.fetch.cache import cache_root
    from edgezoo.fetch.cache_admin import clean, clean_plan
    from edgezoo.fetch.inventory import Trust
    from edgezoo.core.report import render_table

    plan = clean_plan(args.model, stale=args.stale)
    root = cache_root()
    what = ("stale leftovers" if args.stale else "entries") + (f" of {args.model}" if args.model else "")
    if not plan:
        print(f"no {what} to remove in {root}")
        return 0
    print(render_table(["model", "kind", "bytes", "why" if args.stale else "state", "path"],
                       [[", ".join(e.models) or "-", e.kind.value, e.size, e.stale if args.stale else e.state,
                         _rel(e.path, root)] for e in plan]))
    print(f"removing {len(plan)} {what}, {sum(e.size for e in plan):,} bytes, from {root}", flush=True)
    done = clean(plan)
    print(f"removed {len(done.removed)}, {done.freed:,} bytes freed")
    for e in done.in_use:
        print(f"kept {_rel(e.path, root)}: a running edgezoo process is using it")
    if any(e.trust is Trust.FIRST_USE for e in done.removed):
        print("first-use records were kept: the next fetch is checked against them "
              "('edgezoo cache untrust MODEL/FILE_NAME' forgets one)")
    return 0


def _untrust(args: argparse.Namespace) -> int:
    from edgezoo.fetch.cache_admin import untrust

    done = untrust(args.record)
    rec = done.record
    print(f"forgot the first-use record {done.key}"
          + (f" (sha256:{rec.sha256}, {rec.size:,} bytes, recorded {rec.recorded})" if rec else ""))
    if done.removed:
        print(f"removed the cached copy ({done.freed:,} bytes): " + ", ".join(done.removed))
    else:
        print("no cached copy to remove")
    print("the next fetch downloads it and records its sha256 afresh")
    return 0
