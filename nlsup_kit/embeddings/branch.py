"""The modality branch: an image or audio patch embedding and its own MLP head around the sentence encoder's
shared layers, with a config so a saved branch loads back by itself (like the encoder's head)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from nlsup_kit.checkpoint import BRANCH_CONFIG_FILE, BRANCH_FILE, verify
from nlsup_kit.embeddings.audio import AudioPatchEmbedding
from nlsup_kit.embeddings.image import ImagePatchEmbedding
from nlsup_kit.encoder import MLPHead, SentenceEncoder
from nlsup_kit.errors import NlsupError, read_back


MODALITIES = ("image", "audio")
# Which MLP heads turn the [CLS] vector of an image or clip into z: "own" is the branch's head alone (the
# reference code with --mlp_only_train, its unsupervised scripts: VisualCSE/src/models.py line 351);
# "text-then-own" is SimCSE's text head, then the branch's (without --mlp_only_train, its supervised scripts:
# lines 353-354; AudioCSE/src/models.py lines 414-415), so the image loss trains the head that supervised SimCSE
# keeps at test time.
MODALITY_HEADS = ("own", "text-then-own")


@dataclass
class BranchConfig:
    """The branch's shape: enough to rebuild it without the data or the hub."""

    modality: str  # image or audio
    hidden_size: int  # the text backbone's width
    patch_size: int = 16  # square patches of the image, or of the fbank's (mel x time) image
    image_size: int = 224
    num_channels: int = 3
    mel_bins: int = 128
    frames: int = 1024
    dropout: float = 0.0
    head: str = "own"  # MODALITY_HEADS; branches saved before this setting existed had only their own

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise NlsupError(f"modality {self.modality!r} is not one of {', '.join(MODALITIES)}")
        if self.head not in MODALITY_HEADS:
            raise NlsupError(f"modality head {self.head!r} is not one of {', '.join(MODALITY_HEADS)}")


class ModalityBranch(nn.Module):
    """``z = head(layers(embedding(x))[:, 0])``: the [CLS] position, as in the reference code; with
    ``config.head == "text-then-own"``, ``z = head(text_head(...))``, the text head being the encoder's."""

    def __init__(self, config: BranchConfig, embedding: nn.Module | None = None):
        super().__init__()
        self.config = config
        if embedding is None and config.modality == "image":
            embedding = ImagePatchEmbedding(config.hidden_size, config.image_size, config.patch_size,
                                            config.num_channels, config.dropout)
        elif embedding is None:
            embedding = AudioPatchEmbedding(config.hidden_size, config.mel_bins, config.frames, config.patch_size,
                                            config.dropout)
        self.embedding = embedding
        self.head = MLPHead(config.hidden_size)

    @classmethod
    def with_vit_embeddings(cls, name: str, hidden_size: int, head: str = "own") -> ModalityBranch:
        """An image branch that starts from a pretrained ViT's patch embedding (the paper's BERT-base setup)."""
        embedding = ImagePatchEmbedding.from_vit(name, hidden_size)
        config = BranchConfig("image", hidden_size, embedding.patch_size, embedding.image_size,
                              embedding.patch_embeddings.projection.in_channels, embedding.dropout.p, head=head)
        return cls(config, embedding)

    def forward(self, encoder: SentenceEncoder, inputs: torch.Tensor) -> torch.Tensor:
        cls_vectors = encoder.encode_tokens(self.embedding(inputs), cls_only=True)
        if self.config.head == "text-then-own":
            cls_vectors = encoder.head(cls_vectors)
        return self.head(cls_vectors)

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(directory / BRANCH_FILE))
        (directory / BRANCH_CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.config), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> ModalityBranch:
        """The branch a run saved in ``directory`` (its ``best/`` or ``checkpoint/``), checked file by file."""
        from safetensors.torch import load_file

        directory = Path(directory)
        hint = "is this a VisualCSE or AudioCSE run's best/ or checkpoint/ folder?"
        verify(directory, hint)
        config = read_back(directory / BRANCH_CONFIG_FILE, lambda p: BranchConfig(**json.loads(p.read_text())),
                           "the image/audio branch's shape", hint)
        branch = cls(config)
        branch.load_state_dict(read_back(directory / BRANCH_FILE, lambda p: load_file(str(p)),
                                         "the image/audio branch's weights", hint))
        return branch.eval()


class BranchRecipe(Protocol):
    """What :func:`build_branch` reads of a recipe (nlsup_kit.recipes.Recipe, which imports this module)."""

    modality: str
    vit_embeddings: str | None
    modality_head: str

    def branch_config(self, hidden_size: int) -> BranchConfig: ...


def build_branch(recipe: BranchRecipe, hidden_size: int) -> ModalityBranch | None:
    """The recipe's modality branch for a backbone ``hidden_size`` wide (None for text-only SimCSE)."""
    if recipe.modality == "none":
        return None
    if recipe.vit_embeddings:
        return ModalityBranch.with_vit_embeddings(recipe.vit_embeddings, hidden_size, recipe.modality_head)
    return ModalityBranch(recipe.branch_config(hidden_size))
