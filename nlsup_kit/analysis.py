"""Looking inside an embedding space: anisotropy, alignment and uniformity (Wang & Isola 2020, as the SimCSE
paper reports them), similarity matrices, nearest neighbours, and how well the shared layers separate image or
audio classes (k-nearest-neighbour accuracy)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def pairwise_cosines(embeddings: torch.Tensor, pairs: int = 2000, seed: int = 0) -> np.ndarray:
    """Cosine similarity of random distinct pairs; raw BERT-style vectors crowd near 1 (anisotropy)."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(len(embeddings), (pairs,), generator=generator)
    second = (first + torch.randint(1, len(embeddings), (pairs,), generator=generator)) % len(embeddings)
    unit = F.normalize(embeddings.float(), dim=-1)
    return (unit[first] * unit[second]).sum(-1).numpy()


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||f(x) - f(y)||^alpha over positive pairs of unit vectors (lower is better)."""
    x, y = F.normalize(x.float(), dim=-1), F.normalize(y.float(), dim=-1)
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over all pairs of unit vectors (lower is better)."""
    x = F.normalize(x.float(), dim=-1)
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())


def similarity_matrix(embeddings: torch.Tensor) -> np.ndarray:
    unit = F.normalize(embeddings.float(), dim=-1)
    return (unit @ unit.T).numpy()


