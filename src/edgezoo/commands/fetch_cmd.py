"""`edgezoo fetch` (being built; see docs/ARCHITECTURE.md for the owner module)."""

from __future__ import annotations

import argparse

from edgezoo.errors import EdgezooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="(not available yet)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise EdgezooError("'fetch' is not available in this build yet")
