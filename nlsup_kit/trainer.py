"""The paper's training loop.

One iteration = a non-linguistic update (its own AdamW, learning rate and cosine schedule, loss x lambda,
clip 1.0) followed by the ordinary SimCSE text update (AdamW, linear decay, clip 1.0), both without warmup
or weight decay. ``joint_loss`` instead sums text loss and lambda x non-linguistic loss in one update.
Differences from the reference code: bf16 autocast instead of fp16 + grad scaler (bf16 needs no scaling),
fp32 on CPU; STS-B dev via the kit's scorer instead of SentEval's fast mode.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from nlsup_kit import distributed

from nlsup_kit.data.sources import ensure_data, text_data_needs
from nlsup_kit.data.text import load_text_data
from nlsup_kit.embeddings import ModalityBranch
from nlsup_kit.checkpoint import (BEST_DIR, BRANCH_FILE, CHECKPOINT_DIR, METRICS_FILE, RECIPE_FILE, RESULT_FILE,
                                  STATE_FILE, TrainResult, describe_run, finished_run, read_metrics, read_result,
                                  recover, save_atomically, verify)
from nlsup_kit.device import autocast_for, pick_device
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError, count, read_back
from nlsup_kit.evaluation import stsb_dev_spearman
from nlsup_kit.progress import progress_bar
from nlsup_kit.losses import InfoNCELoss, SupervisedSimCSELoss, modality_loss
from nlsup_kit.recipes import RESUMABLE_SETTINGS, Recipe


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TextBatches:
    """Pre-tokenised text in one tensor, shuffled each epoch by a seeded generator.

    Every process draws the same global batches and keeps its own slice of rows. Each batch is trimmed to
    its longest row, or padded to ``max_length`` with ``static_shapes`` (what a
    compiled CUDA-graph step needs); ``pin_memory`` lets the copy to the GPU overlap the previous step.
    """

    def __init__(self, encoder: SentenceEncoder, examples: list, batch_size: int, max_length: int, seed: int,
                 static_shapes: bool = False, pin_memory: bool = False,
                 workers: distributed.Workers = distributed.Workers()):
        self.columns = 3 if isinstance(examples[0], tuple) else 1
        flat = [s for ex in examples for s in (ex if self.columns == 3 else (ex,))]
        ids = encoder.tokenizer(flat, truncation=True, max_length=max_length + 1)["input_ids"]
        long_rows = [r for r, row in enumerate(ids) if len(row) > max_length]
        self.truncated = len(long_rows)  # counted, then cut exactly as truncation at max_length cuts
        if long_rows:
            cut = encoder.tokenizer([flat[r] for r in long_rows], truncation=True, max_length=max_length)
            for r, row in zip(long_rows, cut["input_ids"]):
                ids[r] = row
        pad_id = encoder.tokenizer.pad_token_id if encoder.tokenizer.pad_token_id is not None else 0
        self.lengths = torch.tensor([len(row) for row in ids]).view(-1, self.columns)
        self.ids = torch.full((len(ids), max_length), pad_id, dtype=torch.long)
        for r, row in enumerate(ids):
            self.ids[r, : len(row)] = torch.tensor(row)
        self.ids = self.ids.view(-1, self.columns, max_length)
        self.batch_size, self.static_shapes, self.pin_memory = batch_size, static_shapes, pin_memory
        self.local = workers.local_slice(batch_size, "batch_size")  # this process's rows of each batch
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Batches per epoch; a last batch of one example is dropped (no negative to contrast with)."""
        full, rest = divmod(len(self.ids), self.batch_size)
        return full + (rest >= 2)

    def epoch(self, skip: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """One shuffled pass; ``skip`` batches are passed over (resuming mid-epoch from the same generator state)."""
        order = torch.randperm(len(self.ids), generator=self.generator)
        for start in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size):
            chunk = order[start:start + self.batch_size][self.local]
            # views stacked column-major: [all anchors; all positives (or the same again); all negatives]
            ids, lengths = self.ids[chunk].transpose(0, 1), self.lengths[chunk].T
            if self.columns == 1:
                ids, lengths = ids.expand(2, -1, -1), lengths.expand(2, -1)
            ids, lengths = ids.reshape(-1, ids.shape[-1]), lengths.reshape(-1)
            width = ids.shape[1] if self.static_shapes else int(lengths.max())
            batch = {"input_ids": ids[:, :width].contiguous(),
                     "attention_mask": (torch.arange(width) < lengths[:, None]).long()}
            yield {k: v.pin_memory() for k, v in batch.items()} if self.pin_memory else batch


