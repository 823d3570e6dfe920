"""The run loop: build a recipe's model and data, repeat :class:`nlsup_kit.step.AlternatingStep`, log, evaluate
on STS-B dev, keep the best save and a resumable checkpoint (:mod:`nlsup_kit.checkpoint`).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nlsup_kit import distributed
from nlsup_kit.checkpoint import (BEST_DIR, CHECKPOINT_DIR, ELSEWHERE, METRICS_FILE, RECIPE_FILE, RESULT_FILE,
                                  TrainResult, check_resumable, describe_run, finished_run, process_random_state,
                                  read_metrics, read_result, read_training_state, recover, require_run_space,
                                  restore_process_random_state, resumable_run, verify, write_save)
from nlsup_kit.data.batches import Repeating, TextBatches, modality_loader, planned_steps
from nlsup_kit.data.disk import check_writable
from nlsup_kit.data.sources import ensure_data, text_data_needs
from nlsup_kit.data.text import load_text_data
from nlsup_kit.device import pick_device, should_compile
from nlsup_kit.embeddings import ModalityBranch, build_branch
from nlsup_kit.encoder import SentenceEncoder
from nlsup_kit.errors import NlsupError, Stopped, count, read_back
from nlsup_kit.evaluation import stsb_dev_measures
from nlsup_kit.progress import progress_bar
from nlsup_kit.recipes import Recipe
from nlsup_kit.step import AlternatingStep
from nlsup_kit.stopping import StopRequest


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Position:
    """Where a run stands; a checkpoint stores it beside the weights, optimizers and random states."""

    step: int = 0
    epoch_batch: int = 0  # batches of the current epoch already trained on
    best: float = -math.inf  # best STS-B dev so far
    first_loss: float = math.nan
    last_loss: float = math.nan


def starting_point(recipe: Recipe, encoder: SentenceEncoder | None = None
                   ) -> tuple[SentenceEncoder, ModalityBranch | None]:
    """The weights a run of ``recipe`` starts from, seeded as its trainer seeds them: the pretrained encoder
    with a freshly initialised MLP head (SimCSE trains a new one) and the image/audio branch. The notebooks
    measure "before training" on exactly these, without building a trainer."""
    seed_everything(recipe.seed)
    encoder = encoder if encoder is not None else SentenceEncoder.from_pretrained(recipe.model, recipe.max_length)
    encoder.reset_head()
    return encoder, build_branch(recipe, encoder.hidden_size)


class Trainer:
    """Runs a :class:`Recipe`: builds the model and data, trains, evaluates, keeps the best checkpoint.

    Under ``torchrun`` every process trains on its slice of each global batch (see :mod:`nlsup_kit.distributed`);
    only rank 0 writes files.
    """

    def __init__(self, recipe: Recipe, output_dir: str | Path, data_dir: str | Path | None = None,
                 progress: bool | None = None, encoder: SentenceEncoder | None = None):
        self.recipe = recipe.validate()
        self.output_dir = Path(output_dir)
        self.data_dir = ensure_data(text_data_needs(recipe.text_data, recipe.text_language), data_dir,
                                    progress=progress)
        self.progress = progress
        self.device, self.workers = self._process_device()
        self.encoder, self.branch = starting_point(recipe, encoder)
        self.encoder.to(self.device)
        if self.branch is not None:
            self.branch.to(self.device)
        self.pin_memory = self.device.type == "cuda"
        self.text = self._text_batches()
        self.total_steps = planned_steps(len(self.text.ids), recipe)
        self.iteration = AlternatingStep(recipe, self.encoder, self.branch, self.total_steps, self.device,
                                         self.workers)
        distributed.broadcast_parameters(self.iteration.parameters)
        torch.manual_seed(recipe.seed + self.workers.rank)  # same weights everywhere, different dropout
        self._modality_batches = None  # the loader starts on first use
        self._epoch_start = self.text.generator.get_state()  # the text order of the current epoch comes from it
        self.eval_seconds = self.checkpoint_seconds = 0.0
        self.saved_step: int | None = None  # the step of the last checkpoint written or resumed from
        self.clock: list[tuple[int, float]] = []  # (step, seconds since the loop began) after each step's work

    def _process_device(self) -> tuple[torch.device, distributed.Workers]:
        device = pick_device(self.recipe.device)
        workers = distributed.init_from_env(device.type)
        if device.type == "cuda" and workers.world_size > 1:
            device = torch.device("cuda", workers.local_rank)
            torch.cuda.set_device(device)
        return device, workers

    def _text_batches(self) -> TextBatches:
        recipe = self.recipe
        examples = load_text_data(recipe.text_data, self.data_dir, recipe.max_text_examples, recipe.bad_text)
        if recipe.supervised != isinstance(examples[0], tuple):
            kind = "triples (anchor, positive, hard negative)" if recipe.supervised else "plain sentences"
            raise NlsupError(f"text_data={recipe.text_data!r} does not give {kind}; "
                             f"check supervised={recipe.supervised}")
        text = TextBatches(self.encoder.tokenizer, examples, recipe.batch_size, recipe.max_length, recipe.seed,
                           static_shapes=should_compile(recipe.compile, self.device), pin_memory=self.pin_memory, workers=self.workers)
        if len(text) * recipe.epochs < 1:
            raise NlsupError(f"{recipe.text_data}: {count(len(examples), 'example')} make no batch of "
                             f"batch_size={recipe.batch_size}")
        self.text_report = getattr(examples, "report", None)
        if self.text_report is not None:
            self.text_report.truncated = text.truncated  # truncation alone is routine at length 32: not announced
            if (self.text_report.skipped_not_utf8 or self.text_report.duplicates) and self.workers.is_main:
                print(f"note: {self.text_report.path}: {self.text_report.problems()}", file=sys.stderr)
        return text

    @property
    def modality_batches(self) -> Iterator:
        if self._modality_batches is None:
            recipe = self.recipe
            loader = modality_loader(recipe, self.data_dir, self.workers, self.device.type, progress=self.progress)
            augment = None
            if recipe.pipeline_on(self.device.type) == "cached":  # each process its own stream, as dropout
                from nlsup_kit.data.batch_augment import batch_augment_for

                augment = batch_augment_for(recipe, recipe.seed + self.workers.rank)
            self._modality_batches = Repeating(loader, augment, self.device)
        return self._modality_batches

    def evaluate(self) -> dict[str, float]:
        """STS-B dev Spearman x 100 (``stsb_dev``; in the recipe's text_language), alignment and uniformity,
        from one encoding."""
        return stsb_dev_measures(self.encoder, self.recipe.pooling_for_evaluation(), self.device, self.data_dir,
                                 self.recipe.text_language)

    def weight_bytes(self) -> int:
        modules = [self.encoder] + ([self.branch] if self.branch is not None else [])
        return sum(t.numel() * t.element_size() for m in modules for t in [*m.parameters(), *m.buffers()])

    def save(self, directory: Path, step: int, training_state: dict | None = None, write: bool = True) -> None:
        """A save swapped in whole, by rank 0 (when ``write``); every process calls it, and a disk too small
        for the save stops them all with one line that names the last good checkpoint, which stays whole."""
        failure = None
        if self.workers.is_main and write:
            estimate = self.weight_bytes() * (3 if training_state is not None else 1)  # + AdamW's two moments
            try:
                write_save(directory, self.encoder, self.branch, self.recipe, training_state, estimate)
            except NlsupError as err:
                failure = err
        if distributed.max_over_processes(int(failure is not None)):  # also the barrier after every save
            checkpoint = self.output_dir / CHECKPOINT_DIR
            kept = (f"the last good checkpoint, of step {self.saved_step}, is whole in {checkpoint}: continue from "
                    f"it with --resume once there is room" if self.saved_step is not None else
                    "no checkpoint was written yet: train again once there is room")
            raise NlsupError(f"{failure or 'process 0 could not write a save (its line says why)'}; {directory.name}/ "
                             f"of step {step} was not written; {kept}")

    def training_state(self, position: Position) -> dict:
        """Everything besides the weights that an exact resume needs. A collective call: the random states
        and image/audio stream positions of every process are kept, one per rank, so each process resumes
        its own dropout and augmentation stream."""
        per_rank = {"rng": process_random_state()}
        if self._modality_batches is not None:
            per_rank["modality_data"] = self._modality_batches.state()
        return {"position": dataclasses.asdict(position), **self.iteration.state_dict(),
                "text_generator": self._epoch_start, "ranks": distributed.gather_objects(per_rank)}

    def restore(self, checkpoint: Path) -> Position:
        """Weights, optimizers, schedules, data position and RNG from ``checkpoint``; returns the position."""
        hint = ("the checkpoint is damaged and cannot be resumed: train again with --overwrite, or keep its best/ "
                "folder, which holds the best weights")
        verify(checkpoint, hint)
        check_resumable(checkpoint, read_back(checkpoint / RECIPE_FILE, Recipe.from_json, "the run's recipe", hint),
                        self.recipe, len(self.text))
        state = read_training_state(checkpoint, hint)
        if len(state["ranks"]) != self.workers.world_size:
            raise NlsupError(f"{checkpoint}: written by {count(len(state['ranks']), 'process')}; resume with the same "
                             f"number (torchrun --nproc_per_node {len(state['ranks'])}), or start a new output "
                             f"directory")
        own = state["ranks"][self.workers.rank]
        self.encoder.load_state_dict(SentenceEncoder.from_pretrained(str(checkpoint), self.recipe.max_length)
                                     .state_dict())
        if self.branch is not None:
            self.branch.load_state_dict(ModalityBranch.load(checkpoint).state_dict())
        self.iteration.load_state_dict(state)
        if "modality_data" in own:
            self.modality_batches.restore(own["modality_data"])  # replays the loader: before the RNG below
        self._epoch_start = state["text_generator"]
        restore_process_random_state(own["rng"])
        position = Position(**state["position"])
        self.saved_step = position.step
        return position

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train(self, resume: bool = False) -> TrainResult:
        """Train to the end; with ``resume``, continue exactly from ``output_dir/checkpoint``."""
        if self.branch is not None:
            self.modality_batches  # open (and check) the image/audio data before anything is written
        position = self._resume() if resume else self._begin()
        if isinstance(position, TrainResult):
            return position
        if self.workers.is_main:  # before the first step, not at the first save
            require_run_space(self.output_dir, self.weight_bytes(), 3 * self.weight_bytes())
        started, loop_started = time.time(), time.perf_counter()
        bar = progress_bar(total=self.total_steps, initial=position.step, desc=self.recipe.name, unit="step",
                           show=self.progress if self.workers.is_main else False)
        stop = StopRequest()
        with stop.listening(), open(self.output_dir / METRICS_FILE if self.workers.is_main else os.devnull,
                                    "a") as log:
            while position.step < self.total_steps:
                self.text.generator.set_state(self._epoch_start)
                for batch in self.text.epoch(position.epoch_batch):
                    modality_batch = next(self.modality_batches) if self.branch is not None else None
                    losses = self.iteration.step(batch, modality_batch)
                    position.step += 1
                    position.epoch_batch += 1
                    if position.epoch_batch == len(self.text):  # the next epoch's order comes from the state now
                        self._epoch_start, position.epoch_batch = self.text.generator.get_state(), 0
                    bar.update(1)
                    self._after_step(losses, position, bar, log)
                    self.clock.append((position.step, time.perf_counter() - loop_started))
                    if position.step >= self.total_steps:
                        break
                    if signum := stop.agreed():
                        if self.saved_step != position.step:
                            self._save_checkpoint(losses, position)
                        bar.close()
                        raise Stopped(signum, position.step, self.total_steps, self.output_dir / CHECKPOINT_DIR,
                                      stop.repeats, self.workers.is_main)
        self.synchronize()
        bar.close()
        return self._finish(position, time.time() - started, time.perf_counter() - loop_started - self.eval_seconds)

    def _begin(self) -> Position:
        if self.workers.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / RECIPE_FILE).write_text(self.recipe.to_json())
            (self.output_dir / METRICS_FILE).write_text("")
        return Position()

    def _resume(self) -> Position | TrainResult:
        """The checkpoint's position, or the run's result when it had already finished (nothing is touched)."""
        checkpoint_dir = self.output_dir / CHECKPOINT_DIR
        if self.workers.is_main:  # a kill between a save's two renames left the previous save aside
            recover(checkpoint_dir)
            recover(self.output_dir / BEST_DIR)
        distributed.barrier()
        if not checkpoint_dir.is_dir():
            raise NlsupError(f"{checkpoint_dir}: nothing to resume (no checkpoint written yet); train without --resume")
        position = self.restore(checkpoint_dir)
        if position.step >= self.total_steps and (self.output_dir / RESULT_FILE).exists():
            done = read_result(self.output_dir, "the run's weights in best/ are unaffected")
            if self.workers.is_main:
                print(f"note: {self.output_dir}: already finished ({done.steps} steps, best STS-B dev "
                      f"{done.best_dev:.2f}); nothing to resume", file=sys.stderr)
            return done
        if self.workers.is_main:  # the log continues from the checkpoint, as if never interrupted
            kept = [r for r in read_metrics(self.output_dir) if r["step"] <= position.step]
            (self.output_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in kept))
            (self.output_dir / RECIPE_FILE).write_text(self.recipe.to_json())  # log/eval/save steps may change
        return position

    def _after_step(self, losses: dict[str, torch.Tensor], position: Position, bar, log) -> None:
        """Log, evaluate and keep the best, save a checkpoint: each when its step comes."""
        step, last = position.step, position.step == self.total_steps
        checkpoint_dir = self.output_dir / CHECKPOINT_DIR
        record = {}
        if step == 1 or step % self.recipe.log_steps == 0 or last:
            record.update({k: float(v) for k, v in losses.items()})  # a host sync: on log steps only
            self.check_finite(record, step, checkpoint_dir)
            position.first_loss = record["text_loss"] if step == 1 else position.first_loss
            position.last_loss = record["text_loss"]
            bar.set_postfix(loss=f"{position.last_loss:.3f}")
        if step % self.recipe.eval_steps == 0 or last:
            record.update(self._evaluate_and_keep_best(position))
            bar.set_postfix(loss=f"{position.last_loss:.3f}", dev=f"{record['stsb_dev']:.2f}")
        if record:
            rate = float(self.iteration.text_schedule.get_last_lr()[0])  # a tensor when updates are graphed
            log.write(json.dumps({"step": step, **record, "lr": rate}) + "\n")
            log.flush()
        if step % self.recipe.checkpoint_steps == 0 or last:
            self._save_checkpoint(losses, position)

    def _save_checkpoint(self, losses: dict[str, torch.Tensor], position: Position) -> None:
        self.check_finite({k: float(v) for k, v in losses.items()}, position.step, self.output_dir / CHECKPOINT_DIR)
        tick = time.perf_counter()
        self.save(self.output_dir / CHECKPOINT_DIR, position.step, self.training_state(position))
        self.saved_step = position.step
        self.checkpoint_seconds += time.perf_counter() - tick

    def _evaluate_and_keep_best(self, position: Position) -> dict[str, float]:
        self.synchronize()
        tick = time.perf_counter()
        measures = self.evaluate()
        improved = measures["stsb_dev"] > position.best
        position.best = max(position.best, measures["stsb_dev"])
        self.save(self.output_dir / BEST_DIR, position.step, write=improved)
        self.eval_seconds += time.perf_counter() - tick
        return measures

    def _finish(self, position: Position, seconds: float, step_seconds: float) -> TrainResult:
        result = TrainResult(self.output_dir, self.output_dir / BEST_DIR, position.best, position.step, seconds,
                             position.first_loss, position.last_loss, step_seconds)
        if self.workers.is_main:
            (self.output_dir / RESULT_FILE).write_text(json.dumps(
                {"best_stsb_dev": result.best_dev, "steps": result.steps, "seconds": seconds,
                 "step_seconds": step_seconds, "first_loss": result.first_loss, "last_loss": result.last_loss,
                 "text_data": dataclasses.asdict(self.text_report) if self.text_report else None,
                 "modality_data": modality_data_description(self.recipe)}, indent=2))
        return result

    @staticmethod
    def check_finite(losses: dict[str, float], step: int, checkpoint_dir: Path) -> None:
        if not all(math.isfinite(v) for v in losses.values()):
            shown = ", ".join(f"{k}={v}" for k, v in losses.items())
            raise NlsupError(f"training stopped: {shown} at step {step}; the last good checkpoint is "
                             f"{checkpoint_dir} (lower the learning rate, then resume or start again)")


def modality_data_description(recipe: Recipe) -> str | None:
    """What the image/audio side of ``recipe`` trains on (None for SimCSE), in words."""
    if recipe.modality == "image":
        from nlsup_kit.data.images import describe_images

        return describe_images(recipe.modality_data, recipe.image_list)
    if recipe.modality == "audio":
        from nlsup_kit.data.audio import describe_audio

        return describe_audio(recipe.modality_data)
    return None


# runs this process asked for (train(), the sentence-transformers runs of nlsup_kit.integrations), read back or trained, for
# the notebooks' runtime line, by folder: read back twice, or trained and then read back, a run counts once, as what it first was.
RUN_COUNTS: dict[str, set[str]] = {"trained": set(), "reused": set()}


def count_run(kind: str, folder: str | Path) -> None:
    folder = str(Path(folder).resolve())
    if not any(folder in seen for seen in RUN_COUNTS.values()):
        RUN_COUNTS[kind].add(folder)


def run_origin(folder: str | Path) -> str:
    """Whether this process trained the run in ``folder`` or read it back (its time is then the training's), in words."""
    return ("read back: trained, and timed, earlier in this folder, by an earlier notebook or an earlier run of this one"
            if str(Path(folder).resolve()) in RUN_COUNTS["reused"] else "trained here")


def train(recipe: Recipe, output_dir: str | Path, data_dir: str | Path | None = None,
          progress: bool | None = None, reuse: bool = False, resume: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train ``recipe`` into ``output_dir``; with ``reuse``, a finished run of the same recipe there is returned
    instead of trained again (the notebooks share their baselines this way) and an unfinished one, stopped by
    a signal or a crash, continues; with ``resume``, an interrupted run there continues from its last
    checkpoint. A folder that holds another run is never replaced by accident: that takes ``overwrite``, which
    moves the old run to ``<output_dir>.replaced`` and deletes it only once the new run has finished, so a crash
    on the way leaves one of the two whole. The folder is checked for writing before the model or data load."""
    output_dir = Path(output_dir)
    if reuse and (previous := finished_run(recipe.validate(), output_dir)) is not None:
        count_run("reused", output_dir)
        return previous
    count_run("trained", output_dir)
    resume = resume or (reuse and not overwrite and resumable_run(recipe, output_dir))
    aside = output_dir.with_name(output_dir.name + ".replaced")
    existing = None if resume else describe_run(output_dir)
    if existing is not None and not overwrite:
        raise NlsupError(f"{output_dir}: already holds {existing}; continue it with --resume, train into a new "
                         f"--output-dir, or replace it with --overwrite")
    check_writable(output_dir, ELSEWHERE)
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
