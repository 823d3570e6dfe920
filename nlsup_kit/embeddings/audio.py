"""Audio as token sequences for the shared Transformer: SSAST-style patches of a Kaldi fbank
(:func:`nlsup_kit.data.audio.kaldi_fbank`).

As in the reference AudioCSE code: non-overlapping square patches of the fbank's (mel x time) image, projected
by a Conv2d from one channel, a learned [CLS] token and no position embedding; randomly initialised and trained.
"""

from __future__ import annotations

import torch
from torch import nn


class AudioPatchEmbedding(nn.Module):
    """(B, frames, mel) fbank -> (B, 1 + patches, hidden) tokens: [CLS] + non-overlapping patches."""

    def __init__(self, hidden_size: int, num_mel_bins: int = 128, target_frames: int = 1024,
                 patch_size: int = 24, dropout: float = 0.0):
        super().__init__()
        self.num_mel_bins, self.target_frames, self.patch_size = num_mel_bins, target_frames, patch_size
        self.num_patches = (num_mel_bins // patch_size) * (target_frames // patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden_size) * 0.02)
        self.projection = nn.Conv2d(1, hidden_size, kernel_size=patch_size, stride=patch_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        image = fbank.unsqueeze(1).transpose(2, 3)  # (B, 1, mel, frames)
        patches = self.projection(image).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(len(patches), -1, -1)
        return self.dropout(torch.cat([cls, patches], dim=1))


def fbank_squares(fbank: torch.Tensor, patch_size: int) -> torch.Tensor:
    """A (B, frames, mel) fbank's whole ``patch_size`` squares, (B, patches, patch_size, patch_size), in the order
    :class:`AudioPatchEmbedding` reads them: mel bands down, time across."""
    batch, frames, mel = fbank.shape
    rows, columns = mel // patch_size, frames // patch_size
    image = fbank.transpose(1, 2)[:, : rows * patch_size, : columns * patch_size]
    return image.reshape(batch, rows, patch_size, columns, patch_size).permute(0, 1, 3, 2, 4).reshape(
        batch, rows * columns, patch_size, patch_size)


def shuffled_patches(fbank: torch.Tensor, patch_size: int, order: torch.Tensor) -> torch.Tensor:
    """A (B, frames, mel) fbank with its whole ``patch_size`` squares moved: the square that
    :class:`AudioPatchEmbedding` reads as patch ``order[k]`` goes where it reads patch ``k``. Moving squares of the
    input, not rows of the tokens, tests the whole audio branch: does anything in it carry where a patch was?"""
    batch, frames, mel = fbank.shape
    rows, columns = mel // patch_size, frames // patch_size
    moved = fbank_squares(fbank, patch_size)[:, order].reshape(batch, rows, columns, patch_size, patch_size).permute(
        0, 1, 3, 2, 4).reshape(batch, rows * patch_size, columns * patch_size)
    result = fbank.clone()
    result.transpose(1, 2)[:, : rows * patch_size, : columns * patch_size] = moved
    return result
