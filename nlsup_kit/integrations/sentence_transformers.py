"""The paper's image/audio update inside anyone's sentence-transformers training.

:class:`NonLinguisticCallback` is a ``transformers.TrainerCallback``: before each optimizer step of a
``SentenceTransformerTrainer`` (once per step, not per micro-batch under gradient accumulation), one image or audio
batch goes through the model's own Transformer layers (the kit's patch embedding and branch head around the
``SentenceTransformer``'s first module), its loss times lambda, and a step of its own AdamW and cosine schedule with
clipping at 1.0: :meth:`nlsup_kit.step.AlternatingStep.modality_update`, the kit's own trainer's update. Then the
trainer takes its own step with the user's loss. The branch, its optimizer, schedule and data position are saved
beside each trainer checkpoint, so ``trainer.train(resume_from_checkpoint=...)`` continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import TrainerCallback

from nlsup_kit.embeddings import ModalityBranch, build_branch
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError
from nlsup_kit.layers import supports_fast_layers
from nlsup_kit.recipes import Recipe, apply_overrides, get_recipe
from nlsup_kit.step import AlternatingStep

STATE_FOLDER = "nonlinguistic"  # beside each trainer checkpoint: the branch and its update's state
_POOLING = {"avg": "mean", "cls_before_pooler": "cls"}  # the recipe's pooler -> sentence-transformers' Pooling mode


def shared_encoder(model) -> SentenceEncoder:
    """A SentenceEncoder over the SentenceTransformer's own first module (the same layers, not a copy), or one line
    naming what the model holds and what the callback serves."""
    from sentence_transformers.sentence_transformer.modules import Transformer

    first = model[0]
    if not isinstance(first, Transformer) or not supports_fast_layers(first.auto_model):
        found = type(first.auto_model).__name__ if isinstance(first, Transformer) else type(first).__name__
        raise NlsupError(f"the model's first module holds {found}; NonLinguisticCallback serves a sentence-transformers "
                         "Transformer module over a BERT-family encoder (BERT, RoBERTa, XLM-R, MiniLM)")
    return SentenceEncoder(first.auto_model, first.tokenizer, max_length=first.max_seq_length)


def check_pooling(model, recipe: Recipe) -> None:
    """The pooling the recipe trains must be the model's: one line naming both otherwise."""
    pooling = next((module for module in model if type(module).__name__ == "Pooling"), None)
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None or _POOLING.get(recipe.pooler) != mode:
        raise NlsupError(f"the model pools with {mode or 'no Pooling module'!r} and the recipe trains pooler={recipe.pooler}; "
                         f"the callback pairs {', '.join(f'pooler={k} with {v!r}' for k, v in _POOLING.items())}")


class NonLinguisticCallback(TrainerCallback):
    """The modality update of ``recipe`` before each of the trainer's optimizer steps. ``batches``: an iterator of
    (view 1, view 2, labels); by default the recipe's own image/audio data (``data_dir``), as the kit's trainer
    reads it. ``branch``: the patch embedding and head to start from (default: a new one, as the recipe builds it,
    seeded by the recipe's seed)."""

    def __init__(self, model, recipe: Recipe, data_dir: str | Path | None = None,
                 batches: Iterator | None = None, branch: ModalityBranch | None = None):
        if recipe.modality == "none":
            raise NlsupError(f"recipe {recipe.name} has no image or audio side (modality=none)")
        if recipe.joint_loss:
            raise NlsupError("joint_loss sums both losses in one update; the callback adds a separate update "
                             "before the trainer's (joint_loss=false)")
        check_pooling(model, recipe)
        self.recipe, self.data_dir = recipe, data_dir
        self.encoder = shared_encoder(model)
        if branch is None:  # seeded by the recipe, as the kit's trainer builds it, without touching the caller's RNG
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(recipe.seed)
                branch = build_branch(recipe, self.encoder.hidden_size)
        self.branch = branch
        self._batches, self.iteration, self._losses = batches, None, []

    @classmethod
    def from_recipe(cls, name: str, model, overrides: list[str] | tuple[str, ...] = (), **kwargs) -> NonLinguisticCallback:
        """The callback of a registered recipe (``nlsup recipes``), with ``overrides`` as ``--set`` takes them."""
        return cls(model, apply_overrides(get_recipe(name), list(overrides)), **kwargs)

    @property
    def batches(self) -> Iterator:
        if self._batches is None:
            from nlsup_kit.data import ensure_data
            from nlsup_kit.data.batches import Repeating, modality_loader

            data_dir = ensure_data([], self.data_dir)
            self._batches = Repeating(modality_loader(self.recipe, data_dir, device=self.iteration.device.type,
                                                      pipeline="per-item"))
        return self._batches

    def on_train_begin(self, args, state, control, **kwargs):
        if args.world_size > 1:
            raise NlsupError(f"NonLinguisticCallback runs in one process; this trainer has {args.world_size} (torchrun): "
                             "its modality update does not yet average gradients across processes")
        precision = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
        self.branch.to(device=args.device, dtype=next(self.encoder.parameters()).dtype)
        self.iteration = AlternatingStep(self.recipe, self.encoder, self.branch, state.max_steps, args.device,
                                         precision=precision)
        if state.global_step > 0:  # resumed: the checkpoint the trainer has just loaded
            self.load(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_step_begin(self, args, state, control, **kwargs):
        self.iteration.encoder.train()
        self.branch.train()
        loss = self.iteration.modality_update(next(self.batches))
        for parameter in self.iteration.parameters:  # the trainer's backward must not add to these gradients
            parameter.grad = None
        self._losses.append(loss.detach())

    def on_log(self, args, state, control, logs=None, **kwargs):
        """The modality loss (times lambda, as the kit logs it) beside the text loss, averaged since the last log."""
        if logs is None or not self._losses:
            return
        logs["modality_loss"] = float(torch.stack(self._losses).float().mean())
        self._losses.clear()
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1]["modality_loss"] = logs["modality_loss"]

    def on_save(self, args, state, control, **kwargs):
        self.save(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def save(self, checkpoint: str | Path) -> None:
        """The branch, the modality optimizer and schedule, and the data position, in ``checkpoint``/nonlinguistic."""
        folder = Path(checkpoint) / STATE_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.branch.save(folder)
        state = {"modality_optimizer": self.iteration.modality_optimizer.state_dict(),
                 "modality_schedule": self.iteration.modality_schedule.state_dict(),
                 "data": self._batches.state() if hasattr(self._batches, "state") else None}
        torch.save(state, folder / "update_state.pt")

    def load(self, checkpoint: str | Path) -> None:
        folder = Path(checkpoint) / STATE_FOLDER
        if not (folder / "update_state.pt").is_file():
            raise NlsupError(f"{checkpoint}: no {STATE_FOLDER}/ folder: this checkpoint was saved without "
                             "NonLinguisticCallback, so its image/audio side cannot be resumed")
        self.branch.load_state_dict(ModalityBranch.load(folder).state_dict())
        state = torch.load(folder / "update_state.pt", weights_only=False)
        self.iteration.modality_optimizer.load_state_dict(state["modality_optimizer"])
        self.iteration.modality_schedule.load_state_dict(state["modality_schedule"])
        if state["data"] is not None:
            self.batches.restore(state["data"])
