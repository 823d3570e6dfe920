"""The shared encoder: a Hugging Face text Transformer, a pooler and SimCSE's MLP head.

Text enters through the backbone's word embeddings; image and audio tokens skip them and enter the same
Transformer layers through :meth:`SentenceEncoder.encode_tokens`, as in the reference code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from nlsup_kit.checkpoint import HEAD_FILE, MANIFEST_FILE, RECIPE_FILE, verify
from nlsup_kit.errors import NlsupError, read_back
from nlsup_kit.device import autocast_for, pick_device
from nlsup_kit.layers import run_layers, supports_fast_layers
from nlsup_kit.models import load_pretrained, resolve_model
from nlsup_kit.progress import progress_bar

# avg_first_last is SimCSE's current one (first Transformer layer and last); avg_embeddings_last averages the static
# word embeddings and the last layer: what SimCSE's paper reported as "first-last avg." (princeton-nlp/SimCSE
# README.md line 201) and what the reference code computes under --pooler avg_first_last
# (yiren-jian/NonLing-CSE VisualCSE/evaluation.py line 128)
POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2", "avg_embeddings_last")
ALL_LAYER_POOLERS = ("avg_first_last", "avg_top2", "avg_embeddings_last")
FAST_PATHS = ("auto", "packed", "fixed", "off")

CHECKPOINT_HINT = "the checkpoint is damaged: use the run's other folder (best/ or checkpoint/), or train again"


def check_checkpoint_files(folder: Path) -> None:
    """The files a kit checkpoint's encoder is read from, each opened once: one line naming a broken one."""
    import json

    from safetensors import safe_open

    read_back(folder / "config.json", lambda p: json.loads(p.read_text()), "the model's configuration", CHECKPOINT_HINT)
    read_back(folder / "model.safetensors", lambda p: safe_open(str(p), "pt").keys(), "the model's weights",
              CHECKPOINT_HINT)
    read_back(folder / "tokenizer.json", lambda p: json.loads(p.read_text()), "the tokenizer", CHECKPOINT_HINT)


def transformer_layers(backbone: nn.Module) -> nn.Module:
    """The layer stack that takes ``hidden_states`` directly (BERT/RoBERTa/XLM-R call it ``encoder``)."""
    layers = getattr(backbone, "encoder", None)
    if layers is None:
        raise NlsupError(
            f"{type(backbone).__name__} has no `.encoder` layer stack; non-linguistic inputs need a "
            "BERT- or RoBERTa-style backbone"
        )
    return layers


def position_limit(backbone: nn.Module) -> int:
    """The longest input the backbone's position embeddings take. RoBERTa and XLM-R number positions from their
    padding index + 1, so two of their 514 positions are never a token's: 512 tokens, not 514."""
    positions = backbone.config.max_position_embeddings
    padding_index = getattr(getattr(backbone, "embeddings", None), "padding_idx", None)
    return positions - (padding_index + 1 if padding_index is not None else 0)


class MLPHead(nn.Module):
    """SimCSE's ``MLPLayer``: Linear + Tanh on the pooled vector."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(features))


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def pool(pooling: str, hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
    """SimCSE's poolers before any head; ``hidden_states[0]`` is the embedding output."""
    last = hidden_states[-1]
    if pooling in ("cls", "cls_before_pooler"):
        return last[:, 0]
    if pooling == "avg":
        return masked_mean(last, attention_mask)
    if pooling == "avg_first_last":
        return masked_mean((hidden_states[1] + last) / 2.0, attention_mask)
    if pooling == "avg_embeddings_last":
        return masked_mean((hidden_states[0] + last) / 2.0, attention_mask)
    if pooling == "avg_top2":
        return masked_mean((hidden_states[-2] + last) / 2.0, attention_mask)
    raise NlsupError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLERS)}")


