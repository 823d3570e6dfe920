"""Modality embeddings: turn images or audio into token sequences for the shared text Transformer."""

from __future__ import annotations

import torch
from torch import nn

from nlsup_kit.embeddings.audio import AudioPatchEmbedding
from nlsup_kit.embeddings.image import ImagePatchEmbedding
from nlsup_kit.encoder import MLPHead, SentenceEncoder

__all__ = ["AudioPatchEmbedding", "ImagePatchEmbedding", "ModalityBranch"]


class ModalityBranch(nn.Module):
    """A patch embedding and its own projection head around the sentence encoder's shared layers:
    ``z = head(layers(embedding(x))[:, 0])``, the [CLS] position as in the reference code."""

    def __init__(self, embedding: nn.Module, hidden_size: int):
        super().__init__()
        self.embedding = embedding
        self.head = MLPHead(hidden_size)

    def forward(self, encoder: SentenceEncoder, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(encoder.encode_tokens(self.embedding(inputs), cls_only=True))