def knn_accuracy(vectors: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy by cosine similarity: the share of examples whose k closest
    other examples vote for their own class (ties go to the smaller label). No classifier is trained, so it
    measures the embedding itself."""
    unit = F.normalize(vectors.float(), dim=-1)
    similarity = (unit @ unit.T).fill_diagonal_(float("-inf"))
    votes = labels[similarity.topk(k, dim=1).indices]
    predicted = torch.mode(votes, dim=1).values
    return float((predicted == labels).float().mean())


def class_similarity(vectors: torch.Tensor, labels: Sequence) -> tuple[np.ndarray, list]:
    """The mean cosine between examples of class i and examples of class j, over every pair of distinct examples
    (the diagonal leaves out each example's cosine with itself), and the classes in sorted order: how far apart
    the classes sit in the full space, which a 2-D map can only distort."""
    unit = F.normalize(vectors.double(), dim=-1)
    classes = sorted(set(labels))
    index = torch.tensor([classes.index(label) for label in labels])
    members = F.one_hot(index, len(classes)).double()  # examples x classes
    cosine = unit @ unit.T
    sums = members.T @ cosine @ members - torch.diag(members.T @ cosine.diagonal())
    counts = members.sum(0)
    pairs = torch.outer(counts, counts) - torch.diag(counts)
    return (sums / pairs).numpy(), classes


def within_and_between(matrix: np.ndarray) -> tuple[float, float]:
    """The mean of a class-similarity matrix's diagonal (two examples of one class) and of the rest (two
    classes): classes stand apart in the space when the first is clearly the larger."""
    off_diagonal = ~np.eye(len(matrix), dtype=bool)
    return float(np.diag(matrix).mean()), float(matrix[off_diagonal].mean())


def classes_nearer_another(matrix: np.ndarray, classes: Sequence) -> list[tuple[object, object]]:
    """The classes of a class-similarity matrix that sit no closer to themselves than to some other class, each with
    the class it sits closest to: where a count of classes that stand apart hides which ones do not."""
    others = np.where(np.eye(len(matrix), dtype=bool), -np.inf, matrix)  # each class's row without itself
    return [(classes[c], classes[int(others[c].argmax())]) for c in range(len(matrix)) if matrix[c, c] <= others[c].max()]


@torch.inference_mode()
def trunk_vectors(branch, encoder, inputs: torch.Tensor, batch_size: int = 100, through_head: bool = False) -> torch.Tensor:
    """Image or audio inputs through the branch's patch embedding and the shared Transformer layers: the [CLS]
    vectors before the branch's own projection head, i.e. what the shared trunk makes of them; ``through_head``:
    on through that head, where the image or audio loss compares them."""
    branch.eval()
    encoder.eval()
    with torch.no_grad():
        if through_head:
            return torch.cat([branch(encoder, inputs[i:i + batch_size]).float() for i in range(0, len(inputs), batch_size)])
        return torch.cat([encoder.encode_tokens(branch.embedding(inputs[i:i + batch_size]), cls_only=True).float()
                          for i in range(0, len(inputs), batch_size)])


def nearest_neighbours(query: torch.Tensor, corpus: torch.Tensor, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` closest corpus rows for each query row."""
    scores = F.normalize(query.float(), dim=-1) @ F.normalize(corpus.float(), dim=-1).T
    top = scores.topk(min(k, len(corpus)), dim=1)
    return top.indices.numpy(), top.values.numpy()


def translation_retrieval(source: torch.Tensor, target: torch.Tensor) -> float:
    """Row ``i`` of ``source`` and of ``target`` are translations of each other: the share of source rows whose
    closest target row by cosine is their own translation (chance: 1 / rows)."""
    scores = F.normalize(source.float(), dim=-1) @ F.normalize(target.float(), dim=-1).T
    return int((scores.argmax(dim=1) == torch.arange(len(source))).sum()) / len(source)


def length_retrieval(source: Sequence[str], target: Sequence[str]) -> float:
    """The baseline for :func:`translation_retrieval` that reads only length: unit ``i`` of ``source`` matched
    to the ``target`` unit nearest in its share of its text's characters (first on a tie)."""
    shares = [np.array([len(unit) for unit in units], dtype=float) / sum(len(unit) for unit in units)
              for units in (source, target)]
    nearest = np.abs(shares[0][:, None] - shares[1][None, :]).argmin(axis=1)
    return float((nearest == np.arange(len(source))).mean())


def tokenizer_facts(tokenizer) -> str:
    """What kind of tokenizer a model ships, read from its own saved pipeline (so a claim about "an English
    uncased WordPiece vocabulary" can be checked against the model at hand)."""
    import json

    pipeline = json.loads(tokenizer.backend_tokenizer.to_str())
    model, normaliser = pipeline["model"]["type"], pipeline.get("normalizer") or {}
    facts = f"{model} over {tokenizer.vocab_size:,} pieces"
    if normaliser.get("type") == "BertNormalizer":
        strip = normaliser.get("strip_accents")
        strip = normaliser.get("lowercase") if strip is None else strip  # BERT's rule: unset follows lower-casing
        facts += (f"; its normaliser lower-cases: {normaliser.get('lowercase')}, strips accents: {strip}, puts spaces "
                  f"around each Chinese character (so each is a word of its own): {normaliser.get('handle_chinese_chars')}")
    return facts


def _changed_characters(normaliser, text: str) -> dict[str, str]:
    if normaliser is None:
        return {}
    # a capital whose lower case is two characters (Turkish İ -> i + a combining dot) is kept as written: its mark
    # would otherwise be dropped below with the other marks, and the change would go unseen
    capitals = {c for c in text if len(c.lower()) > 1}
    letters = [c for c in sorted(set(text.lower()) | capitals)
               if not c.isspace() and not unicodedata.category(c).startswith("M")]
    normal = {c: normaliser.normalize_str(c).replace(" ", "") for c in letters}
    return {c: n for c, n in normal.items() if n != c.lower()}


def tokenizer_report(tokenizer, parallel: dict[str, list[str]], reference: str = "en",
                     max_length: int = 32) -> dict[str, dict[str, float]]:
    """What one tokenizer makes of the same text in each language. Per language: ``pieces`` (tokens of all
    units, no special tokens), ``ratio`` (pieces against the reference language's: how many times longer the
    same content is), ``unknown`` (share of pieces that are the unknown token), ``kept`` (the mean share of a
    unit's pieces that fit in a training input of ``max_length``, its special tokens included, as SimCSE's
    32-token cut keeps them) and ``changed_words`` (share of space-separated words that the tokenizer's own
    normaliser turns into something other than their lower case, e.g. by stripping accents; the spaces BERT's
    normaliser puts around each Chinese character do not count), ``per_word`` (pieces per space-separated word:
    how finely words are cut, apart from how many words a language uses), ``words_per_unit`` and
    ``changed_characters`` (each lower-case
    character the normaliser turns into something other than itself, and each capital whose lower case it changes,
    -> what it becomes)."""
    special = tokenizer.num_special_tokens_to_add(pair=False)
    normaliser = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    counts = {}
    for language, units in parallel.items():
        pieces = [tokenizer.tokenize(unit) for unit in units]
        words = [word for unit in units for word in unit.split()]
        changed = [w for w in words if normaliser is not None and normaliser.normalize_str(w).replace(" ", "") != w.lower()]
        counts[language] = {"pieces": sum(map(len, pieces)),
                            "unknown": sum(p == tokenizer.unk_token for unit in pieces for p in unit),
                            "kept": float(np.mean([min(len(p), max_length - special) / len(p) for p in pieces])),
                            "changed_words": len(changed) / len(words),
                            "per_word": sum(map(len, pieces)) / len(words),
                            "words_per_unit": len(words) / len(units),
                            "changed_characters": _changed_characters(normaliser, "".join(units))}
    base = counts[reference]["pieces"]
    return {language: {**c, "ratio": c["pieces"] / base, "unknown": c["unknown"] / c["pieces"]}
            for language, c in counts.items()}
