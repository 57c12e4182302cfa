"""`edgezoo cache list|verify|clean|untrust`: see the cache and repair it without editing JSON.

One positional ACTION rather than nested subcommands, so that a mistyped action is our one-line error (exit 2)
like every other bad input, not argparse's usage block.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from edgezoo.errors import EdgezooError, VerificationFailed, did_you_mean

if TYPE_CHECKING:
    from edgezoo.fetch.inventory import CacheEntry

ACTIONS = ("list", "verify", "clean", "untrust")

_EPILOG = """\
actions:
  list [MODEL] [--json]     every entry: published files with their trust state (card checksum, trusted on first
                            use DATE, no record), unpacked archives, stand-ins, partial downloads, leftovers; sizes
  verify [MODEL]            re-hash published files against the card checksum or the first-use record
                            (exit 1 on a mismatch)
  clean [MODEL]             remove the entries (of MODEL); first-use records are kept
  clean --stale [MODEL]     remove only leftovers nobody uses: partial downloads, folders of interrupted runs,
                            unpacked folders whose archive is gone, stand-ins of older builder versions
  untrust MODEL/FILE_NAME   forget a first-use record and remove the cached copy (FILE_NAME alone if unambiguous)

Entries a running edgezoo process is using are never removed; they are reported and kept."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="list, verify and clean the cache; untrust a first-use record",
                       description="See and repair the cache (EDGEZOO_CACHE) without editing JSON.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", metavar="ACTION", help=" | ".join(ACTIONS))
    p.add_argument("target", nargs="?", metavar="MODEL|RECORD",
                   help="list/verify/clean: only this model; untrust: the record, MODEL/FILE_NAME")
    p.add_argument("--stale", action="store_true", help="clean: only leftovers that no running edgezoo uses")
    p.add_argument("--json", action="store_true", help="list: machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action not in ACTIONS:
        raise EdgezooError(f"unknown cache action {args.action!r}",
                           hint=f"{did_you_mean(args.action, ACTIONS)} (actions: {', '.join(ACTIONS)})")
    if args.json and args.action != "list":
        raise EdgezooError(f"--json goes with 'edgezoo cache list', not with {args.action!r}")
    if args.stale and args.action != "clean":
        raise EdgezooError(f"--stale goes with 'edgezoo cache clean', not with {args.action!r}")
    if args.action == "untrust" and not args.target:
        raise EdgezooError("'edgezoo cache untrust' needs the record to forget",
                           hint="give MODEL/FILE_NAME ('edgezoo cache list' shows the files trusted on first use)")
    return {"list": _list, "verify": _verify, "clean": _clean, "untrust": _untrust}[args.action](args)


def _list(args: argparse.Namespace) -> int:
    from edgezoo.fetch.cache import cache_root
    from edgezoo.fetch.cache_admin import list_cache
    from edgezoo.report import render_table

    entries = list_cache(args.target)
    root = cache_root()
    total = sum(e.size for e in entries)
    if args.json:
        print(json.dumps({"root": str(root), "entries": [_entry_json(e) for e in entries], "total_bytes": total},
                         indent=2))
        return 0
    if not entries:
        print(f"nothing cached{' for ' + args.target if args.target else ''} in {root}")
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
    from edgezoo.report import render_table

    results = verify_cache(args.target)
    if not results:
        print(f"no published files cached{' for ' + args.target if args.target else ''} in {cache_root()}")
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
    from edgezoo.report import render_table

    plan = clean_plan(args.target, stale=args.stale)
    root = cache_root()
    what = ("stale leftovers" if args.stale else "entries") + (f" of {args.target}" if args.target else "")
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

    done = untrust(args.target)
    rec = done.record
    print(f"forgot the first-use record {done.key}"
          + (f" (sha256:{rec.sha256}, {rec.size:,} bytes, recorded {rec.recorded})" if rec else ""))
    if done.removed:
        print(f"removed the cached copy ({done.freed:,} bytes): " + ", ".join(done.removed))
    else:
        print("no cached copy to remove")
    print("the next fetch downloads it and records its sha256 afresh")
    return 0
