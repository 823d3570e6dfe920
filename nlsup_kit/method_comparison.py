"""One method read against SimCSE in the notebooks: every run beside the starting model, the gap beside the seeds'
spread and the calibration seeds', and the gap beside the authors' with what in the run differs from theirs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nlsup_kit.notebook import (CALIBRATION_RUNS, CALIBRATION_SEEDS, CALIBRATION_STEPS, CALIBRATION_TEXT, QUICK_SEED_GAINS,
                                QUICK_TASKS, text_trained_on)

if TYPE_CHECKING:
    from nlsup_kit.evaluation import StsReport

_LOSS_NAMES = {"released-supcon": "released-supcon (the reference code's new_supcon)"}  # as the differences print it


def shown(field: str, value) -> str:
    """A recipe setting as the differences print it."""
    if isinstance(value, float):
        return f"{value:g}"
    if field == "pooler":
        return f"{value} through the MLP head" if value == "cls" else f"{value}, no head"
    return str(_LOSS_NAMES.get(value, value))


def setting_differences(recipe, paper) -> dict[str, tuple[object, object]]:
    """The settings in which a run's recipe differs from the paper's: what -> (here, there), each of the paper's
    values with the file and line that show it (nlsup_kit.paper)."""
    from nlsup_kit.paper import EVALUATION_POOLERS, REFERENCE_REPO, recipe_sources

    sources = {**recipe_sources(paper.name), **({"pooling_for_evaluation": EVALUATION_POOLERS[paper.name]}
                                                 if paper.name in EVALUATION_POOLERS else {})}

    def cited(field: str, value: str) -> str:
        source = sources.get(field)
        if source is None:
            return value
        where = ("" if source.repo == REFERENCE_REPO else f"{source.repo} ") + f"{source.file} line {source.line}"
        return f"{value[:-1]}: {where})" if value.endswith(")") else f"{value} ({where})"

    fields = {"modality loss": "modality_loss", "pooler trained": "pooler", "pooler scored": "pooling_for_evaluation",
              "lambda": "modality_loss_weight",
              "modality learning rate": "modality_learning_rate", "modality batch": "modality_batch_size",
              "text batch": "batch_size", "text learning rate": "learning_rate",
              **({"patch size": "patch_size"} if recipe.modality == "image" else {})}   # audio: in the data's line
    differences = {}
    for what, field in fields.items():
        here, there = (getattr(r, field)() if callable(getattr(r, field)) else getattr(r, field) for r in (recipe, paper))
        if here != there:
            here, there = (shown(field, v) for v in (here, there))
            differences[what] = (here, cited(field, there))
    if recipe.modality == "image" and recipe.vit_embeddings != paper.vit_embeddings:
        here, there = (f"{name}'s, pretrained" if name else "random (initialised, not pretrained)"
                       for name in (recipe.vit_embeddings, paper.vit_embeddings))
        differences["patch embedding"] = (here, cited("vit_embeddings", there) if paper.vit_embeddings else there)
    return differences


def number_format(recipe, paper_method: str) -> dict[str, tuple[str, str]]:
    """The number format this machine trains ``recipe`` in beside the reference script's (nlsup_kit.paper), as a
    setting difference; empty where the paper recipe's format is not recorded."""
    import torch

    from nlsup_kit.device import autocast_dtype, pick_device
    from nlsup_kit.paper import REFERENCE_PRECISION

    if paper_method not in REFERENCE_PRECISION:
        return {}
    source = REFERENCE_PRECISION[paper_method]
    here = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 with a gradient scaler"}[
        autocast_dtype(pick_device(recipe.device))]
    return {"number format": (f"{here} (this machine's)",
                              f"fp16 with a gradient scaler ({source.file} line {source.line}: {source.shows})")}


def calibration_position(name: str, gains: Sequence[float]) -> tuple[str, float]:
    """Where gains over the starting model fall beside the kit trainer's calibration range for recipe ``name``:
    "above", "below", "inside" or "mixed", with the margin past the range (0 unless above or below). Runs of
    another trainer have no calibration of their own; this says whether they ended where the kit's runs did."""
    low, high = QUICK_SEED_GAINS[name]
    if min(gains) > high:
        return "above", min(gains) - high
    if max(gains) < low:
        return "below", low - max(gains)
    return ("inside" if all(low <= g <= high for g in gains) else "mixed"), 0.0


