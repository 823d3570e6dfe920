"""Recipe settings: five sections that cover every setting once, and SimCSE's evaluation-pooler convention."""

import dataclasses

import pytest

from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import RECIPES, SECTIONS, Recipe, apply_overrides


def test_the_sections_name_every_setting_exactly_once_in_the_class_order():
    listed = [key for keys in SECTIONS.values() for key in keys]
    assert listed == [f.name for f in dataclasses.fields(Recipe)]


@pytest.mark.parametrize("settings, expected", [
    ([], "cls_before_pooler"),  # trained through the MLP head, evaluated before it (unsupervised SimCSE)
    (["pooler=avg"], "avg"),
    (["pooler=avg_first_last"], "avg_first_last"),
    (["pooler=cls_before_pooler"], "cls_before_pooler"),
    (["eval_pooling=cls"], "cls"),  # supervised SimCSE keeps the head at test time
    (["pooler=avg", "eval_pooling=cls_before_pooler"], "cls_before_pooler"),
])
def test_evaluation_follows_simcse_unless_eval_pooling_is_set(settings, expected):
    assert apply_overrides(Recipe(), settings).pooling_for_evaluation() == expected


def test_supervised_paper_recipes_evaluate_through_the_head_and_unsupervised_ones_before_it():
    for name, recipe in RECIPES.items():
        want = "cls" if recipe.supervised else "cls_before_pooler"
        assert recipe.pooling_for_evaluation() == want, name


def test_an_unknown_pooler_is_one_line_naming_the_choices():
    with pytest.raises(NlsupError, match="setting pooler='mean' is not one of cls, cls_before_pooler, avg"):
        apply_overrides(Recipe(), ["pooler=mean"])


def test_compiling_is_the_default_only_on_gpus_with_bf16_tensor_cores():
    """Unset, ``compile`` follows the device: never on a CPU (inductor measured slower than eager there,
    benchmarks/RESULTS.md), and a recipe's explicit choice always wins; autocast is fp32 on a CPU."""
    from nlsup_kit.device import autocast_dtype, should_compile

    assert RECIPES["visualcse-bert-base"].compile is None
    assert should_compile(None, "cpu") is False
    assert should_compile(True, "cpu") is True and should_compile(False, "cpu") is False
    assert autocast_dtype("cpu") is None
