"""Batch streams: pre-tokenised text shuffled by a seeded generator, and endless image/audio batches whose
position a checkpoint stores and restores exactly. Under torchrun each process keeps its slice of every
global batch."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from nlsup_kit import distributed
from nlsup_kit.errors import NlsupError, count

if TYPE_CHECKING:
    from nlsup_kit.recipes import Recipe


def batches_per_epoch(examples: int, batch_size: int) -> int:
    """A last batch of one example is dropped (no negative to contrast with)."""
    full, rest = divmod(examples, batch_size)
    return full + (rest >= 2)


def planned_steps(examples: int, recipe) -> int:
    """How many iterations a run of ``recipe`` on ``examples`` text examples trains: its epochs, or fewer."""
    steps = batches_per_epoch(examples, recipe.batch_size) * recipe.epochs
    return steps if recipe.max_steps is None else min(steps, recipe.max_steps)


class TextBatches:
    """Pre-tokenised text in one tensor, shuffled each epoch by a seeded generator.

    Every process draws the same global batches and keeps its own slice of rows. Each batch is trimmed to
    its longest row, or padded to ``max_length`` with ``static_shapes`` (what a
    compiled CUDA-graph step needs); ``pin_memory`` lets the copy to the GPU overlap the previous step.
    """

    def __init__(self, tokenizer, examples: list, batch_size: int, max_length: int, seed: int,
                 static_shapes: bool = False, pin_memory: bool = False,
                 workers: distributed.Workers = distributed.Workers()):
        self.columns = 3 if isinstance(examples[0], tuple) else 1
        flat = [s for ex in examples for s in (ex if self.columns == 3 else (ex,))]
        ids = tokenizer(flat, truncation=True, max_length=max_length + 1)["input_ids"]
        long_rows = [r for r, row in enumerate(ids) if len(row) > max_length]
        self.truncated = len(long_rows)  # counted, then cut exactly as truncation at max_length cuts
        if long_rows:
            cut = tokenizer([flat[r] for r in long_rows], truncation=True, max_length=max_length)
            for r, row in zip(long_rows, cut["input_ids"]):
                ids[r] = row
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.lengths = torch.tensor([len(row) for row in ids]).view(-1, self.columns)
        self.ids = torch.full((len(ids), max_length), pad_id, dtype=torch.long)
        for r, row in enumerate(ids):
            self.ids[r, : len(row)] = torch.tensor(row)
        self.ids = self.ids.view(-1, self.columns, max_length)
        self.batch_size, self.static_shapes, self.pin_memory = batch_size, static_shapes, pin_memory
        self.local = workers.local_slice(batch_size, "batch_size")  # this process's rows of each batch
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return batches_per_epoch(len(self.ids), self.batch_size)

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


class LocalBatches(BatchSampler):
    """The global batches of one seeded shuffle, cut to this process's slice (all of it in one process)."""

    def __init__(self, sampler, batch_size: int, workers: distributed.Workers):
        super().__init__(sampler, batch_size, drop_last=True)
        self.local = workers.local_slice(batch_size, "modality_batch_size")

    def __iter__(self):
        for batch in super().__iter__():
            yield batch[self.local]


