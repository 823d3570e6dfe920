"""Small helpers the notebooks share: environment report, the quick/class/full modes, runtime, results for the
demo table."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the module is imported by every notebook's first cell: nothing heavy at import
    from nlsup_kit.evaluation import StsReport

# QUICK mode scores STS-B test alone (2,551 distinct sentences, about 9 s on 2 cores); its dev split picks the
# checkpoint. Every quick check's margin was measured on it (the notebooks' last cells).
QUICK_TASKS = ["STSBenchmark"]
_STARTED = time.time()  # the parameters cell imports this module first: the notebook's start
# How far runs of one quick recipe spread: each recipe's STS-B test gain over the untrained MiniLM (82.03 through
# the mean of its tokens), over seeds 1, 2, 3 and 42, measured when the kit was calibrated (2-core CPU, 2026-12).
# Supervised SimCSE's (quick-simcse on the SICK triples, through cls) is over the untrained MiniLM through cls (73.08);
# "pooler=cls" is quick-simcse trained through [CLS] and its head, read through [CLS], over the untrained [CLS] (73.50).
QUICK_SEED_GAINS = {"quick-simcse": (0.50, 0.72), "quick-visualcse": (0.50, 0.79), "quick-audiocse": (0.49, 0.79),
                    "quick-simcse supervised": (0.56, 1.20), "quick-simcse pooler=cls": (2.5, 2.8)}
# ... and the change in points of the shared layers' 5-NN accuracy on the digits and on the spoken words
QUICK_SEED_KNN_CHANGES = {"quick-visualcse": (1.7, 9.9), "quick-audiocse": (-1.7, 2.9)}
CALIBRATION_SAMPLE = ("a 16,926-line English Wikipedia sample (from the article sample in gensim's test data; the kit's "
                      "`wiki` download online is wiki1m's head, other sentences)")
CALIBRATION_RUNS = "seeds 1, 2, 3 and 42 of the quick recipes, on the first 640 sentences of a 16,926-line Wikipedia sample"
CALIBRATION = f"the kit's calibration runs ({CALIBRATION_RUNS})"  # the sample: CALIBRATION_SAMPLE, printed once, in notebook 1
CALIBRATION_SUPERVISED = "seeds 1, 2, 3 and 42 of the quick supervised run on sick-nli's triples"
CALIBRATION_SEEDS = (1, 2, 3, 42)
CALIBRATION_STEPS = 20  # the quick runs' length when the ranges were measured (the notebooks' STEPS)
CALIBRATION_TEXT = "b9a9a2cfdb4e4a2c"  # those 640 sentences' fingerprint (nlsup_kit.data.text.text_fingerprint)


def trained_text(run) -> str | None:
    """The fingerprint of the sentences ``run`` trained on, from its result.json (None where it kept none: a run
    on triples, whose SICK or NLI file every machine downloads alike)."""
    from nlsup_kit.checkpoint import RESULT_FILE

    text = json.loads((Path(run.output_dir) / RESULT_FILE).read_text()).get("text_data") or {}
    return text.get("fingerprint")


def text_trained_on(recipe, text: str | None) -> str:
    """What a run of ``recipe`` trained on (``text``: its fingerprint, :func:`trained_text`), for a difference printed
    beside the paper's text: the calibration's sample by name, any other text by its recipe name and fingerprint."""
    count = f"the first {recipe.max_text_examples:,}" if recipe.max_text_examples else "all"
    if text == CALIBRATION_TEXT:
        return f"{count} sentences of {CALIBRATION_SAMPLE}"
    return f"{count} sentences of {recipe.text_data!r}" + (f" (fingerprint {text})" if text else "")


def calibration_reading(change: float, recipe_name: str, table: str = "QUICK_SEED_KNN_CHANGES", digits: int = 1,
                        seed: int | None = None, text: str | None = None, again: bool = False) -> str:
    """A run's change beside the range the calibration seeds gave the same recipe (``table``: the name of
    :data:`QUICK_SEED_GAINS` or :data:`QUICK_SEED_KNN_CHANGES`), or "" where none is recorded. A run whose ``seed``
    and ``text`` (:func:`trained_text`) are a calibration run's repeats it: said so, with whether it landed inside.
    Other text: the range is a rough guide. ``again``: the cell has already said what the calibration runs are."""
    recorded = {"QUICK_SEED_GAINS": QUICK_SEED_GAINS, "QUICK_SEED_KNN_CHANGES": QUICK_SEED_KNN_CHANGES}[table]
    if recipe_name not in recorded:
        return ""
    low, high = recorded[recipe_name]
    slack = 0.5 * 10 ** -digits  # the recorded ends are rounded to these digits
    same_text = text is None or text == CALIBRATION_TEXT
    inside = "inside" if low - slack <= change <= high + slack else "outside"
    where = f"this run's lies {inside} that range" + ("" if same_text else " (this run trained on other sentences, so "
                                                      "the range is only a rough guide to how far seeds spread here)")
    one_of_them = (f"this run, seed {seed}" + ("" if again or text != CALIBRATION_TEXT else
                                               f", trained on those same sentences (fingerprint {text}, a hash of the sentences)")
                   + f", repeats the settings of one of those runs, and its change lies {inside} that range"
                   + ("" if inside == "inside" else " (it did not land where that run did: torch builds and machines differ)"))
    runs = CALIBRATION_SUPERVISED if recipe_name.endswith("supervised") else CALIBRATION_RUNS
    line = (("over the same calibration runs" if again else f"over the kit's calibration runs (nlsup_kit.notebook.{table}: {runs})")
            + f", this change ranged {low:+.{digits}f} to {high:+.{digits}f} points, and "
            + (one_of_them if seed in CALIBRATION_SEEDS and same_text else where))
    if low < 0 < high:
        return line + ": a range that holds both signs, so one run cannot say whether this training tends to raise or lower it"
    return line + (": every calibration seed raised it" if low > 0 else "")


def knn_change_reading(recipe_name: str, before: float, after: float, examples: int, what: str,
                       seed: int | None = None, text: str | None = None) -> str:
    """A change of 5-NN accuracy read as the examples it moved, beside the change the calibration seeds showed."""
    line = f"{100 * (after - before):+.1f} points is a net {round((after - before) * examples):+d} of the {examples} {what}"
    recorded = calibration_reading(100 * (after - before), recipe_name, seed=seed, text=text)
    return f"{line}; {recorded}" if recorded else line


def trunk_knn(recipe, run, text_only_run, inputs, labels, what: str, raw_name: str) -> tuple[dict[str, float], list[str]]:
    """5-NN accuracy of the examples' class in the shared layers ([CLS] before the branch's head), read out:
    before training (the run's exact start), after (its trained patch embedding and layers), and, under the
    untrained patch embedding, the run's trained layers beside text-only SimCSE's (``text_only_run``), which tells
    what the image/audio steps did to the shared layers from what the trained patch embedding adds; beside the
    raw inputs, flattened (``raw_name``)."""
    from nlsup_kit.analysis import knn_accuracy, trunk_vectors
    from nlsup_kit.conclusions import compare
    from nlsup_kit.embeddings import ModalityBranch
    from nlsup_kit.encoder import SentenceEncoder
    from nlsup_kit.trainer import starting_point

    start_encoder, start_branch = starting_point(recipe)
    trained = SentenceEncoder.from_pretrained(str(run.best_dir))

    def score(branch, encoder) -> float:
        return knn_accuracy(trunk_vectors(branch, encoder, inputs), labels)

    knn = {"before": score(start_branch, start_encoder), "after": score(ModalityBranch.load(run.best_dir), trained),
           "layers": score(start_branch, trained),
           "text-only layers": score(start_branch, SentenceEncoder.from_pretrained(str(text_only_run.best_dir))),
           "raw": knn_accuracy(inputs.flatten(1), labels)}
    shown = {name: round(100 * value, 1) for name, value in knn.items()}

    def counted(name: str) -> int:  # the examples a 5-NN vote names correctly, exactly (not from rounded percentages)
        return round(knn[name] * len(labels))

    def moved(name: str, start: str = "before") -> str:
        return f"{counted(name) - counted(start):+d}"

    lines = [f"5-NN accuracy on the {len(labels)} {what}: before training {shown['before']:.1f}%; after, through the "
             f"trained patch embedding and layers, {shown['after']:.1f}%; {raw_name} {shown['raw']:.1f}%",
             "Read: " + knn_change_reading(recipe.name, knn["before"], knn["after"], len(labels), what, recipe.seed,
                                                 trained_text(run)),
             f"Under the untrained patch embedding, one run each: the run's trained layers {shown['layers']:.1f}%, "
             f"text-only SimCSE's layers {shown['text-only layers']:.1f}% (before: {shown['before']:.1f}%). Counted in "
             f"{what} named correctly: before {counted('before')}; the text-only layers {counted('text-only layers')} "
             f"({moved('text-only layers')}), the layers trained with the {recipe.modality} steps {counted('layers')} "
             f"({moved('layers')}), so {moved('layers', 'text-only layers')} between the two; the trained patch embedding "
             f"on top of those layers: {counted('after')} ({moved('after', 'layers')} from {counted('layers')}). One run of each, of seed {recipe.seed}: "
             f"a split that one seed cannot attribute to the {recipe.modality} steps",
             compare("after training", 100 * knn["after"], raw_name, 100 * knn["raw"], unit="points", digits=1)
             + " (a reference, not a prediction)"]
    return knn, lines


def compared_vector(recipe) -> str:
    """What the text loss of ``recipe`` compares, in words: it sets how low the first loss can start."""
    from nlsup_kit.models import native_pooling, native_pooling_config

    if recipe.pooler == "cls":
        return "[CLS] and an MLP head initialised afresh (SimCSE re-initialises it)"
    trained_with = (f", the pooler {recipe.model} was trained with" if native_pooling_config(recipe.model)
                    and native_pooling(recipe.model) == recipe.pooler else "")
    return f"{recipe.pooler} (no head{trained_with})"


MODES = ("quick", "class", "full")


def notebook_mode() -> str:
    """``NLSUP_MODE`` when set; else ``class`` on a GPU (sized for a free Colab T4 session: its plan projects the minutes)
    and ``quick`` on a CPU. One rule for papermill, JupyterLab and Colab."""
    mode = os.environ.get("NLSUP_MODE", "").strip().lower()
    if mode and mode not in MODES:
        raise ValueError(f"NLSUP_MODE={mode!r} is not one of {', '.join(MODES)}")
    if mode:
        return mode
    import torch

    return "class" if torch.cuda.is_available() else "quick"


def recipe_for(method: str, mode: str) -> str:
    """The recipe a notebook trains for ``method`` (simcse, visualcse, audiocse) in ``mode``: quick-*, class-*, or
    the paper's BERT-base recipe."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return f"{method}-bert-base" if mode == "full" else f"{mode}-{method}"


def live_front_end() -> bool:
    """False when the kit runs the notebook in batch (``nlsup demo``, the tests): nobody can move a widget there."""
    return os.environ.get("NLSUP_BATCH") != "1"


def describe_environment() -> str:
    import torch
    import transformers

    import nlsup_kit

    device = (f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available()
              else f"cpu ({os.cpu_count()} cores)")
    return (f"python {platform.python_version()} | torch {torch.__version__} | transformers "
            f"{transformers.__version__} | nlsup-kit {nlsup_kit.__version__} | device {device}\n{gpu_line()}")


def gpu_line() -> str:
    """What GPU this session has, and on Colab how to get one (a free T4 runs the GPU settings)."""
    import torch

    if torch.cuda.is_available():
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"gpu: {torch.cuda.get_device_name(0)}, {memory:.0f} GiB"
    if "google.colab" in sys.modules:
        return "gpu: none (for one: Runtime > Change runtime type > T4 GPU, then run all cells again)"
    return "gpu: none (quick mode is sized for a CPU)"


# Seconds per BERT-base text step at the paper's shapes (batch 64 x length 32): measured on an H100 and an H200
# (compiled, benchmarks/RESULTS.md), projected for a T4 from NVIDIA's datasheets: the H100's GPU time (10.3 ms) times the
# ratios of memory bandwidth (3.35 vs 0.32 TB/s, 10.5x: 108 ms) and of fp16 tensor throughput (989 vs 65 TFLOPS, 15.2x: 157 ms).
TEXT_STEP_SECONDS = {"H100": (0.011, 0.013), "H200": (0.013, 0.014), "T4": (0.11, 0.16)}
# Class mode's image/audio step (2 x 30 items of 17-33 tokens) waits on kernel launches, not arithmetic: 32-37 ms
# measured eager on an H200 (benchmarks/RESULTS.md), at most that compiled, more behind a slower host CPU.
CLASS_MODALITY_STEP_SECONDS = (0.032, 0.037)
STEP_TIMES_MODEL = "bert-base-uncased"  # the backbone those step times were measured (or projected) for


def text_step_seconds(gpu: str) -> tuple[float, float] | None:
    """The known low and high text step of ``gpu`` (its name), or None."""
    return next((times for key, times in TEXT_STEP_SECONDS.items() if key in gpu), None)


def training_minutes(runs: Sequence[tuple[int, bool]], gpu: str) -> tuple[float, float] | None:
    """Low and high minutes of training for ``runs`` (steps, has an image/audio side) on ``gpu`` (its name);
    None where no step time is known for it."""
    text = text_step_seconds(gpu)
    if text is None:
        return None
    return tuple(sum(steps * (text[i] + (CLASS_MODALITY_STEP_SECONDS[i] if modality else 0.0))
                     for steps, modality in runs) / 60 for i in (0, 1))


def planned_runs(recipe_names: Sequence[str], data_dir) -> list[tuple[int, bool]]:
    """Each recipe's (steps from its data, whether it has an image/audio side), as :func:`training_minutes` takes them."""
    from nlsup_kit.data.batches import planned_steps
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.recipes import get_recipe

    examples, runs = {}, []  # each corpus read once
    for name in recipe_names:
        recipe = get_recipe(name)
        corpus = (recipe.text_data, recipe.max_text_examples)
        if corpus not in examples:
            examples[corpus] = len(load_text_data(recipe.text_data, data_dir, recipe.max_text_examples))
        runs.append((planned_steps(examples[corpus], recipe), recipe.modality != "none"))
    return runs


def class_plan(recipe_names: Sequence[str], data_dir) -> str:
    """What class mode is about to train and how long it should take, printed before training: each run's
    steps from its data, times this GPU's step times."""
    import torch

    from nlsup_kit.recipes import get_recipe

    runs = planned_runs(recipe_names, data_dir)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    listing = ", ".join(f"{name} {steps}" for name, (steps, _) in zip(recipe_names, runs))
    line = f"class mode: {len(runs)} runs, {sum(steps for steps, _ in runs):,} steps ({listing})"
    others = sorted({get_recipe(name).model for name in recipe_names} - {STEP_TIMES_MODEL})
    if others:
        return (f"{line}; no step time measured for {', '.join(others)} (the kit's step times are "
                f"{STEP_TIMES_MODEL}'s): the progress bar shows the rate after the first steps")
    minutes = training_minutes(runs, gpu)
    if minutes is None:
        return f"{line}; no step time known for {gpu}: the progress bar shows the rate after the first steps"
    text = text_step_seconds(gpu)
    return (f"{line}; on {gpu} about {minutes[0]:.0f} to {minutes[1]:.0f} minutes of training (text steps "
            f"{1000 * text[0]:.0f}-{1000 * text[1]:.0f} ms, image/audio steps about "
            f"{1000 * CLASS_MODALITY_STEP_SECONDS[0]:.0f}-{1000 * CLASS_MODALITY_STEP_SECONDS[1]:.0f} ms; "
            "benchmarks/RESULTS.md), plus evaluation")


def run_folder(results_dir: str | Path, recipe, seed: int) -> str:
    """Where the notebooks keep a run of ``recipe`` with ``seed``: one folder per registered recipe and seed, so
    every notebook finds the others' runs; a run through another pooler than its recipe's gets its own."""
    from nlsup_kit.recipes import get_recipe

    pooler = "" if recipe.pooler == get_recipe(recipe.name).pooler else f"-{recipe.pooler}"
    return f"{results_dir}/runs/{recipe.name}{pooler}-seed{seed}"


def reports_over_seeds(recipes: Mapping[str, object], seeds: Sequence[int], results_dir: str | Path, data_dir,
                       tasks: Sequence[str]) -> dict[str, list[StsReport]]:
    """The STS report of each recipe trained once per seed, in the order of ``seeds`` (finished runs of the same
    recipe are reused, so the first seed can be a run the notebook has already trained): the spread that one run
    per method hides."""
    from nlsup_kit.evaluation import evaluate_model
    from nlsup_kit.recipes import apply_overrides
    from nlsup_kit.trainer import train

    reports = {}
    for name, recipe in recipes.items():
        reports[name] = []
        for seed in seeds:
            again = apply_overrides(recipe, [f"seed={seed}"])
            run = train(again, run_folder(results_dir, again, seed), data_dir, reuse=True)
            reports[name].append(evaluate_model(run.best_dir, again.pooling_for_evaluation(), tasks, data_dir))
    return reports


def class_means_at_head(start, trained_branch, trained_encoder, inputs, labels: Sequence) -> dict[str, tuple[float, float]]:
    """The within- and between-class mean cosines at the output of the branch's head (where the image or audio
    loss compares the vectors), before training (``start``: the run's (encoder, branch) starting point) and after."""
    from nlsup_kit.analysis import class_similarity, trunk_vectors, within_and_between

    vectors = {"before training": trunk_vectors(start[1], start[0], inputs, through_head=True),
               "after training": trunk_vectors(trained_branch, trained_encoder, inputs, through_head=True)}
    return {name: within_and_between(class_similarity(v, labels)[0]) for name, v in vectors.items()}


def loss_at_the_end(run, recipe, classes: int, window: int = 5, there: str | None = None) -> dict[str, tuple[str, str]]:
    """What SupCon's prediction at the head presumes, beside this run: its image/audio loss minimised. From the
    run's own log: the loss (divided by lambda) over its last ``window`` logged steps, against the uniform level
    and the floor of :func:`nlsup_kit.losses.loss_levels` for ``classes`` classes. ``there``: what the compared run
    had instead, where that is not SupCon's trained-down loss (a paper run)."""
    import numpy as np

    from nlsup_kit.checkpoint import read_metrics
    from nlsup_kit.conclusions import AT_THE_LEVEL, level_of
    from nlsup_kit.losses import loss_levels

    logged = [m["modality_loss"] for m in read_metrics(run.output_dir) if "modality_loss" in m]
    start, end = (float(np.mean(part)) / recipe.modality_loss_weight for part in (logged[:window], logged[-window:]))
    levels = loss_levels(recipe.modality_loss, recipe.modality_batch_size, classes)
    above = ("; a loss above it gives the positives less than 1/(2B-1) of the softmax each (a geometric mean), the "
             "rest going to other examples, which the logged values do not name" if end > levels["uniform"] * (1 + AT_THE_LEVEL)
             else "")
    return {f"the {recipe.modality} loss at the run's end (mean of its last {min(window, len(logged))} logged steps)":
            (f"{end:.3f} (its first {min(window, len(logged))} logged steps: {start:.3f}), {level_of(end, levels['uniform'])} "
             f"{levels['uniform']:.3f} (log(2B-1), B = {recipe.modality_batch_size} examples of two views: every view "
             f"alike{above})",
             there or f"a loss trained down toward its floor (at least {levels['floor']:.3f}, the floor of {recipe.modality_batch_size} "
                      f"examples spread evenly over {classes} classes), which SupCon's prediction presumes")}


def show_class_similarity(vectors: Mapping[str, object], labels: Sequence,
                          title: str) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[int, int]]]:
    """Each model's class-similarity matrix (:func:`nlsup_kit.analysis.class_similarity`) side by side on one colour
    scale, read out: within- and between-class means, and which classes sit no closer to themselves than to another
    (named, with that nearer class); returns the means by model, and by model how many classes do, of how many."""
    import numpy as np

    from nlsup_kit import viz
    from nlsup_kit.analysis import class_similarity, classes_nearer_another, within_and_between
    from nlsup_kit.conclusions import printed_gap

    matrices = {}
    for name, v in vectors.items():
        matrices[name], classes = class_similarity(v, labels)
    values = np.concatenate([m.ravel() for m in matrices.values()])
    viz.show(viz.heatmaps(matrices, [str(c) for c in classes], title, (float(values.min()), float(values.max()))))
    means = {name: within_and_between(matrix) for name, matrix in matrices.items()}
    apart = {}
    for name, (within, between) in means.items():
        matrix = np.asarray(matrices[name])
        misses = [f"{c} (nearer {nearer})" for c, nearer in classes_nearer_another(matrix, classes)]
        apart[name] = (len(matrix) - len(misses), len(matrix))
        print(f"{name}: mean cosine within a class {within:.3f}, between two classes {between:.3f} "
              f"(gap {printed_gap(within, between):+.3f}); {apart[name][0]} of {len(matrix)} classes closer to themselves "
              "than to any other class" + (f"; not: {', '.join(misses)}" if misses else ""))
    return means, apart


