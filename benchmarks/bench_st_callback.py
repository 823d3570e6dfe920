"""What NonLinguisticCallback costs: seconds per iteration of a plain SentenceTransformerTrainer (MNRL, unsupervised
SimCSE's loss), the same trainer with the callback, and the kit's own trainer on the same recipe, from one run,
printed side by side with their ratios.

    python benchmarks/bench_st_callback.py [--recipe quick-visualcse] [--steps 30] [--warmup 5] [--data-dir DIR]

Each row is the median over the steps after ``--warmup``. The trainer rows time on_step_begin to on_step_end: the
callback's image/audio update (batch loading and augmentation included), the text forward, backward, clipping and
AdamW; not the trainer's own text batch collation, logging or checkpoints. The kit's row is its trainer's clock
between steps (text batch, image/audio batch, both updates); its one evaluation, at the last step, is left out.
Run with nothing else on the machine: on 2 cores, another process slows torch's kernels many times over.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from nlsup_kit.data import ensure_data
from nlsup_kit.data.text import load_text_data
from nlsup_kit.integrations.sentence_transformers import NonLinguisticCallback, mean_pooled_model, simcse_trainer
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import Trainer


class StepClock(TrainerCallback):
    """Seconds from each step's beginning to its end; put first, so that it starts before the other callbacks."""

    def __init__(self):
        self.started, self.seconds = 0.0, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.started)


def sentence_transformers_seconds(recipe, sentences: list[str], data_dir: Path, output_dir: Path,
                                  with_callback: bool) -> list[float]:
    model = mean_pooled_model(recipe)
    clock = StepClock()
    callbacks = [clock] + ([NonLinguisticCallback(model, recipe, data_dir=data_dir)] if with_callback else [])
    simcse_trainer(model, sentences, recipe, output_dir, callbacks, logging_steps=recipe.max_steps).train()
    return clock.seconds


def kit_seconds(recipe, data_dir: Path, output_dir: Path) -> list[float]:
    trainer = Trainer(recipe, output_dir, data_dir, progress=False)
    trainer.train()
    moments = [seconds for _, seconds in trainer.clock]
    return [later - earlier for earlier, later in zip([0.0] + moments[:-1], moments)][:-1]  # the last holds the evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="quick-visualcse")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    recipe = apply_overrides(get_recipe(args.recipe), [f"max_steps={args.steps}", f"eval_steps={args.steps}"])
    data_dir = ensure_data(["senteval", "wiki"], args.data_dir)
    sentences = load_text_data(recipe.text_data, data_dir, recipe.batch_size * args.steps)
    with tempfile.TemporaryDirectory() as scratch:
        rows = {"sentence-transformers trainer, MNRL": sentence_transformers_seconds(
                    recipe, sentences, data_dir, Path(scratch) / "plain", with_callback=False),
                "the same with NonLinguisticCallback": sentence_transformers_seconds(
                    recipe, sentences, data_dir, Path(scratch) / "callback", with_callback=True),
                f"the kit's trainer ({recipe.name})": kit_seconds(recipe, data_dir, Path(scratch) / "kit")}
    median = {name: statistics.median(seconds[args.warmup:]) for name, seconds in rows.items()}
    plain = median["sentence-transformers trainer, MNRL"]
    print(f"{recipe.name}: {recipe.model}, text batch {recipe.batch_size}, {recipe.modality} batch "
          f"{recipe.modality_batch_size}; median seconds per iteration over steps {args.warmup + 1}-{args.steps}:")
    for name, seconds in median.items():
        print(f"  {name:42} {seconds:7.3f} s   x{seconds / plain:.2f} of the plain trainer")
    callback = median["the same with NonLinguisticCallback"]
    kit = median[f"the kit's trainer ({recipe.name})"]
    print(f"the callback adds x{callback / plain:.2f} to a plain trainer's iteration; trainer with callback / kit's "
          f"trainer: x{callback / kit:.2f}")


if __name__ == "__main__":
    main()
