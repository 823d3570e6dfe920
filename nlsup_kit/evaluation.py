"""STS scoring in the SentEval protocol as SimCSE runs it.

Score = Spearman x 100 between the cosine similarity of the two embeddings and the gold score. STS12-16
use the "all" aggregation (one Spearman over the pooled subsets); STS-B and SICK-R use their test split.
The average is the mean of the seven scores, each rounded to 2 decimals first (how the paper's tables read).
The multilingual STS-B (``stsb-de``...) and STS17 (``sts17-en-de``...) are scored as STS-B is: Spearman x 100 of
the cosine on the test split.
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
from nlsup_kit.data.multilingual import MULTILINGUAL_TASKS, describe_task, dev_task, load_task, task_need
from nlsup_kit.data.senteval import STS_TASKS, STS_YEARS, StsPairs
from nlsup_kit.device import pick_device
from nlsup_kit.errors import NlsupError
from nlsup_kit.similarity_cache import SimilarityCache

EncodeFn = Callable[[Sequence[str]], torch.Tensor]
ALL_STS_TASKS: tuple[str, ...] = (*STS_TASKS, *MULTILINGUAL_TASKS)


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

    @property
    def mean_spearman(self) -> float:
        """The mean of the unrounded scores: what gaps between runs are computed from (``average`` rounds each
        task first, as SentEval's table does, which can move a gap of a few hundredths)."""
        return float(np.mean([s.spearman for s in self.scores.values()]))

    def as_dict(self) -> dict[str, float]:
        """The headline numbers: ``{"STS12": 72.37, ..., "avg": ...}``."""
        result = {task: round(score.spearman, 2) for task, score in self.scores.items()}
        result["avg"] = self.average
        return result

    def details(self) -> dict:
        return {task: {"spearman": s.spearman, "pearson": s.pearson, "pairs": s.pairs, "subsets": s.subsets}
                for task, s in self.scores.items()}

    def table(self, title: str | None = None) -> str:
        names = [*self.scores, "avg"] if len(self.scores) > 1 else list(self.scores)  # one task: avg repeats it
        values = self.as_dict()
        widths = [max(len(n), 6) for n in names]
        header = " | ".join(n.rjust(w) for n, w in zip(names, widths))
        row = " | ".join(f"{values[n]:.2f}".rjust(w) for n, w in zip(names, widths))
        lines = [title] if title else []
        return "\n".join([*lines, header, "-" * len(header), row])

    def protocol(self, split: str = "test") -> str:
        """Which set, split and aggregation each number is, one line per task."""
        lines = ["Spearman x 100 between the cosine of the two embeddings and the human score, per task:"]
        for task, score in self.scores.items():
            if task in MULTILINGUAL_TASKS:
                source = describe_task(task, split)
            elif task in STS_YEARS:
                source = "SentEval, 'all' (the subsets' pairs pooled), test"
            else:
                source = f"SentEval, {split} split"
            lines.append(f"  {task}: {source}, {score.pairs:,} pairs")
        return "\n".join(lines)

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


def task_data_needs(tasks: Sequence[str]) -> list[str]:
    """What :func:`ensure_data` must provide to score ``tasks``: SentEval for the English seven, a language's
    STS-B files for ``stsb-<lang>``, the STS17 archive for ``sts17-<a>-<b>``."""
    unknown = [t for t in tasks if t not in ALL_STS_TASKS]
    if unknown:
        raise NlsupError(f"unknown STS task {unknown[0]!r}; choose from {', '.join(ALL_STS_TASKS)}")
    return list(dict.fromkeys(task_need(task) for task in tasks))


def evaluate_sts(
    encode: EncodeFn,
    tasks: Sequence[str] = STS_TASKS,
    data_dir: str | Path | None = None,
    split: str = "test",
    cache: SimilarityCache | None = None,
) -> StsReport:
    """Score ``encode`` (sentences -> embeddings) on the given tasks; every distinct sentence is encoded once,
    and none for a task whose similarities ``cache`` already holds."""
    root = ensure_data(task_data_needs(tasks), data_dir)
    task_pairs = {task: load_task(task, root, split) for task in tasks}
    similarities = {task: cache.get(task, pairs) for task, pairs in task_pairs.items()} if cache is not None else {}
    missing = {task: pairs for task, pairs in task_pairs.items() if similarities.get(task) is None}
    sentences = list(dict.fromkeys(s for p in missing.values() for s in (*p.sentences1, *p.sentences2)))
    embeddings = encode(sentences) if sentences else None
    row = {sentence: i for i, sentence in enumerate(sentences)}
    for task, pairs in missing.items():
        emb1 = embeddings[[row[s] for s in pairs.sentences1]]
        emb2 = embeddings[[row[s] for s in pairs.sentences2]]
        similarities[task] = cosine_scores(emb1, emb2)
        if cache is not None:
            cache.put(task, pairs, similarities[task])
    return StsReport({task: score_pairs(pairs, similarities[task]) for task, pairs in task_pairs.items()})


def evaluate_model(model, pooling: str = "cls_before_pooler", tasks: Sequence[str] = STS_TASKS,
                   data_dir: str | Path | None = None, device: str | None = None, cache: bool = True) -> StsReport:
    """Score a model name, folder or :class:`SentenceEncoder` on STS tasks; with ``cache``, the similarities of
    a task this very encoder has been scored on are read back (:mod:`nlsup_kit.similarity_cache`)."""
    from nlsup_kit.encoder import SentenceEncoder

    encoder = model if isinstance(model, SentenceEncoder) else SentenceEncoder.from_pretrained(str(model))
    where = pick_device(device)
    store = SimilarityCache.of(encoder, pooling, where) if cache else None
    return evaluate_sts(lambda s: encoder.encode(s, pooling, device=where), tasks, data_dir, cache=store)


def stsb_dev_measures(encoder, pooling: str, device: torch.device, data_dir: str | Path | None = None,
                      language: str = "en") -> dict[str, float]:
    """What training watches at each evaluation, from one encoding of STS-B dev (SentEval's for English, else
    the language's stsb_multi_mt): Spearman x 100 (the checkpoint-selection metric), and alignment and
    uniformity as the SimCSE paper measures them (arXiv 2104.08821v4, section 3, footnote 3: alignment over the pairs scored above 4,
    uniformity over every sentence)."""
    from nlsup_kit.analysis import alignment, uniformity

    task = dev_task(language)
    pairs = load_task(task, ensure_data([task_need(task)], data_dir), "dev")
    sentences = list(dict.fromkeys((*pairs.sentences1, *pairs.sentences2)))
    embeddings = encoder.encode(sentences, pooling, device=device, progress=False)
    row = {sentence: i for i, sentence in enumerate(sentences)}
    emb1, emb2 = embeddings[[row[s] for s in pairs.sentences1]], embeddings[[row[s] for s in pairs.sentences2]]
    positive = torch.tensor(np.asarray(pairs.scores) > 4.0)
    return {"stsb_dev": score_pairs(pairs, cosine_scores(emb1, emb2)).spearman,
            "alignment": alignment(emb1[positive], emb2[positive]), "uniformity": uniformity(embeddings)}


# runs (seeds) per method before a gap is read: by the t interval (conclusions.gap_interval) or the bootstrap below
MIN_RUNS_FOR_A_VERDICT = 3


@dataclass
class DifferenceInterval:
    """B minus A in Spearman x 100, with a bootstrap interval; :meth:`conclusion` says only what it shows."""

    difference: float  # mean over B's runs minus mean over A's runs, on all pairs
    low: float
    high: float
    confidence: float
    per_seed: list[float]  # each run of B minus the run of A with the same index (same seed)

    def conclusion(self, name_a: str, name_b: str, test_set: str) -> str:
        """What the interval shows, and no more: one run per method speaks for other test pairs, not other seeds;
        two runs resample the seeds too coarsely (the same run repeated in half the samples) for a verdict."""
        digits = 2  # more where an end would round to 0 and hide on which side of it the interval lies
        while digits < 6 and any(end != 0 and round(end, digits) == 0 for end in (self.low, self.high)):
            digits += 1
        interval = (f"{name_b} - {name_a} on {test_set}: {self.difference:+.2f} points, "
                    f"{self.confidence:.0%} interval [{self.low:+.{digits}f}, {self.high:+.{digits}f}]")
        runs = len(self.per_seed)
        better = name_b if self.difference > 0 else name_a
        if self.low <= 0 <= self.high:
            verdict = "the interval contains 0, so these runs cannot tell the two methods apart"
        elif runs == 1:
            verdict = (f"the interval excludes 0: on other test pairs like these this run of {better} would likely still "
                       f"score higher (at least {(1 + self.confidence) / 2:.1%} of the resamples of the pairs favour it: "
                       f"the interval's end nearer 0, beyond which {(1 - self.confidence) / 2:.1%} of them fall, is on "
                       "its side of 0); "
                       "one run per method says nothing about other seeds")
        elif runs < MIN_RUNS_FOR_A_VERDICT:
            verdict = (f"the interval excludes 0, but {runs} runs per method resample the seeds too coarsely for a "
                       f"verdict on the methods (at least {MIN_RUNS_FOR_A_VERDICT} runs each)")
        else:
            verdict = (f"the interval excludes 0: {better} scores higher on {test_set} in these runs, as far as resampling "
                       f"their pairs and their {runs} seeds shows; few seeds resample coarsely: read it beside the "
                       "t interval over the per-seed differences, which counts the seeds' spread")
        return f"{interval}; {verdict}"


def bootstrap_difference(gold: np.ndarray, runs_a: Sequence[np.ndarray], runs_b: Sequence[np.ndarray],
                         samples: int = 1000, seed: int = 0, confidence: float = 0.95,
                         paired: bool = False) -> DifferenceInterval:
    """Spearman x 100 of method B minus method A, from several training runs (seeds) of each, all scored on
    the same sentence pairs, with a two-level percentile bootstrap: resample each method's runs, then the pairs.
    ``paired``: run k of A and run k of B share a seed (and so their text batches), and the runs are drawn together,
    as the pairs are, so what the shared seed moves in both cancels in the difference.

    Two sources of chance move a score: which sentence pairs the test set happens to hold, and the training
    run's randomness (initial head, dropout, batch order). Resampling pairs alone answers "would this run
    still win on other pairs?" and ignores the second. With one run per method only the pairs are
    resampled, and the interval says nothing about other seeds.
    """
    rng = np.random.default_rng(seed)
    gold = np.asarray(gold)
    runs_a, runs_b = [np.asarray(r) for r in runs_a], [np.asarray(r) for r in runs_b]

    def mean_spearman(runs: list[np.ndarray], pairs: np.ndarray) -> float:
        return float(np.mean([spearmanr(run[pairs], gold[pairs])[0] for run in runs])) * 100

    everything = np.arange(len(gold))
    observed = mean_spearman(runs_b, everything) - mean_spearman(runs_a, everything)
    per_seed = [(spearmanr(b, gold)[0] - spearmanr(a, gold)[0]) * 100 for a, b in zip(runs_a, runs_b)]
    if paired and len(runs_a) != len(runs_b):
        raise ValueError(f"paired runs need as many runs of each method, not {len(runs_a)} and {len(runs_b)}")
    differences = np.empty(samples)
    for i in range(samples):
        drawn_a = rng.integers(0, len(runs_a), len(runs_a))
        drawn_b = drawn_a if paired else rng.integers(0, len(runs_b), len(runs_b))
        chosen_a, chosen_b = [runs_a[k] for k in drawn_a], [runs_b[k] for k in drawn_b]
        pairs = rng.integers(0, len(gold), len(gold))
        differences[i] = mean_spearman(chosen_b, pairs) - mean_spearman(chosen_a, pairs)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return DifferenceInterval(float(observed), float(low), float(high), confidence, [float(d) for d in per_seed])
