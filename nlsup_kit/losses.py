"""Contrastive losses, each a small module whose docstring gives its formula.

Notation: ``cos`` is cosine similarity, ``T`` the temperature, ``B`` the batch size. All losses are means
over anchors. Inputs are raw embeddings; every loss normalises them itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlsup_kit.errors import NlsupError


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[i, j] = cos(a_i, b_j)``; half-precision embeddings are compared in float32 (logits divided by a
    temperature of 0.05 magnify rounding 20 times), float64 ones stay float64 (the tests' gradient checks)."""
    dtype = torch.promote_types(a.dtype, torch.float32)
    return F.normalize(a.to(dtype), dim=-1) @ F.normalize(b.to(dtype), dim=-1).T


class InfoNCELoss(nn.Module):
    """Unsupervised SimCSE: two dropout views, in-batch negatives.

    ``L = -1/B sum_i log( exp(cos(z1_i, z2_i)/T) / sum_j exp(cos(z1_i, z2_j)/T) )``
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        logits = cosine_matrix(z1, z2) / self.temperature
        return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))


class SupervisedSimCSELoss(nn.Module):
    """Supervised SimCSE: (anchor, entailment, contradiction) triples; other rows' positives and all
    hard negatives are negatives. ``hard_negative_weight`` w is added to the logit of the anchor's own
    hard negative (SimCSE's ``hard_negative_weight``; 0 in the paper).

    ``L = -1/B sum_i log( e^{s(i,i)} / (sum_j e^{s(i,j)} + sum_j e^{s'(i,j) + w [i=j]}) )``,
    ``s(i,j) = cos(z1_i, z2_j)/T``, ``s'(i,j) = cos(z1_i, z3_j)/T``.
    """

    def __init__(self, temperature: float = 0.05, hard_negative_weight: float = 0.0):
        super().__init__()
        self.temperature = temperature
        self.hard_negative_weight = hard_negative_weight

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, z3: torch.Tensor) -> torch.Tensor:
        positives = cosine_matrix(z1, z2) / self.temperature
        negatives = cosine_matrix(z1, z3) / self.temperature
        negatives = negatives + self.hard_negative_weight * torch.eye(len(z1), device=z1.device, dtype=z1.dtype)
        logits = torch.cat([positives, negatives], dim=1)
        return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020), every view of every example an anchor.

    For features ``f`` of shape (B, V, d) flattened to N = B*V unit vectors and anchor a with positives
    P(a) (same label, a excluded):
    ``L = -(T/T_base) 1/N sum_a 1/|P(a)| sum_{p in P(a)} log( e^{f_a.f_p/T} / sum_{k != a} e^{f_a.f_k/T} )``.
    With ``labels=None`` every example is its own class, which is SimCLR's NT-Xent. ``base_temperature``
    defaults to ``temperature`` (factor 1); the reference code fixes it at 0.07.
    """

    def __init__(self, temperature: float = 0.07, base_temperature: float | None = None):
        super().__init__()
        self.temperature = temperature
        self.base_temperature = base_temperature if base_temperature is not None else temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        batch, views = features.shape[:2]
        if labels is None:
            labels = torch.arange(batch, device=features.device)
        flat = features.transpose(0, 1).reshape(batch * views, -1)  # view-major, like torch.cat(unbind(1))
        flat_labels = labels.repeat(views)
        logits = cosine_matrix(flat, flat) / self.temperature
        self_mask = torch.eye(len(flat), dtype=torch.bool, device=flat.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits.log_softmax(dim=1).masked_fill(self_mask, 0.0)
        positives = (flat_labels[:, None] == flat_labels[None, :]) & ~self_mask
        counts = positives.sum(1)
        mean_log_prob = (log_prob * positives).sum(1) / counts.clamp(min=1)
        # the mean over anchors that have a positive, as a weighted sum: selecting them (x[mask]) would give a
        # shape that depends on the labels, which waits for the GPU and cannot be captured in a CUDA graph
        anchors = (counts > 0).to(mean_log_prob.dtype)
        return -(self.temperature / self.base_temperature) * (mean_log_prob * anchors).sum() / anchors.sum()


class NTXentLoss(SupConLoss):
    """SimCLR's NT-Xent: SupCon where each example's only positives are its other views.

    ``L = -1/2B sum_a log( e^{cos(z_a, z_a+)/T} / sum_{k != a} e^{cos(z_a, z_k)/T} )``
    """

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(features, None)


class ReleasedSupConLoss(nn.Module):
    """The reference code's ``new_supcon`` variant, reproduced exactly. **It is not SupCon.**

    ``S[i, j] = cos(z1_i, z2_j)/T`` and ``L = CE(S, t)`` with ``t_i`` the rank of ``labels[i]`` among the
    sorted distinct labels of the batch. The target column is a class rank, not a same-class example, so
    most rows are pulled toward an arbitrary example; only the z1 rows are anchors.
    """

    def __init__(self, temperature: float = 0.07):
        super().__init__()
        self.temperature = temperature

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = cosine_matrix(z1, z2) / self.temperature
        return F.cross_entropy(logits, label_ranks(labels))


def label_ranks(labels: torch.Tensor) -> torch.Tensor:
    """Each label's rank among the batch's distinct labels (``searchsorted(unique(labels), labels)``), counted
    with fixed shapes: ``unique``'s length depends on the labels, which a CUDA graph cannot hold."""
    same = labels[:, None] == labels[None, :]
    first = ~torch.tril(same, diagonal=-1).any(1)  # each distinct label once, at its first occurrence
    return ((labels[None, :] < labels[:, None]) & first[None, :]).sum(1)


class TwoViews(nn.Module):
    """A multi-view loss (SupCon, NT-Xent: features of shape (B, V, d)) called as the modality step calls every
    loss, ``(z1, z2, labels)``."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(torch.stack([z1, z2], dim=1), labels)


MODALITY_LOSSES = ("supcon", "simclr", "released-supcon")


def modality_loss(name: str, temperature: float) -> nn.Module:
    """The image/audio side's loss by name, a module called as ``(z1, z2, labels)``."""
    if name == "released-supcon":
        return ReleasedSupConLoss(temperature)
    if name == "supcon":
        return TwoViews(SupConLoss(temperature))
    if name == "simclr":
        return TwoViews(NTXentLoss(temperature))
    raise NlsupError(f"unknown modality_loss {name!r}; choose from {', '.join(MODALITY_LOSSES)}")


def loss_levels(name: str, batch: int, classes: int) -> dict[str, float]:
    """Two marks to read a logged image/audio loss against: ``uniform``, the loss of a model whose every softmax row
    is uniform (it cannot tell the views apart: all cosines equal), and ``floor``, the lowest the loss can go, for
    ``batch`` examples of two views each spread evenly over ``classes`` classes. SupCon's floor is the mean of
    log |P(a)| (its positives share the probability); SimCLR's and new_supcon's is 0 (one target takes it all)."""
    if name not in MODALITY_LOSSES:
        raise NlsupError(f"unknown modality_loss {name!r}; choose from {', '.join(MODALITY_LOSSES)}")
    if name == "released-supcon":  # a softmax over the batch's view-2 columns, one row per view-1 anchor
        return {"uniform": float(torch.log(torch.tensor(float(batch)))), "floor": 0.0}
    views = 2 * batch  # a softmax over every other view
    positives = 2 * batch / classes - 1 if name == "supcon" else 1.0
    return {"uniform": float(torch.log(torch.tensor(views - 1.0))), "floor": float(torch.log(torch.tensor(positives)))}
