"""What the optimizer does to the notebooks' quick runs: each quick recipe trained as notebooks 1-4 train it (20
steps, seeds 42 and 1), once with the reference code's AdamW (``optimizer=reference-adamw``, the kit's default)
and once with torch's (``torch-adamw``), everything else equal; printed side by side with the difference.

    python benchmarks/quick_optimizers.py --data-dir ../shared/data [--out build/quick-optimizers]

Scores are Spearman x 100 on STS-B test (the notebooks' quick task) of each run's best checkpoint (STS-B dev
picks it), through the recipe's evaluation pooler; runs land in --out and are reused when run again.
"""

from __future__ import annotations

import argparse

from nlsup_kit.evaluation import evaluate_model
from nlsup_kit.notebook import QUICK_TASKS
from nlsup_kit.optimizers import OPTIMIZERS
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import train

RECIPES = ("quick-simcse", "quick-visualcse", "quick-audiocse")
SEEDS = (42, 1)  # notebook 2's SEED and EXTRA_SEEDS; notebook 4's SEEDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="build/quick-optimizers")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for name in RECIPES:
        for seed in SEEDS:
            scores = {}
            for optimizer in OPTIMIZERS:
                recipe = apply_overrides(get_recipe(name), [f"seed={seed}", f"max_steps={args.steps}",
                                                            f"optimizer={optimizer}"])
                run = train(recipe, f"{args.out}/{name}-seed{seed}-{optimizer}", args.data_dir, reuse=True,
                            progress=False)
                report = evaluate_model(run.best_dir, recipe.pooling_for_evaluation(), QUICK_TASKS, args.data_dir)
                scores[optimizer] = (report.scores[QUICK_TASKS[0]].spearman, run.best_dev, run.last_loss)
            rows.append((name, seed, scores))
    print(f"STS-B test / best STS-B dev / last text loss, {args.steps} steps (Spearman x 100)")
    print(f"{'recipe':16} {'seed':>4}  {'reference-adamw':>26}  {'torch-adamw':>26}  {'test difference':>15}")
    for name, seed, scores in rows:
        cells = [f"{t:6.3f} / {d:6.3f} / {loss:.4f}" for t, d, loss in (scores[o] for o in OPTIMIZERS)]
        difference = scores["reference-adamw"][0] - scores["torch-adamw"][0]
        print(f"{name:16} {seed:>4}  {cells[0]:>26}  {cells[1]:>26}  {difference:+15.3f}")


if __name__ == "__main__":
    main()