def modality_loader(recipe: Recipe, data_dir: Path, workers: distributed.Workers = distributed.Workers(),
                    device: str = "cpu", pipeline: str | None = None, progress: bool | None = None) -> DataLoader:
    """The recipe's image/audio batches: augmented views (``per-item``), or for ``cached`` what
    :mod:`nlsup_kit.data.batch_augment` augments: the decoded images padded into one uint8 batch with their
    sizes, or the fbanks (float16) with their sounding frames. ``device`` is the type of the device that trains
    (``cuda`` pins the batches); ``pipeline`` overrides the recipe's there."""
    pipeline = pipeline or recipe.pipeline_on(device)
    collate = None
    if recipe.modality == "image" and pipeline == "cached":
        from nlsup_kit.data.images import DecodedImages, base_images, padded_batch, stored_side

        dataset = DecodedImages(base_images(recipe.modality_data, data_dir, recipe.image_size, recipe.image_list,
                                            progress), stored_side(recipe.image_size), progress)
        collate = padded_batch
    elif recipe.modality == "image":
        from nlsup_kit.data.images import load_images

        dataset = load_images(recipe.modality_data, data_dir, recipe.image_size, recipe.image_list, progress)
    elif pipeline == "cached":
        from nlsup_kit.data.audio import FbankClips, audio_clips

        dataset = FbankClips(audio_clips(recipe.modality_data, data_dir), recipe.audio_mel_bins, recipe.audio_frames,
                             progress)
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
    processes = recipe.loader_workers(device, pipeline)
    return DataLoader(dataset, batch_sampler=LocalBatches(sampler, recipe.modality_batch_size, workers),
                      num_workers=processes, persistent_workers=processes > 0, prefetch_factor=4 if processes else None,
                      pin_memory=device == "cuda", collate_fn=collate, worker_init_fn=ignore_stop_signals)


def ignore_stop_signals(_worker_id: int) -> None:
    """Loader processes leave SIGTERM and SIGINT to the training process: a Ctrl-C or a scheduler's SIGTERM
    reaches the whole process group, and a loader process that died of it would break the batch the run
    needs to finish its update and checkpoint (:mod:`nlsup_kit.stopping`); they end when the run does."""
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, signal.SIG_IGN)


class Repeating:
    """Endless batches from a seeded loader, with a position a checkpoint can store and restore exactly:
    the sampler's generator state at the start of the current pass, batches taken since, the dataset's own
    random state (audio mixup), and the state of ``augment`` (a batch augmentation on ``device``, which makes
    the views of each loaded batch there: :mod:`nlsup_kit.data.batch_augment`)."""

    def __init__(self, loader: DataLoader, augment=None, device: torch.device | None = None):
        self.loader, self.augment, self.device = loader, augment, device
        self.generator = loader.batch_sampler.sampler.generator
        self.iterator, self.pass_state, self.taken = None, None, 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = self._loaded()
        return batch if self.augment is None else self.augment(batch, self.device)

    def _loaded(self):
        if self.iterator is None:
            self.pass_state, self.taken = self.generator.get_state(), 0
            self.iterator = iter(self.loader)
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.iterator = None
            return self._loaded()
        except NlsupError as err:  # from a loader worker it arrives inside its traceback: keep the one line
            raise NlsupError(str(err).strip().splitlines()[-1].removeprefix("nlsup_kit.errors.NlsupError: ")) \
                from None
        self.taken += 1
        return batch

    def state(self) -> dict:
        rng = getattr(self.loader.dataset, "rng", None)
        return {"pass_state": self.pass_state, "taken": self.taken,
                "dataset_rng": rng.getstate() if rng is not None else None,
                "augment": self.augment.state() if self.augment is not None else None}

    def restore(self, state: dict) -> None:
        """Replay to the stored position; call before restoring the global RNG (replay draws from it)."""
        saved = "cached" if state.get("augment") is not None else "per-item"
        if (saved == "cached") != (self.augment is not None):
            other = "cached" if self.augment is not None else "per-item"
            raise NlsupError(f"the checkpoint's image/audio batches were made by the {saved} pipeline and this run "
                             f"makes them {other} (modality_pipeline=auto picks by device): resume with --set "
                             f"modality_pipeline={saved}")
        if state["pass_state"] is not None:
            self.generator.set_state(state["pass_state"])
            self.iterator, self.pass_state, self.taken = iter(self.loader), state["pass_state"], 0
            for _ in range(state["taken"]):
                self._loaded()
        if state["dataset_rng"] is not None:
            self.loader.dataset.rng.setstate(state["dataset_rng"])
        if self.augment is not None:
            self.augment.restore(state["augment"])