def trainer_gaps_reading(gaps: Mapping[str, Sequence[float]], gains: Mapping[str, Sequence[float]],
                         calibrated: Mapping[str, str], trainer: str = "sentence-transformers") -> str:
    """Notebook 7: the ``trainer`` trainer's score minus the kit trainer's, on one recipe and seed (``gaps``:
    method -> one per seed), read against how far the kit trainer's seeds move its own side of such a gap: the
    width of its calibration range for the method's recipe (``calibrated``: method -> recipe name). ``gains``: the
    other trainer's gains over the starting model (method -> per seed); the other side's seed spread is unknown
    from these runs, so a wide gap leans toward the trainers and settles nothing."""
    widths = {method: QUICK_SEED_GAINS[name][1] - QUICK_SEED_GAINS[name][0] for method, name in calibrated.items()}
    wider = {method: sum(abs(g) > widths[method] for g in gaps[method]) for method in gaps}
    seeds = len(next(iter(gaps.values())))

    def verdict(method: str) -> str:
        return ("wider" if wider[method] == seeds else "not wider" if not wider[method] else
                f"{wider[method]} of {seeds} wider")

    every = [method for method in gaps if wider[method] == seeds]
    reading = ("How far the kit trainer's seeds move its own side of each gap: the width of its range of gains over its "
               f"calibration runs ({CALIBRATION_RUNS}; nlsup_kit.notebook.QUICK_SEED_GAINS), highest minus lowest; a gap "
               "wider than that leans toward the trainers: a hint, not a verdict, that the two trainers rather than the "
               "seeds make it. "
               + "; ".join(f"{method}: trainer gap{'s' if seeds > 1 else ''} {', '.join(f'{g:+.2f}' for g in gaps[method])}"
                           f" against a width of {widths[method]:.2f}, {verdict(method)}" for method in gaps) + ". ")
    if len(every) == len(gaps):
        reading += "Every gap is wider than the kit's seeds move its side: a lean toward the trainers, not the seeds"
    elif every:
        reading += (f"{', '.join(every)}: wider than the kit's seeds move its side, a lean toward the trainers; "
                    f"{', '.join(m for m in gaps if m not in every)}: not{' in every seed' if seeds > 1 else ''}, so "
                    "there the trainers are not told from the seeds")
    else:
        reading += (f"{'Some gaps are' if any(wider.values()) else 'No gap is'} wider than the kit's seeds move its side"
                    + (", though no method's in every seed" if any(wider.values()) else "") + ": these gaps cannot tell the "
                    "trainers from the seeds")
    above = all(calibration_position(calibrated[method], gains[method])[0] == "above" for method in gaps)
    if above and len(every) < len(gaps):
        reading += (f"; yet every {trainer} run here gained more than all of the kit trainer's calibration runs of its "
                     "method (the reading above), a lean toward the trainers")
    spread = (f"known from {seeds} seeds only" if seeds > 1 else "not measured here (one seed of each)")
    return (reading + f". How far the {trainer} trainer's own seeds move its side is {spread}"
            + (": a lean, not a verdict." if every or above else "."))


