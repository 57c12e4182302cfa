"""`edgezoo demo`: the whole pipeline on stand-ins, offline."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline for the zoo on stand-ins, offline")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgezoo.commands.zoo_cmds import run_list

    return run_list(argparse.Namespace(json=False))
