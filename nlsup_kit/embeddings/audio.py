"""Audio as token sequences for the shared Transformer: Kaldi fbank, then SSAST-style patches.

As in the reference AudioCSE code: 128 mel bins, 10 ms frames, the clip padded or cut to a fixed frame count
(1024 = 10.24 s), non-overlapping square patches of the (mel x time) image projected by a Conv2d from one
channel, a learned [CLS] token and no position embedding; randomly initialised and trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16_000


def kaldi_fbank(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = 128,
                target_frames: int = 1024) -> torch.Tensor:
    """A mono waveform (samples,) -> (target_frames, num_mel_bins) log-mel filterbank, zero-padded or cut."""
    from torchaudio.compliance.kaldi import fbank

    waveform = waveform.reshape(1, -1).float()
    waveform = waveform - waveform.mean()
    minimum = int(0.025 * sample_rate)  # one 25 ms window
    if waveform.shape[1] < minimum:
        waveform = F.pad(waveform, (0, minimum - waveform.shape[1]))
    features = fbank(waveform, htk_compat=True, sample_frequency=sample_rate, use_energy=False,
                     window_type="hanning", num_mel_bins=num_mel_bins, dither=0.0, frame_shift=10)
    if len(features) < target_frames:
        return F.pad(features, (0, 0, 0, target_frames - len(features)))
    return features[:target_frames]


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