def build_branch(recipe: Recipe, hidden_size: int) -> ModalityBranch | None:
    if recipe.modality == "none":
        return None
    if recipe.vit_embeddings:
        return ModalityBranch.with_vit_embeddings(recipe.vit_embeddings, hidden_size)
    return ModalityBranch(recipe.branch_config(hidden_size))


class LocalBatches(BatchSampler):
    """The global batches of one seeded shuffle, cut to this process's slice (all of it in one process)."""

    def __init__(self, sampler, batch_size: int, workers: distributed.Workers):
        super().__init__(sampler, batch_size, drop_last=True)
        self.local = workers.local_slice(batch_size, "modality_batch_size")

    def __iter__(self):
        for batch in super().__iter__():
            yield batch[self.local]


def modality_loader(recipe: Recipe, data_dir: Path, workers: distributed.Workers = distributed.Workers(),
                    pin_memory: bool = False) -> DataLoader:
    if recipe.modality == "image":
        from nlsup_kit.data.images import load_images

        dataset = load_images(recipe.modality_data, data_dir, recipe.image_size)
    else:
        from nlsup_kit.data.audio import AudioAugment, load_audio

        augment = AudioAugment(recipe.spec_freq_mask, recipe.spec_time_mask, recipe.audio_mixup)
        dataset = load_audio(recipe.modality_data, data_dir, recipe.audio_mel_bins, recipe.audio_frames,
                             augment, recipe.seed)
    if len(dataset) < recipe.modality_batch_size:
        raise NlsupError(f"{recipe.modality_data}: {count(len(dataset), 'example')}, fewer than "
                         f"modality_batch_size={recipe.modality_batch_size}")
    labels = dataset.labels
    if recipe.modality_loss != "simclr" and labels is not None and len(set(labels)) < 2:
        raise NlsupError(f"{recipe.modality_data}: {count(len(set(labels)), 'class')}; modality_loss="
                         f"{recipe.modality_loss} clusters by class and needs at least 2 (or use modality_loss=simclr)")
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(recipe.seed))
    return DataLoader(dataset, batch_sampler=LocalBatches(sampler, recipe.modality_batch_size, workers),
                      num_workers=recipe.num_workers, persistent_workers=recipe.num_workers > 0,
                      pin_memory=pin_memory)


