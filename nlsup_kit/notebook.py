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

QUICK_TASKS = ["STS16", "STSBenchmark"]  # about 5k distinct sentences: seconds on a CPU
_STARTED = time.time()  # the parameters cell imports this module first: the notebook's start


MODES = ("quick", "class", "full")


def notebook_mode() -> str:
    """``NLSUP_MODE`` when set; else ``class`` on a GPU (a free Colab T4 runs it in about 15 minutes) and
    ``quick`` on a CPU. One rule for papermill, JupyterLab and Colab."""
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


# Seconds per BERT-base text step at the paper's shapes (batch 64 x length 32): measured on an H100 (compiled,
# benchmarks/RESULTS.md), projected for a T4 from the datasheets (10-15x the H100's GPU time, fp16).
TEXT_STEP_SECONDS = {"H100": (0.011, 0.013), "T4": (0.10, 0.15)}


def class_plan(recipe_names: Sequence[str], data_dir) -> str:
    """What class mode is about to train and how long it should take, printed before training: each run's
    steps from its data, times the text step of this GPU (an image/audio step of class mode is at most a
    quarter of it: 30 items of 17-33 tokens against 128 sentences of 32)."""
    import torch

    from nlsup_kit.data.batches import planned_steps
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.recipes import get_recipe

    examples, steps = {}, []  # each corpus read once
    for name in recipe_names:
        recipe = get_recipe(name)
        corpus = (recipe.text_data, recipe.max_text_examples)
        if corpus not in examples:
            examples[corpus] = len(load_text_data(recipe.text_data, data_dir, recipe.max_text_examples))
        steps.append(planned_steps(examples[corpus], recipe))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    known = next((times for key, times in TEXT_STEP_SECONDS.items() if key in gpu), None)
    line = f"class mode: {len(steps)} runs, {sum(steps):,} steps ({', '.join(f'{n} {s}' for n, s in zip(recipe_names, steps))})"
    if known is None:
        return f"{line}; no step time known for {gpu}: the progress bar shows the rate after the first steps"
    low, high = (sum(steps) * t / 60 for t in known)
    return (f"{line}; on {gpu} about {low:.0f} to {1.25 * high:.0f} minutes of training "
            f"({1000 * known[0]:.0f}-{1000 * known[1]:.0f} ms per text step, benchmarks/RESULTS.md), plus evaluation")


def scores_over_seeds(recipes: Mapping[str, object], seeds: Sequence[int], results_dir: str | Path, data_dir,
                      tasks: Sequence[str]) -> dict[str, list[float]]:
    """The STS average of each recipe trained once per seed (finished runs of the same recipe are reused): the
    spread that one run per method hides."""
    from nlsup_kit.evaluation import evaluate_model
    from nlsup_kit.recipes import apply_overrides
    from nlsup_kit.trainer import train

    averages = {}
    for name, recipe in recipes.items():
        averages[name] = []
        for seed in seeds:
            again = apply_overrides(recipe, [f"seed={seed}"])
            run = train(again, f"{results_dir}/runs/{again.name}-seed{seed}", data_dir, reuse=True)
            averages[name].append(evaluate_model(run.best_dir, again.pooling_for_evaluation(), tasks, data_dir).average)
    return averages


def runtime_line(mode: str) -> str:
    """How long this notebook has run so far, in which mode, on what: the recap's measured runtime."""
    import torch

    minutes = (time.time() - _STARTED) / 60
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"a CPU with {os.cpu_count()} cores"
    return f"This notebook ran for {minutes:.1f} minutes in {mode} mode on {device}."


def record_results(results_dir: str | Path, notebook: str, rows: dict[str, dict[str, float]]) -> Path:
    """Write the STS rows a notebook produced, for the demo's summary table."""
    path = Path(results_dir) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path


def read_results(results_dir: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))}
