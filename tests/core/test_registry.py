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
    reg = LazyRegistry("thing", [], RecipeError)
    reg.add("a", 1)
    reg.add("a", 1)  # the same entry again (a re-import) is fine
    with pytest.raises(ValueError, match="thing 'a' registered twice"):
        reg.add("a", 2)