class Repeating:
    """Endless batches from a seeded loader, with a position a checkpoint can store and restore exactly:
    the sampler's generator state at the start of the current pass, batches taken since, and the dataset's
    own random state (audio mixup)."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.generator = loader.batch_sampler.sampler.generator
        self.iterator, self.pass_state, self.taken = None, None, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.iterator is None:
            self.pass_state, self.taken = self.generator.get_state(), 0
            self.iterator = iter(self.loader)
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.iterator = None
            return next(self)
        except NlsupError as err:  # from a loader worker it arrives inside its traceback: keep the one line
            raise NlsupError(str(err).strip().splitlines()[-1].removeprefix("nlsup_kit.errors.NlsupError: ")) \
                from None
        self.taken += 1
        return batch

    def state(self) -> dict:
        rng = getattr(self.loader.dataset, "rng", None)
        return {"pass_state": self.pass_state, "taken": self.taken,
                "dataset_rng": rng.getstate() if rng is not None else None}

    def restore(self, state: dict) -> None:
        """Replay to the stored position; call before restoring the global RNG (replay draws from it)."""
        if state["pass_state"] is not None:
            self.generator.set_state(state["pass_state"])
            self.iterator, self.pass_state, self.taken = iter(self.loader), state["pass_state"], 0
            for _ in range(state["taken"]):
                next(self)
        if state["dataset_rng"] is not None:
            self.loader.dataset.rng.setstate(state["dataset_rng"])


def linear_decay(step: int, total: int) -> float:
    return max(0.0, (total - step) / total)


def cosine_decay(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class Trainer:
    """Runs a :class:`Recipe`: builds the model and data, trains, evaluates, keeps the best checkpoint.

    Under ``torchrun`` every process trains on its slice of each global batch (see :mod:`nlsup_kit.distributed`);
    only rank 0 writes files.
    """

    def __init__(self, recipe: Recipe, output_dir: str | Path, data_dir: str | Path | None = None,
                 progress: bool | None = None, encoder: SentenceEncoder | None = None):
        self.recipe = recipe.validate()
        self.output_dir = Path(output_dir)
        self.data_dir = ensure_data(text_data_needs(recipe.text_data), data_dir, progress=progress)
        self.progress = progress
        self.device = pick_device(recipe.device)
        self.workers = distributed.init_from_env(self.device.type)
        if self.device.type == "cuda" and self.workers.world_size > 1:
            self.device = torch.device("cuda", self.workers.local_rank)
            torch.cuda.set_device(self.device)
        seed_everything(recipe.seed)
        self.encoder = encoder if encoder is not None else SentenceEncoder.from_pretrained(recipe.model,
                                                                                           recipe.max_length)
        self.encoder.reset_head()  # SimCSE trains a freshly initialised MLP
        if recipe.compile and self.encoder.fast_path != "off":
            self.encoder.fast_path = "fixed"  # compiled steps need fixed shapes
        self.branch = build_branch(recipe, self.encoder.hidden_size)
        self.encoder.to(self.device)
        if self.branch is not None:
            self.branch.to(self.device)
        examples = load_text_data(recipe.text_data, self.data_dir, recipe.max_text_examples, recipe.bad_text)
        if recipe.supervised != isinstance(examples[0], tuple):
            kind = "triples (anchor, positive, hard negative)" if recipe.supervised else "plain sentences"
            raise NlsupError(f"text_data={recipe.text_data!r} does not give {kind}; "
                             f"check supervised={recipe.supervised}")
        self.pin_memory = self.device.type == "cuda"
        self.text = TextBatches(self.encoder, examples, recipe.batch_size, recipe.max_length, recipe.seed,
                                static_shapes=recipe.compile, pin_memory=self.pin_memory, workers=self.workers)
        self.text_report = getattr(examples, "report", None)
        if self.text_report is not None:
            self.text_report.truncated = self.text.truncated
            report = self.text_report  # truncation alone is routine at length 32: counted, not announced
            if (report.skipped_not_utf8 or report.duplicates) and self.workers.is_main:
                print(f"note: {self.text_report.path}: {self.text_report.problems()}", file=sys.stderr)
        self.total_steps = len(self.text) * recipe.epochs
        if recipe.max_steps is not None:
            self.total_steps = min(self.total_steps, recipe.max_steps)
        if self.total_steps < 1:
            raise NlsupError(f"{recipe.text_data}: {count(len(examples), 'example')} make no batch of "
                             f"batch_size={recipe.batch_size}")
        self.text_loss = (SupervisedSimCSELoss(recipe.temperature, recipe.hard_negative_weight)
                          if recipe.supervised else InfoNCELoss(recipe.temperature))
        self.all_parameters = list(self.encoder.parameters())  # built once, not on every update
        if self.branch is not None:
            self.all_parameters += list(self.branch.parameters())
        distributed.broadcast_parameters(self.all_parameters)
        torch.manual_seed(recipe.seed + self.workers.rank)  # same weights everywhere, different dropout
        fused = self.device.type in ("cuda", "cpu")  # one kernel per update: 6x faster than foreach on a CPU
        text_params = list(self.encoder.parameters())
        if self.branch is not None and recipe.joint_loss:
            text_params += list(self.branch.parameters())
        self.text_optimizer = torch.optim.AdamW(text_params, lr=recipe.learning_rate, weight_decay=0.0,
                                                fused=fused)
        self.text_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.text_optimizer, lambda s: linear_decay(s, self.total_steps))
        self.embed_text = self.compiled(self._embed_text)
        self._modality_batches = None  # the loader starts on first use (benchmarks feed their own batches)
        if self.branch is not None:
            self.embed_modality = self.compiled(self._embed_modality)
            self.modality_loss = modality_loss(recipe.modality_loss, recipe.modality_temperature)
            if not recipe.joint_loss:
                self.modality_optimizer = torch.optim.AdamW(self.all_parameters, lr=recipe.modality_learning_rate,
                                                            weight_decay=0.0, fused=fused)
                self.modality_schedule = torch.optim.lr_scheduler.LambdaLR(
                    self.modality_optimizer, lambda s: cosine_decay(s, self.total_steps))

    def compiled(self, forward):
        """``torch.compile`` of a fixed-shape forward when the recipe asks: CUDA graphs on a GPU (the step is
        launch-bound there), inductor's fused kernels on a CPU."""
        if not self.recipe.compile:
            return forward
        return torch.compile(forward, mode="reduce-overhead" if self.device.type == "cuda" else None, dynamic=False)

    @property
    def modality_batches(self) -> Iterator:
        if self._modality_batches is None:
            self._modality_batches = Repeating(modality_loader(self.recipe, self.data_dir, self.workers,
                                                               self.pin_memory))
        return self._modality_batches

    def _embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device):
            return self.encoder({"input_ids": input_ids, "attention_mask": attention_mask}, pooling="cls")

    def _embed_modality(self, inputs: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device):
            return self.branch(self.encoder, inputs)

    def global_views(self, z: torch.Tensor, views: int) -> list[torch.Tensor]:
        """Split local embeddings into views and gather each across processes (the global batch's negatives)."""
        chunks = z.chunk(views)
        if not self.recipe.gather_negatives:
            return list(chunks)
        return [distributed.gather_with_grad(chunk) for chunk in chunks]

    def compute_text_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        z = self.embed_text(batch["input_ids"].to(self.device, non_blocking=True),
                            batch["attention_mask"].to(self.device, non_blocking=True))
        return self.text_loss(*self.global_views(z, 3 if self.recipe.supervised else 2))

    def compute_modality_loss(self, batch: tuple | None = None) -> torch.Tensor:
        view1, view2, labels = batch if batch is not None else next(self.modality_batches)
        inputs = torch.cat([view1, view2]).to(self.device, non_blocking=True)
        z1, z2 = self.global_views(self.embed_modality(inputs), 2)
        labels = labels.to(self.device, non_blocking=True)
        if self.recipe.gather_negatives:
            labels = distributed.gather(labels)
        return self.recipe.modality_loss_weight * self.modality_loss(z1, z2, labels)

    def update(self, loss: torch.Tensor, optimizer, schedule) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.all_parameters)
        nn.utils.clip_grad_norm_(self.all_parameters, 1.0)
        optimizer.step()
        schedule.step()

    def step(self, batch: dict[str, torch.Tensor], modality_batch: tuple | None = None) -> dict[str, torch.Tensor]:
        """One iteration; returns the losses as tensors (read them only when logging: no host sync)."""
        if self.recipe.compile and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        self.encoder.train()
        if self.branch is not None:
            self.branch.train()
        losses = {}
        if self.branch is not None and not self.recipe.joint_loss:
            losses["modality_loss"] = self.compute_modality_loss(modality_batch)
            self.update(losses["modality_loss"], self.modality_optimizer, self.modality_schedule)
        losses["text_loss"] = self.compute_text_loss(batch)
        total = losses["text_loss"]
        if self.branch is not None and self.recipe.joint_loss:
            losses["modality_loss"] = self.compute_modality_loss(modality_batch)
            total = total + losses["modality_loss"]
        self.update(total, self.text_optimizer, self.text_schedule)
        return {k: v.detach().clone() for k, v in losses.items()}  # a copy survives the next graph replay

    def evaluate(self) -> float:
        return stsb_dev_spearman(
            lambda s: self.encoder.encode(s, self.recipe.eval_pooling, device=self.device, progress=False),
            self.data_dir)

    def save(self, directory: Path, extra: dict | None = None) -> None:
        """Encoder as a loadable HF folder + head, the modality branch, the recipe, and ``extra`` as
        ``training_state.pt``, swapped in whole (:func:`nlsup_kit.checkpoint.save_atomically`)."""
        def write(folder: Path) -> None:
            self.encoder.save(folder)
            if self.branch is not None:
                self.branch.save(folder)
            (folder / RECIPE_FILE).write_text(self.recipe.to_json())
            if extra is not None:
                torch.save(extra, folder / STATE_FILE)

        save_atomically(directory, write)

    def training_state(self, progress: dict) -> dict:
        """Everything besides the weights that an exact resume needs. A collective call: the random states
        and image/audio stream positions of every process are kept, one per rank, so each process resumes
        its own dropout and augmentation stream."""
        per_rank = {"rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                            "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                            "numpy_pos": int(np.random.get_state()[2]),
                            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}
        if self._modality_batches is not None:
            per_rank["modality_data"] = self._modality_batches.state()
        state = {"progress": progress, "text_optimizer": self.text_optimizer.state_dict(),
                 "text_schedule": self.text_schedule.state_dict(),
                 "text_generator": progress.pop("epoch_generator"),
                 "ranks": distributed.gather_objects(per_rank)}
        if self.branch is not None and not self.recipe.joint_loss:
            state["modality_optimizer"] = self.modality_optimizer.state_dict()
            state["modality_schedule"] = self.modality_schedule.state_dict()
        return state

    def restore(self, checkpoint: Path) -> dict:
        """Weights, optimizers, schedules, data position and RNG from ``checkpoint``; returns the progress."""
        from safetensors.torch import load_file

        hint = ("the checkpoint is damaged and cannot be resumed: train again with --overwrite, or keep its best/ "
                "folder, which holds the best weights")
        verify(checkpoint, hint)
        stored = read_back(checkpoint / RECIPE_FILE, Recipe.from_json, "the run's recipe", hint)
        self.check_resumable(checkpoint, stored)
        state = read_back(checkpoint / STATE_FILE, lambda p: torch.load(p, weights_only=True, map_location="cpu"),
                          "the training state (optimizers, schedules, random states)", hint)
        if len(state["ranks"]) != self.workers.world_size:
            raise NlsupError(f"{checkpoint}: written by {count(len(state['ranks']), 'process')}; resume with the same "
                             f"number (torchrun --nproc_per_node {len(state['ranks'])}), or start a new output "
                             f"directory")
        own = state["ranks"][self.workers.rank]
        loaded = SentenceEncoder.from_pretrained(str(checkpoint), self.recipe.max_length)
        self.encoder.load_state_dict(loaded.state_dict())
        if self.branch is not None:
            self.branch.load_state_dict(read_back(checkpoint / BRANCH_FILE, lambda p: load_file(str(p)),
                                                  "the image/audio branch's weights", hint))
        self.text_optimizer.load_state_dict(state["text_optimizer"])
        self.text_schedule.load_state_dict(state["text_schedule"])
        if "modality_optimizer" in state:
            self.modality_optimizer.load_state_dict(state["modality_optimizer"])
            self.modality_schedule.load_state_dict(state["modality_schedule"])
        if "modality_data" in own:
            self.modality_batches.restore(own["modality_data"])  # replays the loader: before the RNG below
        self.text.generator.set_state(state["text_generator"])
        rng = own["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), rng["numpy_pos"]))
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return state["progress"]

    def check_resumable(self, checkpoint: Path, stored: Recipe) -> None:
        """Resuming continues the saved run exactly, so only the settings that cannot change its numbers may
        differ (:data:`nlsup_kit.recipes.RESUMABLE_SETTINGS`)."""
        changed = {k: (v, getattr(self.recipe, k)) for k, v in dataclasses.asdict(stored).items()
                   if k not in RESUMABLE_SETTINGS and v != getattr(self.recipe, k)}
        if not changed:
            return
        shown = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
        if set(changed) <= {"max_steps", "epochs"}:
            planned = len(self.text) * stored.epochs
            planned = planned if stored.max_steps is None else min(planned, stored.max_steps)
            raise NlsupError(
                f"{checkpoint}: saved by a run planned for {planned} steps ({shown}); its learning rates fall to 0 "
                f"at step {planned}, so a run of another length is not its continuation: train that length from "
                f"the start into a new --output-dir, or go on from these weights as a new run with "
                f"--set model={checkpoint} and a new --output-dir")
        raise NlsupError(f"{checkpoint}: saved with different settings ({shown}); a resume may change only "
                         f"{', '.join(RESUMABLE_SETTINGS)}: resume with the saved settings, or train into a new "
                         f"--output-dir")

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train(self, resume: bool = False) -> TrainResult:
        """Train to the end; with ``resume``, continue exactly from ``output_dir/checkpoint``."""
        main = self.workers.is_main
        if self.branch is not None:
            self.modality_batches  # open (and check) the image/audio data before anything is written
        best_dir, checkpoint_dir = self.output_dir / BEST_DIR, self.output_dir / CHECKPOINT_DIR
        metrics_path = self.output_dir / METRICS_FILE
        progress = {"step": 0, "epoch_batch": 0, "best": -math.inf, "first_loss": math.nan,
                    "last_loss": math.nan}
        epoch_generator = self.text.generator.get_state()
        if resume:
            if main:  # a kill between a save's two renames left the previous save aside
                recover(checkpoint_dir)
                recover(best_dir)
            distributed.barrier()
            if not checkpoint_dir.is_dir():
                raise NlsupError(f"{checkpoint_dir}: nothing to resume (no checkpoint written yet); "
                                 f"train without --resume")
            progress = self.restore(checkpoint_dir)
            if progress["step"] >= self.total_steps and (self.output_dir / RESULT_FILE).exists():
                done = read_result(self.output_dir, "the run's weights in best/ are unaffected")
                if main:
                    print(f"note: {self.output_dir}: already finished ({done.steps} steps, best STS-B dev "
                          f"{done.best_dev:.2f}); nothing to resume", file=sys.stderr)
                return done
            epoch_generator = self.text.generator.get_state()
            if main:  # the log continues from the checkpoint, as if never interrupted
                kept = [r for r in read_metrics(self.output_dir) if r["step"] <= progress["step"]]
                metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
                (self.output_dir / RECIPE_FILE).write_text(self.recipe.to_json())  # log/eval/save steps may change
        elif main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / RECIPE_FILE).write_text(self.recipe.to_json())
            metrics_path.write_text("")
        step, best = progress["step"], progress["best"]
        first_loss, last_loss = progress["first_loss"], progress["last_loss"]
        eval_seconds, started, loop_started = 0.0, time.time(), time.perf_counter()
        bar = progress_bar(total=self.total_steps, initial=step, show=self.progress if main else False,
                           desc=self.recipe.name, unit="step")
        losses: dict[str, torch.Tensor] = {}
        with open(metrics_path if main else os.devnull, "a") as log:
            while step < self.total_steps:
                skip = progress["epoch_batch"]
                self.text.generator.set_state(epoch_generator)
                for position, batch in enumerate(self.text.epoch(skip), start=skip + 1):
                    losses = self.step(batch)
                    step += 1
                    bar.update(1)
                    record = {}
                    if step == 1 or step % self.recipe.log_steps == 0 or step == self.total_steps:
                        record.update({k: float(v) for k, v in losses.items()})  # host sync: log steps only
                        self.check_finite(record, step, checkpoint_dir)
                        first_loss = record["text_loss"] if step == 1 else first_loss
                        last_loss = record["text_loss"]
                        bar.set_postfix(loss=f"{last_loss:.3f}")
                    if step % self.recipe.eval_steps == 0 or step == self.total_steps:
                        self.synchronize()
                        tick = time.perf_counter()
                        record["stsb_dev"] = self.evaluate()
                        if record["stsb_dev"] > best:
                            best = record["stsb_dev"]
                            if main:
                                self.save(best_dir)
                        distributed.barrier()
                        eval_seconds += time.perf_counter() - tick
                        bar.set_postfix(loss=f"{last_loss:.3f}", dev=f"{record['stsb_dev']:.2f}")
                    if record:
                        log.write(json.dumps({"step": step, **record,
                                              "lr": self.text_schedule.get_last_lr()[0]}) + "\n")
                        log.flush()
                    last_of_epoch = position == len(self.text)
                    if step % self.recipe.checkpoint_steps == 0 or step == self.total_steps:
                        self.check_finite({k: float(v) for k, v in losses.items()}, step, checkpoint_dir)
                        if last_of_epoch:  # the next epoch starts from the generator's state now
                            epoch_generator, position = self.text.generator.get_state(), 0
                        state = self.training_state(
                            {"step": step, "epoch_batch": position, "best": best, "first_loss": first_loss,
                             "last_loss": last_loss, "epoch_generator": epoch_generator})
                        if main:
                            self.save(checkpoint_dir, state)
                        distributed.barrier()
                    if step >= self.total_steps:
                        break
                progress["epoch_batch"] = 0
                epoch_generator = self.text.generator.get_state()
        self.synchronize()
        step_seconds = time.perf_counter() - loop_started - eval_seconds
        bar.close()
        result = TrainResult(self.output_dir, best_dir, best, step, time.time() - started, first_loss, last_loss,
                             step_seconds)
        if main:
            (self.output_dir / RESULT_FILE).write_text(json.dumps(
                {"best_stsb_dev": best, "steps": step, "seconds": result.seconds, "step_seconds": step_seconds,
                 "first_loss": first_loss, "last_loss": last_loss,
                 "text_data": dataclasses.asdict(self.text_report) if self.text_report else None}, indent=2))
        return result

    @staticmethod
    def check_finite(losses: dict[str, float], step: int, checkpoint_dir: Path) -> None:
        if not all(math.isfinite(v) for v in losses.values()):
            shown = ", ".join(f"{k}={v}" for k, v in losses.items())
            raise NlsupError(f"training stopped: {shown} at step {step}; the last good checkpoint is "
                             f"{checkpoint_dir} (lower the learning rate, then resume or start again)")