def method_readings(reports: Mapping[str, Sequence["StsReport"]], seeds: Sequence[int], untrained: float, method: str,
                    recipe, paper_method: str, steps: int, data: tuple[str, str], tasks: Sequence[str],
                    after_gap: str = " Notebook 4 tests such a gap over three seeds.",
                    also: Mapping[str, tuple[str, str]] | None = None, kit_trainer: bool = True,
                    text: str | None = None) -> list[str]:
    """Notebooks 2 to 4 and 7 read a method against SimCSE (``reports``: name -> one report per seed, in the order of
    ``seeds``): every run beside the starting model, the gap of means with its per-seed differences (one seed
    gives both methods the same text batches), and the gap beside the paper's for ``paper_method``, with what
    differs. ``kit_trainer`` False: runs of another trainer, which the kit's calibration ranges do not bound.
    ``text``: the fingerprint of the sentences the runs trained on (:func:`nlsup_kit.notebook.trained_text`); runs
    with calibration seeds on the calibration's sentences are among the runs that made its ranges, and are said to be."""
    import numpy as np

    from nlsup_kit.conclusions import (against_prediction, gap_against_spread, gap_interval, per_seed_reading,
                                       settles_gap, t_reach)
    from nlsup_kit.models import native_pooling_config
    from nlsup_kit.paper import PAPER_ROWS_ALSO_IN, PAPER_STEPS, PAPER_UPDATES, paper_scores, recipe_sources
    from nlsup_kit.recipes import get_recipe

    spread = {name: [report.mean_spearman for report in runs] for name, runs in reports.items()}
    lines = [f"{name}, seed{'s' if len(values) > 1 else ''} {', '.join(str(s) for s in seeds[:len(values)])}: "
             + ", ".join(f"{v:.2f}" for v in values) + f" vs the starting model (before training) {untrained:.2f}: "
             + ", ".join(f"{v - untrained:+.2f}" for v in values) + " points" for name, values in spread.items()]
    shared = min(len(values) for values in spread.values())
    differences = [a - b for a, b in zip(spread[method], spread["SimCSE"])]
    paired = len(spread[method]) == len(spread["SimCSE"])
    per_seed = (per_seed_reading(seeds[:shared], differences, method, "SimCSE") if shared > 1
                else "Per seed: " + ", ".join(f"seed {seed} {d:+.2f}" for seed, d in zip(seeds, differences)))
    lines.append(gap_against_spread(spread, method, "SimCSE", paired)
                 + f" Each seed gives both methods the same text batches ({shared} paired seed{'s' if shared > 1 else ''}). {per_seed}."
                 + after_gap)
    gap = float(np.mean(spread[method]) - np.mean(spread["SimCSE"]))
    published = float(np.mean(list(paper_scores(paper_method, tasks).values()))
                      - np.mean(list(paper_scores("simcse-bert-base", tasks).values())))
    # the largest gap these runs leave open: the t interval's upper end, else the calibration seeds' widest gap
    interval = gap_interval(spread, method, "SimCSE", paired)
    baseline = recipe.name.rsplit("-", 1)[0] + "-simcse"
    largest, largest_name = None, ""
    if interval is not None:
        largest = gap + t_reach(*interval[1:])
        largest_name = f"the largest gap these runs leave open (the t interval's upper end, {gap:+.2f} + {t_reach(*interval[1:]):.2f})"
    elif not kit_trainer and recipe.name in QUICK_SEED_GAINS:  # the calibration measured the kit's trainer only
        def beside_range(name: str, runs: str) -> str:
            low, high = QUICK_SEED_GAINS[name]
            gains = [v - untrained for v in spread[runs]]
            position, margin = calibration_position(name, gains)
            every = "all " if len(gains) > 1 else ""
            where = {"above": f"{every}above it, by {'at least ' if every else ''}{margin:.2f}",
                     "below": f"{every}below it, by {'at least ' if every else ''}{margin:.2f}",
                     "inside": f"{every}inside it", "mixed": "some inside it, some not"}[position]
            return f"{runs}'s gains here, {', '.join(f'{g:+.2f}' for g in gains)}, beside {name}'s {low:+.2f} to {high:+.2f}: {where}"
        lines.append("The kit's calibration ranges (nlsup_kit.notebook.QUICK_SEED_GAINS) were measured with the kit's own "
                     "trainer, not this one: they are no spread of this trainer's seeds, but they show where the kit's "
                     "trainer's runs ended: "
                     + "; ".join(beside_range(name, runs) for name, runs in ((recipe.name, method), (baseline, "SimCSE"))
                                 if name in QUICK_SEED_GAINS) + ".")
    elif (recipe.name in QUICK_SEED_GAINS and baseline in QUICK_SEED_GAINS and list(tasks) == QUICK_TASKS
          and steps == CALIBRATION_STEPS):
        (method_low, method_high), (base_low, base_high) = QUICK_SEED_GAINS[recipe.name], QUICK_SEED_GAINS[baseline]
        ran = "; ".join(f"{name.split(' (')[0]} seed{'s' if len(values) > 1 else ''} "
                        + ", ".join(str(seed) for seed in seeds[:len(values)]) for name, values in spread.items())
        largest, largest_name = method_high - base_low, "the widest difference the calibration runs show (above)"
        lines.append(f"Over the kit's calibration runs (nlsup_kit.notebook.QUICK_SEED_GAINS: {CALIBRATION_RUNS}), the kit's trainer's gain over the starting model ranged "
                     f"{method_low:+.2f} to {method_high:+.2f} points for {recipe.name} and {base_low:+.2f} to {base_high:+.2f} "
                     f"for {baseline}: the difference between a run of each (unpaired) spans {method_low - base_high:+.2f} "
                     f"to {largest:+.2f} points, the widest, {largest:+.2f}, being the highest gain of one minus the lowest "
                     "of the other. "
                     + (f"This notebook's runs ({ran}, trained on those same sentences, "
                        f"fingerprint {text}, a hash of the sentences) are among those runs: that width describes them, it is no evidence beyond them."
                        if text == CALIBRATION_TEXT and set(seeds) <= set(CALIBRATION_SEEDS) else
                        "That width comes from those runs, not from this notebook's; runs on other sentences may spread "
                        "otherwise."))
    paper, row = get_recipe(paper_method), PAPER_ROWS_ALSO_IN[paper_method]
    trained_before = ", already trained for sentence similarity" if native_pooling_config(recipe.model) else ""
    sign = ("its sign not established by these runs" if not settles_gap(spread, method, "SimCSE", paired) else
            "the same sign as the paper's" if np.sign(gap) == np.sign(published) else "the opposite sign to the paper's")
    size = (f"; {largest_name}, {largest:+.2f}, is "
            f"{'at least' if largest >= published else 'below'} the paper's" if largest is not None else "")
    lines.append(against_prediction(
        f"{method.split(' (')[0]} - SimCSE: {gap:+.2f} points here ({sign}), {published:+.2f} between the reported results on "
        f"{', '.join(tasks)} ({paper_method}: {row.repo} {row.file} line {row.line}; simcse-bert-base: SimCSE's paper, "
        f"arXiv 2104.08821v4, Table 5){size}; its size", None if largest is None else largest >= published,
        {"model": (recipe.model + trained_before, paper.model), "updates": (f"{steps} steps", PAPER_UPDATES),
         **({"text": (text_trained_on(recipe, text), "wiki1m's million sentences")} if text else {}),
         f"{recipe.modality} data": data, **setting_differences(recipe, paper), **number_format(recipe, paper_method),
         "checkpoint scored": (checkpoint_kept(recipe, steps) if kit_trainer else "the model at the run's end (no dev "
                               "evaluation)", checkpoint_kept(paper, PAPER_STEPS, recipe_sources(paper_method)["eval_steps"])),
         "gap compared": (compared_runs(len(spread[method]), len(spread["SimCSE"]), shared, method.split(" (")[0]),
                          "one published run of each, from two codebases (SimCSE's paper; the reference code's README)"),
         **(also or {})}, runs=2 * len(seeds)))
    return lines


