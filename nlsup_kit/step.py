"""The training iteration of the paper's reference code, on one screen.

One iteration, as the reference code's training loop runs it (github.com/yiren-jian/NonLing-CSE,
VisualCSE/src/trainers.py, ``CLTrainer.train`` between "BEGIN CHANGES" and the text ``training_step``; the same
in AudioCSE/src/trainers.py): an image/audio batch through the shared layers, its
loss times lambda, a step of the modality optimizer (its own AdamW, learning rate and cosine schedule,
clip 1.0); then a text batch, the SimCSE loss, a step of the text optimizer (AdamW, linear decay, clip 1.0).
Neither has warmup or weight decay; AdamW is transformers 4.5.0's arithmetic by default
(:mod:`nlsup_kit.optimizers`, ``optimizer=``). ``joint_loss`` instead sums text loss and lambda x modality loss
in one update. Without a modality branch it is SimCSE's own step. bf16 autocast on a recent GPU (no loss scaling
needed), fp16 with loss scaling on an older one (the reference code's own precision: ``--fp16`` in
VisualCSE/run_unsup_example.sh, a ``torch.cuda.amp.GradScaler`` for the image step), fp32 on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nlsup_kit import distributed
from nlsup_kit.device import autocast_dtype, autocast_for, should_compile
from nlsup_kit.embeddings import ModalityBranch
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError
from nlsup_kit.losses import InfoNCELoss, SupervisedSimCSELoss, modality_loss
from nlsup_kit.optimizers import build_optimizer, optimizer_of_state
from nlsup_kit.recipes import Recipe
from nlsup_kit.update_graph import UpdateGraph

Batch = dict[str, torch.Tensor]  # input_ids and attention_mask, views stacked: [anchors; positives(; negatives)]
ModalityBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # view 1, view 2, labels


def linear_decay(step: int, total: int) -> float:
    return max(0.0, (total - step) / total)


def cosine_decay(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class AlternatingStep:
    """The encoder, the modality branch (or None), both losses, both optimizers and their schedules, set up
    from a recipe for a run of ``total_steps``; :meth:`step` is one iteration.

    The modality optimizer updates every parameter (the branch and the shared encoder), as in the reference
    code; the text optimizer updates the encoder (and the branch too under ``joint_loss``).

    ``update_graphs`` (experimental, compiled runs on one GPU in bf16): each whole update one CUDA graph
    (:mod:`nlsup_kit.update_graph`) instead of ``torch.compile``'s graphs of forward and backward. Its capture
    failed on an H200 (the losses then had data-dependent shapes: benchmarks/RESULTS.md) and has not run on a
    GPU since, so nothing turns it on by default.
    """

    def __init__(self, recipe: Recipe, encoder: SentenceEncoder, branch: ModalityBranch | None, total_steps: int,
                 device: torch.device = torch.device("cpu"), workers: distributed.Workers = distributed.Workers(),
                 precision: torch.dtype | None | str = "auto", update_graphs: bool = False):
        self.recipe, self.encoder, self.branch = recipe, encoder, branch
        self.device, self.workers = device, workers
        self.precision = autocast_dtype(device) if precision == "auto" else precision
        # fp16 gradients underflow without scaling; a step whose scaled gradients overflow is skipped
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == torch.float16)
        self.compiled = should_compile(recipe.compile, device)
        capturable = self.compiled and not self.scaler.is_enabled() and workers.world_size == 1
        if update_graphs and device.type == "cuda" and not capturable:  # a CPU captures nothing: always fine
            raise NlsupError("whole-update CUDA graphs need a compiled run in one process without loss scaling "
                             "(fixed shapes; a graph holds no host sync and no collective)")
        self.update_graphs = update_graphs
        if self.compiled and encoder.fast_path != "off":
            encoder.fast_path = "fixed"  # compiled steps need fixed shapes
        self.text_views = 3 if recipe.supervised else 2
        self.text_loss = (SupervisedSimCSELoss(recipe.temperature, recipe.hard_negative_weight)
                          if recipe.supervised else InfoNCELoss(recipe.temperature))
        self.modality_loss = (modality_loss(recipe.modality_loss, recipe.modality_temperature)
                              if branch is not None else None)
        self.parameters = list(encoder.parameters()) + (list(branch.parameters()) if branch is not None else [])
        fused = device.type in ("cuda", "cpu")  # one kernel per update: 6x faster than foreach on a CPU
        self.text_parameters = self.parameters if recipe.joint_loss else list(encoder.parameters())
        self.text_optimizer = self._adamw(self.text_parameters, recipe.learning_rate, fused)
        self.text_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.text_optimizer, lambda s: linear_decay(s, total_steps))
        self.modality_optimizer = self.modality_schedule = None
        if branch is not None and not recipe.joint_loss:
            self.modality_optimizer = self._adamw(self.parameters, recipe.modality_learning_rate, fused)
            self.modality_schedule = torch.optim.lr_scheduler.LambdaLR(
                self.modality_optimizer, lambda s: cosine_decay(s, total_steps))
        self.embed_text = self._compiled(self._embed_text)
        self.embed_modality = self._compiled(self._embed_modality) if branch is not None else None
        self.graphs: dict[str, UpdateGraph] = {}
        # one stream for warming up and capturing both updates' graphs (see UpdateGraph)
        self.capture_stream = torch.cuda.Stream(device) if self.update_graphs and device.type == "cuda" else None

    def step(self, text_batch: Batch, modality_batch: ModalityBatch | None = None) -> dict[str, torch.Tensor]:
        """One iteration; returns the losses as tensors (read them only when logging: no host sync)."""
        self.begin_iteration()
        self.encoder.train()
        losses = {}
        if self.branch is not None:
            self.branch.train()
        if self.branch is not None and not self.recipe.joint_loss:
            losses["modality_loss"] = self.modality_update(modality_batch)
        losses.update(self.text_update(text_batch, modality_batch if self.recipe.joint_loss else None))
        return {k: v.detach().clone() for k, v in losses.items()}  # a copy survives the next graph replay

    def modality_update(self, batch: ModalityBatch) -> torch.Tensor:
        """The image/audio update of every parameter; returns its loss."""
        loss = self._run("modality", self._modality_update, *batch)
        self.modality_schedule.step()
        return loss

    def text_update(self, batch: Batch, joint_batch: ModalityBatch | None = None) -> dict[str, torch.Tensor]:
        """The text update (with ``joint_batch``, of text loss + modality loss); returns its losses."""
        inputs = (batch["input_ids"], batch["attention_mask"]) + (tuple(joint_batch) if joint_batch else ())
        losses = self._run("text", self._text_update, *inputs)
        self.text_schedule.step()
        return losses

    def begin_iteration(self) -> None:
        """Tell torch.compile's CUDA graphs a new iteration starts (their previous outputs may be overwritten)."""
        if self.compiled and self.device.type == "cuda" and not self.update_graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def text_loss_of(self, batch: Batch) -> torch.Tensor:
        """The text loss of a batch on the device."""
        z = self.embed_text(batch["input_ids"], batch["attention_mask"])
        return self.text_loss(*self.global_views(z, self.text_views))

    def modality_loss_of(self, batch: ModalityBatch) -> torch.Tensor:
        """lambda x the modality loss of two augmented views of each example (on the device)."""
        view1, view2, labels = batch
        z1, z2 = self.global_views(self.embed_modality(torch.cat([view1, view2])), 2)
        if self.recipe.gather_negatives:
            labels = distributed.gather(labels)
        return self.recipe.modality_loss_weight * self.modality_loss(z1, z2, labels)

    def _modality_update(self, view1, view2, labels) -> torch.Tensor:
        loss = self.modality_loss_of((view1, view2, labels))
        self._apply(loss, self.modality_optimizer, self.parameters)
        return loss

    def _text_update(self, input_ids, attention_mask, *joint_batch) -> dict[str, torch.Tensor]:
        losses = {"text_loss": self.text_loss_of({"input_ids": input_ids, "attention_mask": attention_mask})}
        if joint_batch:
            losses["modality_loss"] = self.modality_loss_of(joint_batch)
        self._apply(sum(losses.values()), self.text_optimizer, self.text_parameters)
        return losses

    def _run(self, name: str, update, *inputs: torch.Tensor):
        """``update`` on ``inputs`` moved to the device: through its CUDA graph when graphing, else directly.
        Each (pinned) input is copied on its own and joined on the device: a join on the host makes a pageable
        tensor, whose copy blocks the host (6 ms a step for 2 x 48 images at 224 x 224 on an H100)."""
        if not self.update_graphs:
            return update(*(t.to(self.device, non_blocking=True) for t in inputs))
        if name not in self.graphs:
            self.graphs[name] = UpdateGraph(update, self.device, self.capture_stream)
        return self.graphs[name](*inputs)

    def _apply(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: list) -> None:
        """Backward, average across processes, clip at 1.0 and step, over the parameters ``optimizer`` updates
        (the text update's norm must not count the branch's gradients left by the modality update)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        distributed.average_gradients(parameters)
        self.scaler.unscale_(optimizer)  # clip the true gradients
        nn.utils.clip_grad_norm_(parameters, 1.0)
        self.scaler.step(optimizer)
        self.scaler.update()

    def _adamw(self, parameters: list, learning_rate: float, fused: bool) -> torch.optim.AdamW:
        """The recipe's AdamW; graphed, its learning rate is a device tensor that the schedule refills in place,
        so a replay reads the current rate."""
        if self.update_graphs:
            return build_optimizer(self.recipe.optimizer, parameters, torch.tensor(learning_rate, device=self.device),
                                   fused, capturable=True)
        return build_optimizer(self.recipe.optimizer, parameters, learning_rate, fused)

    def global_views(self, z: torch.Tensor, views: int) -> list[torch.Tensor]:
        """Split local embeddings into views and gather each across processes (the global batch's negatives)."""
        chunks = z.chunk(views)
        if not self.recipe.gather_negatives:
            return list(chunks)
        return [distributed.gather_with_grad(chunk) for chunk in chunks]

    def state_dict(self) -> dict:
        """Optimizers and schedules: with the weights, what the next step depends on besides random state."""
        state = {"text_optimizer": self.text_optimizer.state_dict(),
                 "text_schedule": self.text_schedule.state_dict(), "loss_scale": self.scaler.state_dict()}
        if self.modality_optimizer is not None:
            state["modality_optimizer"] = self.modality_optimizer.state_dict()
            state["modality_schedule"] = self.modality_schedule.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        saved = optimizer_of_state(state["text_optimizer"])
        if saved != self.recipe.optimizer:
            raise NlsupError(f"the checkpoint's optimizer state was written by {saved} and this run steps with "
                             f"{self.recipe.optimizer}: resume with --set optimizer={saved}")
        self.graphs.clear()  # loading replaces the optimizer state tensors a captured graph would update
        self.text_optimizer.load_state_dict(state["text_optimizer"])
        self.text_schedule.load_state_dict(state["text_schedule"])
        if state.get("loss_scale"):
            self.scaler.load_state_dict(state["loss_scale"])
        if self.modality_optimizer is not None:
            self.modality_optimizer.load_state_dict(state["modality_optimizer"])
            self.modality_schedule.load_state_dict(state["modality_schedule"])
        optimizers = [o for o in (self.text_optimizer, self.modality_optimizer) if o is not None]
        for group in (group for optimizer in optimizers for group in optimizer.param_groups):
            # a checkpoint of the other kind of run holds a float rate, or a tensor read onto the CPU
            rate = float(group["lr"])
            group["lr"] = torch.tensor(rate, device=self.device) if self.update_graphs else rate

    def _embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device, self.precision):
            return self.encoder({"input_ids": input_ids, "attention_mask": attention_mask}, self.recipe.pooler)

    def _embed_modality(self, inputs: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device, self.precision):
            return self.branch(self.encoder, inputs)

    def _compiled(self, forward):
        """``torch.compile`` of a fixed-shape forward when the recipe asks (or by default on a recent GPU): CUDA
        graphs on a GPU (the step is launch-bound there), inductor's fused kernels on a CPU."""
        if not self.compiled:
            return forward
        graphs = self.device.type == "cuda" and not self.update_graphs  # else the whole update is one graph
        return torch.compile(forward, mode="reduce-overhead" if graphs else None, dynamic=False)
