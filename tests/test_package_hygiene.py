"""Package-wide guards: lazy imports everywhere, and every card recipe has a recipe test."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgezoo import zoo
import edgezoo

HEAVY = ("tensorflow", "onnxruntime", "tf2onnx", "ai_edge_litert", "cv2", "skimage", "onnx_graphsurgeon", "onnxslim",
         "ray")
TESTS = Path(__file__).parent


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(edgezoo.__path__, "edgezoo.") if not m.name.endswith("__main__"))


def test_every_module_imports_alone_without_heavy_libraries():
    """Each module imports in a fresh interpreter and loads no heavy ML library at import time."""
    code = (
        "import importlib, sys\n"
        f"heavy = {HEAVY!r}\n"
        "bad = {}\n"
        "for name in sys.argv[1:]:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    loaded = [h for h in heavy if h in sys.modules]\n"
        "    if loaded:\n"
        "        bad[name] = loaded\n"
        "        break\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *_modules()], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


@pytest.mark.parametrize("card", zoo.all_cards(), ids=lambda c: c.id)
def test_every_card_recipe_has_a_recipe_test(card):
    recipe_tests = "\n".join(p.read_text() for p in (TESTS / "recipes").glob("test_*.py")) \
        if (TESTS / "recipes").is_dir() else ""
    for target, recipe in card.recipes.items():
        assert re.search(rf"['\"]{re.escape(recipe.name)}['\"]", recipe_tests), (
            f"{card.id}: recipe {recipe.name!r} ({target.value}) has no test in tests/recipes/ naming it")
