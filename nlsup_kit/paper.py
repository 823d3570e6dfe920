"""The paper's reported STS results (Jian, Gao & Vosoughi 2022, arXiv:2209.09433; the table in PAPER.md):
Spearman x 100 on the seven tasks after one epoch on wiki1m, keyed by the kit's recipe names, so a notebook
can set its own numbers beside them (labelled as the different settings they are)."""

from __future__ import annotations

from nlsup_kit.data.senteval import STS_TASKS

_ROWS = {
    "simcse-bert-base": (68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
    "visualcse-bert-base": (71.16, 83.29, 75.13, 81.59, 80.05, 80.03, 71.23, 77.50),
    "audiocse-bert-base": (71.65, 84.27, 76.69, 83.22, 78.69, 79.94, 70.49, 77.85),
    "simcse-roberta-base": (70.16, 81.77, 73.24, 81.36, 80.65, 80.22, 68.56, 76.57),
    "visualcse-roberta-base": (70.41, 83.51, 74.87, 82.79, 81.67, 81.89, 69.95, 77.87),
    "audiocse-roberta-base": (68.44, 83.93, 75.77, 82.38, 82.07, 81.63, 70.56, 77.83),
    "simcse-roberta-large": (72.86, 83.99, 75.62, 84.77, 81.80, 81.98, 71.26, 78.90),
    "visualcse-roberta-large": (73.09, 84.77, 77.09, 85.47, 82.06, 83.26, 72.23, 79.71),
    "audiocse-roberta-large": (72.10, 84.30, 76.74, 85.11, 82.51, 82.94, 72.45, 79.45),
}

# recipe -> task (STS_TASKS names, and "avg") -> Spearman x 100
PAPER_STS: dict[str, dict[str, float]] = {
    recipe: dict(zip((*STS_TASKS, "avg"), row)) for recipe, row in _ROWS.items()}


def paper_scores(recipe: str, tasks=(*STS_TASKS, "avg")) -> dict[str, float] | None:
    """The paper's scores of ``recipe`` on ``tasks``, or None for a recipe the paper does not report."""
    row = PAPER_STS.get(recipe)
    return None if row is None else {task: row[task] for task in tasks}
