"""Recipe settings: five sections that cover every setting once, and SimCSE's evaluation-pooler convention."""

import dataclasses

import pytest

from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import IN_OTHER_LANGUAGES, LANGUAGE_SETTINGS, RECIPES, SECTIONS, Recipe, apply_overrides


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
    """SimCSE's convention for every recipe on a raw backbone; the quick recipes' MiniLM is scored through the
    pooler its sentence-transformers config names (the mean of its tokens), as it trains."""
    from nlsup_kit.models import native_pooling

    for name, recipe in RECIPES.items():
        if name.startswith("quick-"):
            want = native_pooling(recipe.model)
        else:
            want = "cls" if recipe.supervised else "cls_before_pooler"
        assert recipe.pooling_for_evaluation() == want, name
    assert native_pooling("minilm-l6") == "avg"


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


def test_the_notebook_mode_follows_nlsup_mode_and_names_existing_recipes(monkeypatch):
    """NLSUP_MODE decides; unset, a machine without a GPU gets quick (class needs one); every mode's recipe of
    every method exists; a mistyped mode is an error, not a silent quick run."""
    import torch

    from nlsup_kit.notebook import MODES, notebook_mode, recipe_for

    for mode in MODES:
        monkeypatch.setenv("NLSUP_MODE", mode.upper())
        assert notebook_mode() == mode
        assert all(recipe_for(method, mode) in RECIPES for method in ("simcse", "visualcse", "audiocse"))
    monkeypatch.delenv("NLSUP_MODE")
    assert notebook_mode() == ("class" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("NLSUP_MODE", "fast")
    with pytest.raises(ValueError, match="fast"):
        notebook_mode()
    assert recipe_for("visualcse", "full") == "visualcse-bert-base" and recipe_for("simcse", "class") == "class-simcse"


def test_class_mode_recipes_train_on_a_cpu_with_a_small_bert_standing_in(tiny_model, data_dir, tmp_path):
    """Class mode runs BERT-base on a Colab GPU; here its recipes (their data, branches, schedules) train two
    steps with a random 2-layer BERT saved to a folder in its place, and the plan counts their steps."""
    import math

    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.notebook import class_plan
    from nlsup_kit.trainer import train

    for name in ("class-simcse", "class-visualcse", "class-audiocse"):
        recipe = RECIPES[name]
        assert (recipe.model, recipe.batch_size, recipe.max_length) == ("bert-base-uncased", 64, 32)
        small = apply_overrides(recipe, [f"model={tiny_model}", "max_steps=2", "eval_steps=2", "batch_size=8",
                                         "max_text_examples=64"])
        result = train(small, tmp_path / name, data_dir, progress=False)
        assert result.steps == 2 and math.isfinite(result.last_loss)
    sentences = len(load_text_data("wiki", data_dir))
    steps = math.ceil(sentences / 64) * 3
    plan = class_plan(["class-simcse", "class-visualcse"], data_dir)
    assert f"2 runs, {2 * steps:,} steps (class-simcse {steps}, class-visualcse {steps})" in plan
    from nlsup_kit.notebook import planned_runs   # only the image and audio runs are timed with a modality step

    assert planned_runs(["class-simcse", "class-visualcse", "class-audiocse"], data_dir) == [
        (steps, False), (steps, True), (steps, True)]


def test_training_minutes_add_each_runs_text_and_image_steps():
    """Two runs of 936 steps on an H200, one with an image side: 936 x 13 ms + 936 x (13 + 32) ms = 54.288 s at
    the low end, 936 x 14 ms + 936 x (14 + 37) ms = 60.84 s at the high end; no estimate for an unknown GPU."""
    from nlsup_kit.notebook import training_minutes

    low, high = training_minutes([(936, False), (936, True)], "NVIDIA H200")
    assert (low, high) == pytest.approx((54.288 / 60, 60.84 / 60))
    # the T4's projection: the H100's 10.3 ms of GPU time x 3.35/0.32 (bandwidth) and x 989/65 (fp16 tensor), rounded
    low_t4, high_t4 = round(0.0103 * 3.35 / 0.32, 2), round(0.0103 * 989 / 65, 2)
    assert training_minutes([(936, False)], "Tesla T4") == pytest.approx((936 * low_t4 / 60, 936 * high_t4 / 60))
    assert training_minutes([(936, False)], "NVIDIA A10G") is None


PAPER_RECIPES = sorted(name for name in RECIPES if not name.startswith(("quick-", "class-")))
CORE = ("model", "text_data", "batch_size", "learning_rate", "optimizer", "max_length", "temperature", "epochs",
        "eval_steps")
MODALITY_CORE = ("modality_batch_size", "modality_learning_rate", "modality_loss_weight", "modality_temperature",
                 "modality_loss", "modality_head")


@pytest.mark.parametrize("name", PAPER_RECIPES)
def test_every_paper_recipe_setting_equals_the_reference_file_it_cites(name):
    """nlsup_kit.paper names, for each paper recipe, the file and line of the reference code (NonLing-CSE, or
    SimCSE) showing each setting, the value read from the quoted line: a recipe value that drifts from its
    source fails here, and every core setting (and the modality side's, where there is one) has a source."""
    from nlsup_kit.paper import RECIPE_SOURCES, recipe_source

    recipe, sources = RECIPES[name], RECIPE_SOURCES[name]
    wanted = CORE + (MODALITY_CORE if recipe.modality != "none" else ())
    if name in IN_OTHER_LANGUAGES:  # the language's settings are the kit's: nothing in the paper's code shows them
        wanted = tuple(key for key in wanted if key not in LANGUAGE_SETTINGS)
        assert not set(LANGUAGE_SETTINGS) & set(sources)
    assert set(wanted) <= set(sources), f"{name}: no source for {sorted(set(wanted) - set(sources))}"
    for setting, source in sources.items():
        assert getattr(recipe, setting) == source.value, (
            f"{name}.{setting} = {getattr(recipe, setting)!r}, but {source}")
    assert recipe_source(name).startswith(f"{name}: ") and "l." in recipe_source(name)


def test_a_paper_recipe_in_another_language_differs_from_its_base_only_in_the_language():
    """Every setting but the name and the language's equals the English paper recipe it moves; XLM-R base has
    RoBERTa-base's shape (12 layers, 768 wide: checked from the model registry in test_multilingual.py)."""
    from nlsup_kit.paper import recipe_source

    assert IN_OTHER_LANGUAGES == {"simcse-xlmr-base-de": "simcse-roberta-base",
                                  "visualcse-xlmr-base-de": "visualcse-roberta-base"}
    for name, base in IN_OTHER_LANGUAGES.items():
        moved, english = dataclasses.asdict(RECIPES[name]), dataclasses.asdict(RECIPES[base])
        changed = {key for key in moved if moved[key] != english[key]}
        assert changed == {"name", *LANGUAGE_SETTINGS}, name
        assert (moved["model"], moved["text_data"], moved["text_language"]) == (
            "xlmr-base", "leipzig:deu_wikipedia_2021_1M", "de")
        assert recipe_source(name).endswith("(note: " + base + "'s settings in another language: model xlmr-base, "
                                            "text_data leipzig:deu_wikipedia_2021_1M, text_language de are the kit's "
                                            "(the paper trains in English only))")


def test_the_pooler_a_released_model_is_scored_with_is_the_one_its_recipe_evaluates_with():
    """The README's evaluation command (nlsup_kit.paper.EVALUATION_POOLERS) against SimCSE's convention, which
    Recipe.pooling_for_evaluation derives from the recipe's training pooler."""
    from nlsup_kit.paper import EVALUATION_POOLERS

    assert EVALUATION_POOLERS
    for name, source in EVALUATION_POOLERS.items():
        assert RECIPES[name].pooling_for_evaluation() == source.value, name
        assert f"--pooler {source.value} " in source.shows and source.file.endswith("README.md"), name


def test_recipe_sources_cover_exactly_the_paper_recipes_and_name_the_kits_own():
    from nlsup_kit.paper import COMMITS, RECIPE_SOURCES, recipe_source

    assert sorted(RECIPE_SOURCES) == PAPER_RECIPES
    assert recipe_source("class-visualcse") == ("class-visualcse: the kit's own settings (nlsup_kit/recipes.py), "
                                                "not from the paper's code")
    line = recipe_source("visualcse-bert-base", "modality_loss_weight")
    assert line == ("visualcse-bert-base.modality_loss_weight=0.05: yiren-jian/NonLing-CSE, VisualCSE/README.md "
                    "line 69: CUDA_VISIBLE_DEVICES=0 bash run_unsup_example.sh 48 0.07 1e-6 0.05 SupCon 0.0")
    url = RECIPE_SOURCES["visualcse-bert-base"]["modality_loss_weight"].url
    assert url == ("https://github.com/yiren-jian/NonLing-CSE/blob/"
                   f"{COMMITS['yiren-jian/NonLing-CSE']}/VisualCSE/README.md#L69")
    with pytest.raises(NlsupError, match="unknown recipe"):
        recipe_source("visualcse-bert")


def test_reference_runs_and_untrained_baselines_are_consistent():
    """The reference logs: steps = ceil(1,000,001 / batch), the best step on the 125-step evaluation grid; each
    baseline's average is the mean of its seven scores as SimCSE's evaluation.py rounds it."""
    import math

    from nlsup_kit.paper import REFERENCE_RUNS, UNTRAINED_BERT

    for name, run in REFERENCE_RUNS.items():
        assert run.steps == math.ceil(1_000_001 / RECIPES[name].batch_size) and run.best_step % 125 == 0
    assert str(REFERENCE_RUNS["visualcse-bert-base"]).startswith(
        "visualcse-bert-base: 11,692 s for 15,626 steps on one GPU (an RTX-6000 by its README), best STS-B dev 83.65 "
        "at step 2,125")
    for baseline in UNTRAINED_BERT.values():
        scores = [v for k, v in baseline.scores.items() if k != "avg"]
        assert len(scores) == 7 and f"{sum(scores) / 7:.2f}" == f"{baseline.scores['avg']:.2f}"
