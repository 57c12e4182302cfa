"""`edgezoo fetch MODEL... | --all`: verified files (and their archive members) in the cache, as a table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from edgezoo.commands import options
from edgezoo.core.errors import EdgezooError, did_you_mean

if TYPE_CHECKING:
    from edgezoo.zoo.schema import ModelCard


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="download, verify and unpack a model's published files (or stand-ins)",
                       description="Download (or copy from --mirror) the files a model's formats use, verify size "
                                   "and checksum, keep them in the cache (EDGEZOO_CACHE) and unpack archives safely.")
    options.add_models(p)
    options.add_sources(p)
    options.add_standin(p, "build STAND-IN files instead of downloading")
    p.add_argument("--file", action="append", metavar="NAME", dest="files",
                   help="only this file of the model(s) (repeatable); any file of the card, used or not")
    p.add_argument("--json", action="store_true", help="machine-readable output (full sha256)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgezoo import zoo
    from edgezoo.fetch import Mirror, model_files, resolve_file, resolve_member
    from edgezoo.core.report import render_table
    from edgezoo.standins import STANDIN_BANNER, StandinVariant

    if args.all and args.models:
        raise EdgezooError("give MODEL names or --all, not both")
    if not args.all and not args.models:
        raise EdgezooError("no model given", hint="name one or more models (see 'edgezoo list') or use --all")
    cards = list(zoo.all_cards()) if args.all else list({c.id: c for c in map(zoo.get_card, args.models)}.values())
    mirror = Mirror.parse(args.mirror) if args.mirror else None
    variant = StandinVariant(args.standin_variant)
    plan = _plan(cards, args.files, args.standin, model_files)

    if args.standin and not args.json:
        print(f"{STANDIN_BANNER}: these files are stand-ins built by edgezoo (random weights, "
              f"{variant.value} variant), not the published models")
    results = []
    for card, name in plan:
        opts = dict(mirror=mirror, offline=args.offline, standin=args.standin, variant=variant, progress=True)
        fetched = resolve_file(card, name, **opts)
        results.append(fetched)
        for member in card.file(name).members if card.file(name).archive else ():
            results.append(resolve_member(card, name, member, **opts))

    if args.json:
        print(json.dumps([{"model": r.card_id, "file": r.name, "size": r.size, "sha256": r.sha256,
                           "source": r.source.value, "standin": r.standin, "origin": r.origin, "path": str(r.path)}
                          for r in results], indent=2))
        return 0
    rows = [[r.card_id, r.name, r.size, r.sha256[:16], r.source.value, str(r.path)] for r in results]
    print(render_table(["model", "file", "bytes", "sha256[:16]", "source", "path"], rows))
    return 0


def _plan(cards: Sequence[ModelCard], files: Sequence[str] | None, standin: bool,
          model_files: Callable[..., list[str]]) -> list[tuple[ModelCard, str]]:
    """(card, file name) pairs to fetch: the files the cards' formats use, or exactly the --file ones."""
    if not files:
        return [(card, name) for card in cards for name in model_files(card, standin=standin)]
    plan = [(card, f.name) for card in cards for f in card.files if f.name in files]
    known = {f.name for card in cards for f in card.files}
    for name in files:
        if name not in known:
            raise EdgezooError(f"no file named {name!r} in {', '.join(c.id for c in cards)}",
                               hint=did_you_mean(name, known))
    return plan
