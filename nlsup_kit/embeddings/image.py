"""Images as token sequences for the shared Transformer: ViT's patch embedding.

Parameter names follow Hugging Face's ``ViTEmbeddings`` so a pretrained ViT's embedding weights load
unchanged (the paper uses ``google/vit-base-patch16-224-in21k`` with BERT-base).
"""

from __future__ import annotations

import torch
from torch import nn

from nlsup_kit.errors import NlsupError


class PatchProjection(nn.Module):
    def __init__(self, num_channels: int, hidden_size: int, patch_size: int):
        super().__init__()
        self.projection = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(pixels).flatten(2).transpose(1, 2)


class ImagePatchEmbedding(nn.Module):
    """(B, C, H, W) pixels -> (B, 1 + (H/p)(W/p), hidden) tokens: [CLS] + patches, plus position embeddings."""

    def __init__(self, hidden_size: int, image_size: int = 224, patch_size: int = 16, num_channels: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise NlsupError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden_size) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, num_patches + 1, hidden_size) * 0.02)
        self.patch_embeddings = PatchProjection(num_channels, hidden_size, patch_size)
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_vit(cls, name: str, hidden_size: int) -> ImagePatchEmbedding:
        """Take a pretrained HF ViT's embedding module (trained further, not frozen, as in the paper)."""
        from transformers import ViTModel

        from nlsup_kit.models import load_pretrained

        vit = load_pretrained(ViTModel, name, "--set vit_embeddings=none starts the image side from a random patch "
                              "embedding, as the offline recipes do", add_pooling_layer=False)
        config = vit.config
        if config.hidden_size != hidden_size:
            raise NlsupError(
                f"ViT {name!r} has hidden size {config.hidden_size} but the text backbone has {hidden_size}; "
                "pick a ViT of the same width or leave vit_embeddings empty for a random patch embedding"
            )
        embedding = cls(hidden_size, config.image_size, config.patch_size, config.num_channels,
                        config.hidden_dropout_prob)
        state = {k: v for k, v in vit.embeddings.state_dict().items() if not k.startswith("mask_token")}
        embedding.load_state_dict(state)
        return embedding

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(pixels)
        cls = self.cls_token.expand(len(patches), -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.position_embeddings
        return self.dropout(tokens)