def runtime_line(mode: str) -> str:
    """How long this notebook has run so far, in which mode, on what, and how many of its training runs it
    trained rather than read back from earlier runs: the recap's measured runtime."""
    from nlsup_kit.trainer import RUN_COUNTS

    minutes = (time.time() - _STARTED) / 60
    trained, reused = (sorted("/".join(Path(folder).parts[-2:]) for folder in RUN_COUNTS[kind]) for kind in ("trained", "reused"))
    runs = (f" It trained {len(trained)} run(s) ({', '.join(trained) or 'none'}) and read back {len(reused)} ({', '.join(reused)}) "
            "that an earlier notebook or an earlier run of this one had trained (read back, a run takes seconds)."
            if reused else f" It trained all {len(trained)} of its runs here ({', '.join(trained)})." if trained else "")
    return f"This notebook ran for {minutes:.1f} minutes in {mode} mode on {_machine()}.{runs}"


def _machine() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"a CPU with {os.cpu_count()} cores"


class Stopwatch:
    """An exercise's solution measures its own time, so the estimate in the exercise's heading can be checked."""

    def __init__(self) -> None:
        self.started = time.time()

    def line(self) -> str:
        seconds = time.time() - self.started
        return f"This solution ran for {seconds:.{0 if seconds >= 10 else 1}f} s on {_machine()}."


def record_results(results_dir: str | Path, notebook: str, rows: dict[str, dict[str, float]]) -> Path:
    """Write the STS rows a notebook produced, for the demo's summary table."""
    path = Path(results_dir) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path


def read_results(results_dir: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))}