def compared_runs(method_runs: int, simcse_runs: int, shared: int, method: str) -> str:
    """How the gap of means sets the runs against each other: paired seeds when both methods ran the same ones."""
    if method_runs == simcse_runs == shared:
        return (f"the mean over {shared} paired seeds of one trainer" if shared > 1 else "one run of each, one seed, one trainer")
    return (f"{method_runs} {method} run{'s' if method_runs > 1 else ''} against the mean of {simcse_runs} SimCSE "
            f"run{'s' if simcse_runs > 1 else ''} ({shared} seed{'s' if shared > 1 else ''} shared), one trainer")


def checkpoint_kept(recipe, steps: int, source=None) -> str:
    """Which checkpoint a run is scored at: the best of its STS-B dev evaluations, every ``eval_steps`` steps and,
    in the kit's trainer, at the end; ``source`` (the paper recipe's ``eval_steps``): the reference script's run,
    whose transformers Trainer evaluates at multiples of ``eval_steps`` only, with the lines that say so."""
    evaluations = steps // recipe.eval_steps if source else -(-steps // recipe.eval_steps)
    where = (f" ({source.file} lines {source.line - 2}-{source.line}: metric_for_best_model, load_best_model_at_end, "
             "eval_steps)" if source else "")
    return (f"the best of {evaluations:,} STS-B dev evaluation{'s' if evaluations > 1 else ''}, every {recipe.eval_steps} of "
            f"{steps:,} steps{'' if source or steps % recipe.eval_steps == 0 else ' and at the end'}{where}"
            if evaluations > 1 else f"its one STS-B dev evaluation, at step {steps:,}")
