import pytest

from edgezoo import recipes, standins
from edgezoo.core.errors import FetchError, RecipeError
from edgezoo.core.registry import LazyRegistry


def test_every_card_recipe_and_standin_is_registered():
    from edgezoo import zoo

    names = set(recipes.recipe_names())
    builders = standins.builders()
    for card in zoo.all_cards():
        assert {r.name for r in card.recipes.values()} <= names, card.id
        for f in card.files:
            assert f.standin is None or f.standin in builders, f"{card.id}: {f.name}"


def test_unknown_names_suggest_close_ones():
    with pytest.raises(RecipeError, match="did you mean 'frozen-graph-to-tflite'"):
        recipes.get_recipe("frozen-graph-to-tflit")
    with pytest.raises(FetchError, match="no stand-in builder named 'resnet50-p'.*'resnet50-pb'"):
        standins.get_builder("resnet50-p")


def test_a_name_taken_by_a_different_entry_is_refused():
    reg = LazyRegistry("thing", "edgezoo.recipes", RecipeError)
    reg.add("a", 1)
    reg.add("a", 1)  # the same entry again (a re-import) is fine
    with pytest.raises(ValueError, match="thing 'a' registered twice"):
        reg.add("a", 2)


def test_every_module_of_the_package_is_imported_on_the_first_lookup(tmp_path, monkeypatch):
    """A new entry is a new module in the package: nothing lists the modules by hand."""
    package = tmp_path / "zz_plugins"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from edgezoo.core.errors import RecipeError\nfrom edgezoo.core.registry import LazyRegistry\n"
        "REGISTRY = LazyRegistry('plugin', __name__, RecipeError)\n")
    for name in ("first", "second"):
        (package / f"{name}.py").write_text(f"from zz_plugins import REGISTRY\nREGISTRY.add({name!r}, {name!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import zz_plugins

    assert zz_plugins.REGISTRY.all() == {"first": "first", "second": "second"}
    with pytest.raises(RecipeError, match="no plugin named 'secnod'.*did you mean 'second'"):
        zz_plugins.REGISTRY.get("secnod")
