"""Options several commands share, declared once so they read and behave the same everywhere: the models
(MODEL... / --all), stand-ins, where originals come from, --out, --tolerance and --ray. Values are checked by the
API the commands call; the checks here are the ones argparse cannot express (a whole number in a range)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgezoo.core.errors import EdgezooError

MAX_RAY_ACTORS = 4096


def add_models(p: argparse.ArgumentParser, all_help: str = "every model in the zoo") -> None:
    p.add_argument("models", nargs="*", metavar="MODEL", help="model ids or aliases (see 'edgezoo list')")
    p.add_argument("--all", action="store_true", help=all_help)


def add_standin(p: argparse.ArgumentParser, what: str = "use stand-in files") -> None:
    p.add_argument("--standin", action="store_true",
                   help=f"{what} (built locally, same format and structure, random but realistic weights; "
                        "no download)")
    p.add_argument("--standin-variant", choices=("full", "reduced"), default="full",
                   help="stand-in size: full (published layer sizes) or reduced (narrow layers, fast)")


def add_sources(p: argparse.ArgumentParser) -> None:
    """Where published files come from: --mirror, --offline."""
    p.add_argument("--mirror", metavar="DIR|URL", help="a folder or base URL holding the published files")
    p.add_argument("--offline", action="store_true", help="never download; use the cache or --mirror only")


def add_bundle_check(p: argparse.ArgumentParser) -> None:
    """The override of the bundle reader's manifest check (eval, bench, quantize)."""
    p.add_argument("--allow-edited-bundle", action="store_true",
                   help="use a bundle whose files differ from the sha256 its manifest.json records (edited on "
                        "purpose); paths, sizes and fields are checked all the same")


def add_out(p: argparse.ArgumentParser, default: Path | None, what: str = "output folder") -> None:
    suffix = f" (default: {default})" if default is not None else ""
    p.add_argument("--out", type=Path, default=default, help=what + suffix)


def add_tolerance(p: argparse.ArgumentParser, example: str = "max_abs_error=1e-3") -> None:
    p.add_argument("--tolerance", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override a parity tolerance, e.g. {example} (repeatable)")


def add_ray(p: argparse.ArgumentParser, what: str) -> None:
    """--ray / --ray-actors; checked by ray_actors(args)."""
    p.add_argument("--ray", nargs="?", const="auto", metavar="auto|HOST:PORT",
                   help=f"run {what} on Ray actors: 'auto' starts a local Ray for this run, HOST:PORT joins "
                        "a running cluster (models and dataset at the same paths on every node); same results")
    p.add_argument("--ray-actors", metavar="N", help="Ray actors (one CPU each; default: every CPU of the cluster)")


def positive_int(value: str | None, option: str, *, maximum: int | None = None) -> int | None:
    """An option's integer value, checked: one clear error instead of a traceback or a silent clamp."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise EdgezooError(f"{option} {value!r}: not a whole number", hint=f"e.g. {option} 50") from None
    if number < 1 or (maximum is not None and number > maximum):
        limit = f"1..{maximum:,}" if maximum is not None else ">= 1"
        raise EdgezooError(f"{option} {number}: out of range ({limit})")
    return number


def ray_actors(args: argparse.Namespace) -> int | None:
    """--ray-actors checked, and a bad or unreachable --ray reported before any model is loaded."""
    from edgezoo.distributed import check_ray_target

    actors = positive_int(args.ray_actors, "--ray-actors", maximum=MAX_RAY_ACTORS)
    if args.ray is not None:
        check_ray_target(args.ray)
    elif actors is not None:
        raise EdgezooError("--ray-actors needs --ray", hint="add --ray auto or --ray HOST:PORT")
    return actors


def tolerances(args: argparse.Namespace) -> dict[str, float]:
    """--tolerance NAME=VALUE items as numbers (names and ranges are checked by the API against the task)."""
    from edgezoo.verify.tolerances import parse_assignments

    return parse_assignments(args.tolerance)
