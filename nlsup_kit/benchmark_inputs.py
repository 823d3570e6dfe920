"""What a benchmark times on: the recipe's encoder (or its architecture with random weights, for a machine
without the hub), the first text batches a run trains on, and random image or audio batches of the recipe's
shapes (speed does not depend on pixel values)."""

from __future__ import annotations

import torch

from nlsup_kit.data.batches import TextBatches
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError
from nlsup_kit.models import OFFLINE_MODEL, load_pretrained, random_backbone
from nlsup_kit.recipes import Recipe


def build_encoder(recipe: Recipe, random_init: bool, tokenizer: str | None) -> SentenceEncoder:
    """The recipe's encoder, or its architecture with random weights and ``tokenizer``'s vocabulary."""
    if not random_init:
        return SentenceEncoder.from_pretrained(recipe.model, recipe.max_length)
    from transformers import AutoTokenizer

    backbone = random_backbone(recipe.model, recipe.seed)
    vocab = load_pretrained(AutoTokenizer, tokenizer or OFFLINE_MODEL)
    if len(vocab) > backbone.config.vocab_size:
        raise NlsupError(f"tokenizer {tokenizer or OFFLINE_MODEL} has {len(vocab)} tokens, more than "
                         f"{recipe.model}'s {backbone.config.vocab_size}")
    return SentenceEncoder(backbone, vocab, max_length=recipe.max_length).train()



def modality_inputs(recipe: Recipe, count: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Random batches of the recipe's image or audio shape, labels from 10 classes (pinned for a GPU)."""
    size = recipe.modality_batch_size
    shape = ((3, recipe.image_size, recipe.image_size) if recipe.modality == "image"
             else (recipe.audio_frames, recipe.audio_mel_bins))
    generator = torch.Generator().manual_seed(recipe.seed)
    batches = []
    for _ in range(count):
        views = torch.randn(2, size, *shape, generator=generator)
        labels = torch.randint(0, 10, (size,), generator=generator)
        batch = (views[0], views[1], labels)
        batches.append(tuple(t.pin_memory() for t in batch) if torch.cuda.is_available() else batch)
    return batches



def first_batches(recipe: Recipe, encoder: SentenceEncoder, examples: list, count: int) -> list[dict]:
    """The first ``count`` text batches a run of ``recipe`` trains on."""
    text = TextBatches(encoder.tokenizer, examples, recipe.batch_size, recipe.max_length, recipe.seed,
                       static_shapes=recipe.compile, pin_memory=torch.cuda.is_available())
    return [batch for batch, _ in zip(text.epoch(), range(count))]

