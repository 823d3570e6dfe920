"""STS scoring in the SentEval protocol as SimCSE runs it.

Score = Spearman x 100 between the cosine similarity of the two embeddings and the gold score. STS12-16
use the "all" aggregation (one Spearman over the pooled subsets); STS-B and SICK-R use their test split.
The average is the mean of the seven scores, each rounded to 2 decimals first (how the paper's tables read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from nlsup_kit.data.sources import ensure_data
from nlsup_kit.data.senteval import STS_TASKS, StsPairs, load_sts_task
from nlsup_kit.errors import NlsupError

EncodeFn = Callable[[Sequence[str]], torch.Tensor]


@dataclass
class TaskScore:
    """One task's result: Spearman and Pearson x 100, and the same per SemEval subset."""

    spearman: float
    pearson: float
    pairs: int
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    predicted: np.ndarray | None = field(default=None, repr=False)  # cosine per pair, for paired statistics
    gold: np.ndarray | None = field(default=None, repr=False)


@dataclass
class StsReport:
    scores: dict[str, TaskScore]

    @property
    def average(self) -> float:
        return round(float(np.mean([round(s.spearman, 2) for s in self.scores.values()])), 2)

    def as_dict(self) -> dict[str, float]:
        """The headline numbers: ``{"STS12": 72.37, ..., "avg": ...}``."""
        result = {task: round(score.spearman, 2) for task, score in self.scores.items()}
        result["avg"] = self.average
        return result

    def details(self) -> dict:
        return {task: {"spearman": s.spearman, "pearson": s.pearson, "pairs": s.pairs, "subsets": s.subsets}
                for task, s in self.scores.items()}

    def table(self, title: str | None = None) -> str:
        names = [*self.scores, "avg"]
        values = self.as_dict()
        widths = [max(len(n), 6) for n in names]
        header = " | ".join(n.rjust(w) for n, w in zip(names, widths))
        row = " | ".join(f"{values[n]:.2f}".rjust(w) for n, w in zip(names, widths))
        lines = [title] if title else []
        return "\n".join([*lines, header, "-" * len(header), row])

    def write_json(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({**self.as_dict(), "details": self.details()}, indent=2))
        tmp.replace(path)


def cosine_scores(emb1: torch.Tensor, emb2: torch.Tensor) -> np.ndarray:
    """Row-wise cosine in float64; zero vectors score 0 as in SentEval's nan_to_num."""
    a, b = emb1.double().numpy(), emb2.double().numpy()
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.nan_to_num((a * b).sum(1) / norms)


def correlations(predicted: np.ndarray, gold: Sequence[float]) -> tuple[float, float]:
    """(Spearman, Pearson), both x 100."""
    return float(spearmanr(predicted, gold)[0] * 100), float(pearsonr(predicted, gold)[0] * 100)


def score_pairs(pairs: StsPairs, similarities: np.ndarray) -> TaskScore:
    spearman, pearson = correlations(similarities, pairs.scores)
    subsets = {}
    names = np.array(pairs.subsets)
    gold = np.array(pairs.scores)
    for name in dict.fromkeys(pairs.subsets):
        mask = names == name
        sub_spearman, sub_pearson = correlations(similarities[mask], gold[mask])
        subsets[name] = {"spearman": sub_spearman, "pearson": sub_pearson, "pairs": int(mask.sum())}
    return TaskScore(spearman, pearson, len(pairs), subsets if len(subsets) > 1 else {}, similarities, gold)


def evaluate_sts(
    encode: EncodeFn,
    tasks: Sequence[str] = STS_TASKS,
    data_dir: str | Path | None = None,
    split: str = "test",
) -> StsReport:
    """Score ``encode`` (sentences -> embeddings) on the given tasks; every distinct sentence is encoded once."""
    unknown = [t for t in tasks if t not in STS_TASKS]
    if unknown:
        raise NlsupError(f"unknown STS task {unknown[0]!r}; choose from {', '.join(STS_TASKS)}")
    root = ensure_data(["senteval"], data_dir)
    task_pairs = {task: load_sts_task(task, root, split) for task in tasks}
    sentences = list(dict.fromkeys(s for p in task_pairs.values() for s in (*p.sentences1, *p.sentences2)))
    embeddings = encode(sentences)
    row = {sentence: i for i, sentence in enumerate(sentences)}
    scores = {}
    for task, pairs in task_pairs.items():
        emb1 = embeddings[[row[s] for s in pairs.sentences1]]
        emb2 = embeddings[[row[s] for s in pairs.sentences2]]
        scores[task] = score_pairs(pairs, cosine_scores(emb1, emb2))
    return StsReport(scores)


def evaluate_model(model, pooling: str = "cls_before_pooler", tasks: Sequence[str] = STS_TASKS,
                   data_dir: str | Path | None = None, device: str | None = None) -> StsReport:
    """Score a model name, folder or :class:`SentenceEncoder` on STS tasks."""
    from nlsup_kit.encoder import SentenceEncoder

    encoder = model if isinstance(model, SentenceEncoder) else SentenceEncoder.from_pretrained(str(model))
    return evaluate_sts(lambda s: encoder.encode(s, pooling, device=device), tasks, data_dir)


def stsb_dev_measures(encoder, pooling: str, device: torch.device, data_dir: str | Path | None = None
                      ) -> dict[str, float]:
    """What training watches at each evaluation, from one encoding of STS-B dev: Spearman x 100 (the
    checkpoint-selection metric), and alignment and uniformity as the SimCSE paper measures them (section 5:
    alignment over the pairs scored above 4, uniformity over every sentence)."""
    from nlsup_kit.analysis import alignment, uniformity

    pairs = load_sts_task("STSBenchmark", ensure_data(["senteval"], data_dir), "dev")
    sentences = list(dict.fromkeys((*pairs.sentences1, *pairs.sentences2)))
    embeddings = encoder.encode(sentences, pooling, device=device, progress=False)
    row = {sentence: i for i, sentence in enumerate(sentences)}
    emb1, emb2 = embeddings[[row[s] for s in pairs.sentences1]], embeddings[[row[s] for s in pairs.sentences2]]
    positive = torch.tensor(np.asarray(pairs.scores) > 4.0)
    return {"stsb_dev": score_pairs(pairs, cosine_scores(emb1, emb2)).spearman,
            "alignment": alignment(emb1[positive], emb2[positive]), "uniformity": uniformity(embeddings)}


def paired_bootstrap(gold: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray, samples: int = 1000,
                     seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Spearman x 100 of B minus A on the same pairs, with a percentile bootstrap interval over pairs.

    Resampling pairs (not runs) asks: on other sentence pairs from the same distribution, would B still
    beat A? An interval that contains 0 means the test set cannot tell the two apart.
    """
    rng = np.random.default_rng(seed)
    gold, predicted_a, predicted_b = map(np.asarray, (gold, predicted_a, predicted_b))
    observed = correlations(predicted_b, gold)[0] - correlations(predicted_a, gold)[0]
    differences = np.empty(samples)
    for i in range(samples):
        index = rng.integers(0, len(gold), len(gold))
        differences[i] = (spearmanr(predicted_b[index], gold[index])[0]
                          - spearmanr(predicted_a[index], gold[index])[0]) * 100
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return {"difference": float(observed), "low": float(low), "high": float(high)}
