"""Modality embeddings: turn images or audio into token sequences for the shared text Transformer."""

from nlsup_kit.embeddings.audio import AudioPatchEmbedding
from nlsup_kit.embeddings.branch import BranchConfig, ModalityBranch, build_branch
from nlsup_kit.embeddings.image import ImagePatchEmbedding

__all__ = ["AudioPatchEmbedding", "BranchConfig", "ImagePatchEmbedding", "ModalityBranch", "build_branch"]