def train(recipe: Recipe, output_dir: str | Path, data_dir: str | Path | None = None,
          progress: bool | None = None, reuse: bool = False, resume: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train ``recipe`` into ``output_dir``; with ``reuse``, a finished run of the same recipe there is returned
    instead of trained again (the notebooks share their baselines this way); with ``resume``, an interrupted
    run there continues from its last checkpoint. A folder that holds another run is never replaced by
    accident: that takes ``overwrite``, which moves the old run to ``<output_dir>.replaced`` and deletes it
    only once the new run has finished, so a crash on the way leaves one of the two whole."""
    output_dir = Path(output_dir)
    if reuse and (previous := finished_run(recipe.validate(), output_dir)) is not None:
        return previous
    aside = output_dir.with_name(output_dir.name + ".replaced")
    existing = None if resume else describe_run(output_dir)
    if existing is not None and not overwrite:
        raise NlsupError(f"{output_dir}: already holds {existing}; continue it with --resume, train into a new "
                         f"--output-dir, or replace it with --overwrite")
    trainer = Trainer(recipe, output_dir, data_dir, progress)  # reads and checks the text and the model
    if trainer.branch is not None:
        trainer.modality_batches  # and the image/audio data, all before the old run is touched
    if existing is not None and distributed.rank_from_env() == 0:
        if aside.exists():  # an earlier replacement crashed: the whole old run is the one aside, keep it
            shutil.rmtree(output_dir)
        else:
            output_dir.rename(aside)
    result = trainer.train(resume)
    if aside.exists() and distributed.rank_from_env() == 0:
        shutil.rmtree(aside)
    return result
