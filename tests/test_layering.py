"""Layers one way: no edgezoo module imports from a package above its own in the declared order (tests/import_graph.py),
at module level or inside a function, and no modules import each other."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import edgezoo
from import_graph import LAYERS, Import, layer_of, module_cycles, read_imports, read_tree, unknown_layers, upward

SRC = Path(edgezoo.__file__).resolve().parent.parent


def _describe(imports: list[Import]) -> str:
    return "\n".join(f"{i.source}:{i.line} imports {i.target} ({layer_of(i.source)} -> {layer_of(i.target)}"
                     f"{', in a function' if i.local else ''})" for i in imports)


def test_every_package_has_a_layer():
    assert not unknown_layers(read_tree(SRC)), "add the new package to LAYERS in tests/import_graph.py"


def test_no_import_runs_up_the_layers():
    found = upward(read_imports(read_tree(SRC)))
    assert not found, "imports against the layer order:\n" + _describe(found)


def test_no_module_cycles_even_through_function_local_imports():
    assert module_cycles(read_imports(read_tree(SRC)), with_local=True) == []


def test_internal_imports_are_at_module_level_outside_the_cli():
    """Internal modules import no heavy library at module level (test_package_hygiene), so importing one inside a
    function only hides the graph. commands/ and cli.py are the exception: `edgezoo --help` imports every command
    module, and their handlers import the API (numpy, yaml, ...) only when they run."""
    local = [i for i in read_imports(read_tree(SRC)) if i.local and layer_of(i.source) not in ("commands", "cli")]
    assert not local, "move these imports to the top of their module:\n" + _describe(local)


def test_the_order_names_each_layer_once():
    assert len(set(LAYERS)) == len(LAYERS)


# --- the checks catch what they claim to catch -------------------------------------------------------------------

@pytest.mark.parametrize("local", [False, True], ids=["module level", "in a function"])
def test_a_planted_upward_import_is_found(tmp_path, local):
    """A copy of the package with graphs/ importing from export/ (far above it) fails the check."""
    copy = tmp_path / "src"
    shutil.copytree(SRC / "edgezoo", copy / "edgezoo", ignore=shutil.ignore_patterns("__pycache__"))
    planted = copy / "edgezoo" / "graphs" / "planted.py"
    body = "from edgezoo.export.api import export_model\n"
    planted.write_text(f"def f():\n    {body}" if local else body)
    found = upward(read_imports(read_tree(copy)))
    assert [(i.source, i.target, i.local) for i in found] == [("edgezoo.graphs.planted", "edgezoo.export.api", local)]
    assert "graphs -> export" in _describe(found)


def test_relative_and_submodule_imports_are_resolved():
    sources = {
        "edgezoo.core.x": ("from ..tidl import check\nfrom . import errors\n", False),
        "edgezoo.tidl.check": ("", False),
        "edgezoo.core.errors": ("", False),
    }
    found = read_imports(sources)
    assert {(i.source, i.target) for i in found} == {("edgezoo.core.x", "edgezoo.tidl.check"),
                                                     ("edgezoo.core.x", "edgezoo.core.errors")}
    assert [i.target for i in upward(found)] == ["edgezoo.tidl.check"]


def test_a_cycle_through_a_function_local_import_is_found():
    sources = {
        "edgezoo.recipes.a": ("from edgezoo.recipes import b\n", False),
        "edgezoo.recipes.b": ("def f():\n    from edgezoo.recipes import a\n", False),
    }
    imports = read_imports(sources)
    assert module_cycles(imports) == []
    assert module_cycles(imports, with_local=True) == [["edgezoo.recipes.a", "edgezoo.recipes.b"]]
