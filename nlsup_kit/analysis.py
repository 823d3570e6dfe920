"""Looking inside an embedding space: anisotropy, alignment and uniformity (Wang & Isola 2020, as the SimCSE
paper reports them), similarity matrices and nearest neighbours."""

from __future__ import annotations

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


def nearest_neighbours(query: torch.Tensor, corpus: torch.Tensor, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` closest corpus rows for each query row."""
    scores = F.normalize(query.float(), dim=-1) @ F.normalize(corpus.float(), dim=-1).T
    top = scores.topk(min(k, len(corpus)), dim=1)
    return top.indices.numpy(), top.values.numpy()
