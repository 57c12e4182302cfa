"""Structure figures of the package, for the working tree or any git revision:

    flat modules        .py files directly in src/edgezoo/ (cli.py, __init__.py and __main__.py included)
    upward imports      internal imports (module level or inside functions) whose target's package lies above the
                        importer's in the layer order of tests/import_graph.py; distinct (module, imported module)
    local imports       `import` statements of edgezoo modules inside function bodies (commands/ and cli.py
                        shown apart: they keep `edgezoo --help` from loading numpy and friends)
    module cycles       groups of modules that import each other (at module level; with local imports too)
    files to add model  the files a new MLPerf model touches: its card, its stand-in builder, its test, every Python
                        table keyed by model id, and a hand-kept list of builder modules
    modules > 400 lines the package's modules longer than 400 lines (and the longest one)
    export pipelines    modules that write and publish an export bundle (call publish_bundle)

Usage: python benchmarks/structure_counts.py [REV]   (REV: a commit; default: the working tree)
Older layouts had flat modules; LEGACY says which layer each belongs to, so their upward imports are counted under the
same order.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from import_graph import LAYERS, layer_of, module_cycles, read_imports, upward  # noqa: E402

# Flat modules of earlier layouts -> the layer they belong to.
LEGACY = {
    "errors": "core", "progress": "core", "report": "core", "interrupts": "core", "registry": "core",
    "runners": "graphs", "convert": "graphs", "images": "datasets", "preprocess": "preprocessing",
    "bundle": "bundle", "bundle_config": "bundle", "ti_package": "bundle", "provenance": "bundle",
    "export": "export", "export_graph": "export", "export_od_api": "export", "export_onnx_ssd": "export",
    "export_report": "export", "export_sources": "export",
}


def _files(rev: str | None) -> dict[str, str]:
    """repo-relative path -> text of every file under src/ and tests/."""
    if rev is None:
        return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8", errors="replace")
                for base in ("src", "tests") for p in (ROOT / base).rglob("*") if p.is_file()
                and "__pycache__" not in p.parts}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "src", "tests"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, check=True, capture_output=True,
                              text=True, errors="replace").stdout for n in names}


def _sources(files: dict[str, str]) -> dict[str, tuple[str, bool]]:
    out = {}
    for path, text in files.items():
        if path.startswith("src/edgezoo/") and path.endswith(".py"):
            parts = path[len("src/"):-len(".py")].split("/")
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            out[".".join(parts)] = (text, is_package)
    return out


def _layer(module: str) -> str | None:
    layer = layer_of(module, LEGACY)
    return layer if layer in LAYERS else None


def _files_to_add_a_model(files: dict[str, str]) -> tuple[int, list[str]]:
    ids = [m.group(1) for path, text in files.items() if path.startswith("src/edgezoo/zoo/cards/")
           for m in [re.search(r"^id:\s*(\S+)", text, re.M)] if m]
    keyed = re.compile(r"""["'](%s)["']\s*:""" % "|".join(re.escape(i) for i in ids))
    tables = sorted(p for p, t in files.items() if p.startswith("src/") and p.endswith(".py") and keyed.search(t))
    lists = sorted(p for p, t in files.items() if p.endswith("standins/__init__.py")
                   and re.search(r"[\"']edgezoo\.standins\.\w+[\"']", t))
    touched = ["the card (zoo/cards/<id>.yaml)", "its stand-in builder", "its test"] + tables + lists
    return len(touched), touched


def counts(rev: str | None = None) -> dict[str, object]:
    files = _files(rev)
    sources = _sources(files)
    imports = read_imports(sources)
    flat = sorted(m for m, (_, pkg) in sources.items() if m.count(".") == 1 and not pkg)
    up = upward(imports, LAYERS, _layer)
    up_pairs = sorted({(i.source, i.target) for i in up})
    local = {(i.source, i.line) for i in imports if i.local}
    local_cli = {x for x in local if _layer(x[0]) in ("commands", "cli")}
    n_model, model_files = _files_to_add_a_model(files)
    lengths = {m: text.count("\n") for m, (text, _) in sources.items()}
    longest = max(lengths, key=lengths.get)
    writers = sorted(m for m, (text, _) in sources.items()
                     if re.search(r"(?<!def )\bpublish_bundle\(", text))
    return {
        "flat modules": len(flat) + 1,  # + __init__.py
        "upward imports": len(up_pairs),
        "upward package pairs": Counter(f"{_layer(s)} -> {_layer(t)}" for s, t in up_pairs),
        "local internal imports": len(local),
        "  of which in commands/ and cli.py": len(local_cli),
        "module cycles (module level)": len(module_cycles(imports)),
        "module cycles (local imports too)": len(module_cycles(imports, with_local=True)),
        "_cycles": module_cycles(imports, with_local=True),
        "files to add a model": n_model,
        "modules > 400 lines": sum(n > 400 for n in lengths.values()),
        "longest module (lines)": f"{longest.removeprefix('edgezoo.')} ({lengths[longest]})",
        "export pipelines": len(writers),
        "_writers": writers,
        "_model_files": model_files,
        "_flat": flat,
    }


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    figures = counts(rev)
    print(f"structure of {rev or 'the working tree'}")
    print(f"{'figure':<38} value")
    for key, value in figures.items():
        if key.startswith("_") or isinstance(value, Counter):
            continue
        print(f"{key:<38} {value}")
    pairs = figures["upward package pairs"]
    if pairs:
        print("upward imports by package pair: " + ", ".join(f"{k} x{v}" for k, v in sorted(pairs.items())))
    for group in figures["_cycles"]:
        print("cycle: " + " <-> ".join(group))
    print("flat modules: " + ", ".join(m.split(".", 1)[1] for m in figures["_flat"]))
    print("export pipelines: " + ", ".join(w.removeprefix("edgezoo.") for w in figures["_writers"]))
    print("a new model touches: " + "; ".join(figures["_model_files"]))


if __name__ == "__main__":
    main()