class SentenceEncoder(nn.Module):
    """Backbone + pooler + MLP head; ``pooling='cls'`` applies the head, every other pooler does not."""

    def __init__(self, backbone: nn.Module, tokenizer, head: MLPHead | None = None, max_length: int = 32):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.head = head if head is not None else MLPHead(backbone.config.hidden_size)
        self.max_length = max_length
        self._fast_path = "auto" if supports_fast_layers(backbone) else "off"  # off: HF's forward

    @property
    def fast_path(self) -> str:
        """How text runs through the layers (:mod:`nlsup_kit.layers`): ``packed`` (real tokens only: a CPU win,
        but data-dependent shapes and a host sync), ``fixed`` (padded, fixed shapes: what compiled CUDA-graph
        steps need), ``auto`` (packed on a CPU, fixed elsewhere), or ``off`` (the backbone's own forward)."""
        return self._fast_path

    @fast_path.setter
    def fast_path(self, mode: str) -> None:
        if mode not in FAST_PATHS:
            raise NlsupError(f"fast_path {mode!r} is not one of {', '.join(FAST_PATHS)}")
        if mode != "off" and not supports_fast_layers(self.backbone):
            raise NlsupError(f"{type(self.backbone).__name__} has no BERT-style layers for the fast path; use 'off'")
        self._fast_path = mode

    @classmethod
    def from_pretrained(cls, name: str, max_length: int = 32) -> SentenceEncoder:
        """Load a backbone (registry name, hub id, HF folder or a kit checkpoint).

        The head comes from the folder's ``head.safetensors`` (kit checkpoints), else from the backbone's own
        pooler (Linear+Tanh), which is where SimCSE's ``simcse_to_huggingface`` stores its MLP: so ``cls``
        matches SimCSE's evaluation of public checkpoints.
        """
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = Path(resolve_model(name))
        kit_checkpoint = any((folder / name).exists() for name in (HEAD_FILE, RECIPE_FILE, MANIFEST_FILE))
        if kit_checkpoint:  # check what the kit wrote before HF reads it
            verify(folder, CHECKPOINT_HINT)
            check_checkpoint_files(folder)
        tokenizer = load_pretrained(AutoTokenizer, name)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a kit checkpoint has no pooler weights; that is expected
        hf_logging.disable_progress_bar()
        try:
            backbone = load_pretrained(AutoModel, name, attn_implementation="sdpa")
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        head = MLPHead(backbone.config.hidden_size)
        pretrained_pooler = getattr(getattr(backbone, "pooler", None), "dense", None)
        if kit_checkpoint:
            head.load_state_dict(read_back(folder / HEAD_FILE, lambda p: load_file(str(p)), "the MLP head's weights",
                                           CHECKPOINT_HINT))
        elif isinstance(pretrained_pooler, nn.Linear):
            head.dense.load_state_dict(pretrained_pooler.state_dict())
        if hasattr(backbone, "pooler"):
            backbone.pooler = None  # never computed: the head above replaces it
        return cls(backbone, tokenizer, head, max_length).eval()  # inference mode, as HF models load

    def save(self, directory: str | Path) -> Path:
        """A Hugging Face folder (backbone, tokenizer) plus ``head.safetensors``; loads with from_pretrained."""
        from safetensors.torch import save_file

        from transformers.utils import logging as hf_logging

        directory = Path(directory)
        hf_logging.disable_progress_bar()
        try:
            self.backbone.save_pretrained(directory)
        finally:
            hf_logging.enable_progress_bar()
        self.tokenizer.save_pretrained(directory)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()},
                  str(directory / HEAD_FILE))
        return directory

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def max_input_length(self) -> int:
        """The longest input the backbone takes: its positions' limit, or the tokenizer's where that is lower
        (tokenizers report a huge number when they do not know)."""
        return min(self.tokenizer.model_max_length, position_limit(self.backbone))

    def reset_head(self) -> None:
        """A freshly initialised head, as SimCSE starts training (BERT's init: normal(0, 0.02), zero bias)."""
        nn.init.normal_(self.head.dense.weight, std=getattr(self.backbone.config, "initializer_range", 0.02))
        nn.init.zeros_(self.head.dense.bias)

    def tokenize(self, sentences: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            list(sentences), padding=True, truncation=True, return_tensors="pt",
            max_length=max_length or self.max_length,
        )

    def forward(self, features: dict[str, torch.Tensor], pooling: str = "cls") -> torch.Tensor:
        needs_all_layers = pooling in ALL_LAYER_POOLERS
        if self.fast_path != "off" and pooling in POOLERS and not needs_all_layers:
            input_ids, mask = features["input_ids"], features["attention_mask"]
            embedded = self.backbone.embeddings(input_ids=input_ids, token_type_ids=features.get("token_type_ids"))
            cls_only = pooling in ("cls", "cls_before_pooler")
            packed = self.fast_path == "packed" or (self.fast_path == "auto" and input_ids.device.type == "cpu")
            out = run_layers(self.backbone.encoder.layer, embedded, mask, cls_only, packed)
            pooled = out if cls_only else masked_mean(out, mask)
        else:
            out = self.backbone(**features, output_hidden_states=needs_all_layers, return_dict=True)
            states = out.hidden_states if needs_all_layers else (out.last_hidden_state,)
            pooled = pool(pooling, states, features["attention_mask"])
        return self.head(pooled) if pooling == "cls" else pooled

    def encode_tokens(self, tokens: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Run already-embedded tokens (image or audio patches) through the shared layers, no mask;
        ``cls_only`` returns just the [CLS] vectors, skipping most of the last layer."""
        if self.fast_path != "off":
            return run_layers(self.backbone.encoder.layer, tokens, None, cls_only)
        out = transformer_layers(self.backbone)(tokens).last_hidden_state
        return out[:, 0] if cls_only else out

    @torch.inference_mode()
    def encode(
        self,
        sentences: Sequence[str],
        pooling: str = "cls_before_pooler",
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        progress: bool | None = None,
    ) -> torch.Tensor:
        """Embed sentences for evaluation: each distinct sentence once, batched by length, no padding waste.

        ``max_length`` defaults to the backbone's limit (SentEval/SimCSE do not truncate at evaluation).
        ``batch_size`` defaults to 32 on CPU (measured fastest on 2 cores: less activation traffic) and 256 on
        CUDA. Returns float32 CPU embeddings in the order of ``sentences``.
        """
        device = pick_device(str(device) if device is not None else None)
        batch_size = batch_size or (256 if device.type == "cuda" else 32)
        was_training = self.training
        self.eval().to(device)
        distinct = list(dict.fromkeys(sentences))
        limit = max_length or self.max_input_length
        ids = self.tokenizer(distinct, truncation=True, max_length=limit, add_special_tokens=True)["input_ids"]
        order = sorted(range(len(distinct)), key=lambda i: len(ids[i]))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = torch.empty(len(distinct), self.hidden_size)
        batches = range(0, len(order), batch_size)
        show = progress if progress is not None else (None if len(order) > 4 * batch_size else False)
        for start in progress_bar(batches, show=show, desc="encoding", unit="batch", leave=False):
            chunk = order[start:start + batch_size]
            width = len(ids[chunk[-1]])
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, index in enumerate(chunk):
                input_ids[row, : len(ids[index])] = torch.tensor(ids[index])
                mask[row, : len(ids[index])] = 1
            features = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            with autocast_for(device):
                out[chunk] = self(features, pooling).float().cpu()
        self.train(was_training)
        position = {sentence: i for i, sentence in enumerate(distinct)}
        return out[[position[s] for s in sentences]]
