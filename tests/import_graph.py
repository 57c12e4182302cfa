"""The package's layer order (data) and a reader of its internal import graph, for tests/test_layering.py and
benchmarks/structure_counts.py.

A package may import from its own layer and from the layers below it, never from a layer above -- at module level
or inside a function. docs/ARCHITECTURE.md explains the order.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "edgezoo"

# Bottom to top. A name is a subpackage of edgezoo (or a top-level module: cli, __main__).
LAYERS: tuple[str, ...] = (
    "core",           # errors, progress, tables/JSON, interrupts, lazy registry, atomic files and folders, flocks
    "zoo",            # model cards + schema
    "graphs",         # format adapters (TF GraphDef, ONNX, TFLite), runners, conversion
    "detection",      # detector value types and enums, boxes, anchors, pipeline.config, reference post-processing
    "ssd",            # SSD structure in graphs: heads, decoding, surgery, post-processing tails
    "tidl",           # TIDL ops/check, meta-architecture prototxt, TI config contract
    "preprocessing",  # image -> model input (cards' MLPerf pipelines, a bundle's config.yaml)
    "datasets",       # dataset folders in MLPerf's layouts, stand-in datasets, sample photographs
    "standins",       # stand-in builders (they calibrate on photographs through preprocessing)
    "fetch",          # download, verify, cache, unpack; builds stand-ins into its own namespace
    "bundle",         # bundle staging and files, config.yaml parts, TI package, provenance (reads fetch's cache)
    "verify",         # parity reports, detector adapters, meta-arch parity
    "recipes",        # registered conversion routes
    "export",         # the export pipeline: recipe -> verify -> bundle -> report
    "distributed",    # generic Ray actor pool and cluster handling
    "evaluation",     # eval, LoadGen bench, metrics (+ its Ray runner)
    "quantize",       # schemes, TIDL preview, sensitivity, accuracy cost
    "commands",       # one module per CLI command
    "cli",            # argparse + the exit-code mapping
    "__main__",
)


@dataclass(frozen=True)
class Import:
    source: str         # importing module, dotted
    target: str         # imported module, dotted (a submodule when `from pkg import submodule`)
    line: int
    local: bool         # inside a function body (lazy)


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def read_imports(sources: Mapping[str, tuple[str, bool]], modules: Iterable[str] | None = None) -> list[Import]:
    """Internal imports of each module. `sources`: module name -> (source text, is a package __init__)."""
    known = set(sources) if modules is None else set(modules)
    found: list[Import] = []
    for module, (text, is_package) in sources.items():
        def visit(node: ast.AST, local: bool) -> None:
            for child in ast.iter_child_nodes(node):
                inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.split(".")[0] == PACKAGE:
                            found.append(Import(module, alias.name, child.lineno, inner))
                elif isinstance(child, ast.ImportFrom):
                    base = _resolve(module, is_package, child)
                    if base.split(".")[0] != PACKAGE:
                        continue
                    targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names}
                    found.extend(Import(module, t, child.lineno, inner) for t in sorted(targets))
                visit(child, inner)

        visit(ast.parse(text), False)
    return found


def read_tree(src: Path) -> dict[str, tuple[str, bool]]:
    """module name -> (text, is package) for every .py file under src/edgezoo."""
    return {module_name(p, src): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted((src / PACKAGE).rglob("*.py"))}


def layer_of(module: str, legacy: Mapping[str, str] | None = None) -> str | None:
    """The layer a module belongs to: its subpackage (edgezoo.X.y -> X); None for edgezoo itself."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    top = parts[1]
    if legacy and top in legacy:
        return legacy[top]
    return top


def upward(imports: Iterable[Import], layers: tuple[str, ...] = LAYERS,
           layer: Callable[[str], str | None] = layer_of) -> list[Import]:
    """The imports whose target's layer lies above the importing module's layer."""
    rank = {name: i for i, name in enumerate(layers)}
    out = []
    for imp in imports:
        src, dst = layer(imp.source), layer(imp.target)
        if src is None or dst is None:
            continue
        if rank[dst] > rank[src]:
            out.append(imp)
    return out


def unknown_layers(modules: Iterable[str], layers: tuple[str, ...] = LAYERS) -> set[str]:
    return {lay for m in modules if (lay := layer_of(m)) is not None and lay not in layers}


def module_cycles(imports: Iterable[Import], *, with_local: bool = False) -> list[list[str]]:
    """Strongly connected groups (size > 1) of the import graph: modules that import each other (at module level;
    `with_local`: function-local imports count too)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if (with_local or not imp.local) and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graph is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in list(graph):
        if node not in index:
            connect(node)
    return groups
