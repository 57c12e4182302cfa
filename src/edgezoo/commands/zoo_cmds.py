"""`edgezoo list` and `edgezoo info MODEL | RECIPE | --recipes`."""

from __future__ import annotations

import argparse
import json

from edgezoo import zoo
from edgezoo.core.report import render_table
from edgezoo.zoo.describe import card_to_dict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the models in the zoo")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_list)

    p = sub.add_parser("info", help="show one model card, or the export recipes and their parameters")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="model id or alias (see 'edgezoo list'), or a recipe name (see --recipes)")
    p.add_argument("--recipes", action="store_true",
                   help="every export recipe (the zoo's and the --graph routes') with its parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_info)


def run_list(args: argparse.Namespace) -> int:
    cards = zoo.all_cards()
    if args.json:
        print(json.dumps([{"id": c.id, "title": c.title, "aliases": list(c.aliases), "task": c.task.value,
                           "targets": [t.value for t in c.recipes]} for c in cards], indent=2))
        return 0
    rows = [[c.id, c.task.value, ", ".join(t.value for t in c.recipes), ", ".join(c.aliases),
             f"{c.accuracy.metric} {c.accuracy.reference:g} (target {c.accuracy.target:g})"] for c in cards]
    print(render_table(["model", "task", "targets", "aliases", "reference accuracy"], rows))
    return 0


def _params_table(rows: list[dict[str, str]], indent: str) -> str:
    table = render_table(["name", "type", "range", "default", "meaning"],
                         [[p["name"], p["type"], p["range"] or "-", p["default"], p["meaning"]] for p in rows])
    return "\n".join(indent + line for line in table.splitlines())


def _run_recipes(names: list[str] | None, as_json: bool) -> int:
    from edgezoo.recipes import recipe_descriptions

    described = [d for d in recipe_descriptions() if names is None or d["recipe"] in names]
    if as_json:
        print(json.dumps(described, indent=2))
        return 0
    for d in described:
        print(f"{d['recipe']}: {d['summary']}")
        print(f"  used by: {', '.join(d['cards']) or 'export --graph'}")
        print(_params_table(d["params"], "  ") if d["params"] else "  parameters: none")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from edgezoo.core.errors import UnknownModelError
    from edgezoo.recipes import recipe_names, recipe_parameters  # imports the recipe modules: never for `list`

    if args.recipes or args.model is None:
        if args.model is not None:
            raise UnknownModelError("--recipes lists every recipe: give no MODEL with it")
        return _run_recipes(None, args.json)
    if args.model in recipe_names():
        return _run_recipes([args.model], args.json)
    card = zoo.get_card(args.model)
    data = card_to_dict(card)
    data["recipe_parameters"] = recipe_parameters(card)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{card.id}: {card.title}")
    if card.description:
        print(f"  {card.description}")
    print(f"  task: {card.task.value}; aliases: {', '.join(card.aliases) or '-'}")
    print("  files:")
    for f in card.files:
        size = f"{f.size:,} B" if f.size else "size unknown"
        print(f"    {f.name}  ({size}, {f.checksum}{', opset ' + str(f.opset) if f.opset else ''})")
        print(f"      {f.url}")
        if f.note:
            print(f"      note: {f.note}")
    print("  formats:")
    for fmt, spec in card.formats.items():
        where = f"{spec.file}" + (f" :: {spec.member}" if spec.member else "")
        print(f"    {fmt.value}: {where}")
        for t in spec.inputs:
            print(f"      in  {t.name} {list(t.shape)} {t.dtype} {t.layout}")
        for t in spec.outputs:
            print(f"      out {t.name} {list(t.shape)} {t.dtype}{' (' + t.role + ')' if t.role else ''}")
    pp = card.preprocess
    print(f"  preprocess: resize {pp.resize} ({pp.resize_mode}, {pp.interpolation}), crop {pp.crop or '-'}, "
          f"{pp.color}, mean {list(pp.mean)}, scale {list(pp.scale)}, {pp.layout}")
    lb = card.labels
    print(f"  labels: {lb.dataset}, {lb.num_classes} classes, offset {lb.offset:+d}{', map ' + lb.map if lb.map else ''}")
    acc = card.accuracy
    print(f"  accuracy: {acc.metric} reference {acc.reference:g}, MLPerf target {acc.target:g} "
          f"({acc.target_fraction:.0%} of reference)")
    print("  recipes:")
    for target, recipe in card.recipes.items():
        params = ", ".join(f"{k}={v}" for k, v in recipe.params.items())
        print(f"    {target.value}: {recipe.name}{' (' + params + ')' if params else ''}")
    print("  recipe parameters (--param NAME=VALUE):")
    for target, described in data["recipe_parameters"].items():
        print(f"    {target} ({described['recipe']}):" + ("" if described["params"] else " none"))
        if described["params"]:
            print(_params_table(described["params"], "      "))
    if card.tolerances:
        print("  tolerances: " + ", ".join(f"{k}={v:g}" for k, v in card.tolerances.items()))
    return 0
