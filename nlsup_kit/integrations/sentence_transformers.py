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

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from nlsup_kit.data.senteval import StsPairs
from nlsup_kit.embeddings import ModalityBranch, build_branch
from nlsup_kit.encoder import SentenceEncoder, position_limit
from nlsup_kit.errors import NlsupError
from nlsup_kit.layers import supports_fast_layers
from nlsup_kit.models import resolve_model
from nlsup_kit.progress import progress_bar
from nlsup_kit.recipes import Recipe, apply_overrides, get_recipe
from nlsup_kit.step import AlternatingStep

STATE_FOLDER = "nonlinguistic"  # beside each trainer checkpoint: the branch and its update's state
_POOLING = {"avg": "mean", "cls_before_pooler": "cls"}  # the recipe's pooler -> sentence-transformers' Pooling mode


def mean_pooled_model(recipe: Recipe, device: str | None = None):
    """The recipe's text encoder as a plain ``SentenceTransformer``: its Transformer module, mean pooling (the
    pooling ``pooler=avg`` trains and scores)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(resolve_model(recipe.model), max_seq_length=recipe.max_length)
    return SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")],
                               device=device)


def simcse_trainer(model, sentences: list[str], recipe: Recipe, output_dir: str | Path, callbacks: list = (),
                   progress: bool | None = None, run_folder: str | Path | None = None, **arguments):
    """sentence-transformers' own unsupervised SimCSE, set up as the recipe's text side: MNRL on (sentence,
    sentence) pairs (the two dropout passes are the two columns) with scale 1/temperature, the recipe's batch size,
    learning rate, length and seed, whole batches only, linear decay without warmup, clipping at 1.0 (SimCSE's and
    the kit's ``max_grad_norm``). One progress bar over the optimizer steps, shown as the kit's bars are (``progress``),
    instead of a printed line per log; when it trains, it counts as a run trained into ``run_folder`` (default
    ``output_dir``) in the notebooks' runtime line. ``arguments`` override any ``SentenceTransformerTrainingArguments`` setting."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    length = dict(max_steps=recipe.max_steps) if recipe.max_steps else dict(num_train_epochs=recipe.epochs)
    settings = dict(output_dir=str(output_dir), **length, per_device_train_batch_size=recipe.batch_size,
                    dataloader_drop_last=True, learning_rate=recipe.learning_rate, lr_scheduler_type="linear",
                    warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch",
                    logging_steps=recipe.log_steps, save_strategy="no",
                    report_to=[], seed=recipe.seed, disable_tqdm=True,
                    dataloader_pin_memory=torch.cuda.is_available())  # pinned memory helps a GPU copy only
    trainer = SentenceTransformerTrainer(
        model=model, args=SentenceTransformerTrainingArguments(**{**settings, **arguments}),
        train_dataset=Dataset.from_dict({"anchor": sentences, "positive": sentences}),
        loss=MultipleNegativesRankingLoss(model, scale=1 / recipe.temperature),
        callbacks=[*callbacks, StepBar(progress, run_folder or output_dir)])
    for printing in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(printing)
    return trainer


@dataclass
class SentenceTransformerRun:
    """A finished run of :func:`train_sentence_transformer`."""

    folder: Path            # the saved SentenceTransformer, loadable by ``SentenceTransformer(str(folder))``
    log_history: list[dict]  # the trainer's logs: the text loss, and the modality loss with the callback
    seconds: float          # the whole run: model and data load, training, saving
    read_back: bool = False  # a finished run found in its folder, timed when it was trained


RUN_RECORD = "run.json"


class StepBar(TrainerCallback):
    """One progress bar over the trainer's optimizer steps, shown as the kit's bars are (``progress``); the run
    counted as trained into ``run_folder`` (:func:`nlsup_kit.trainer.count_run`) when it starts."""

    def __init__(self, progress: bool | None = None, run_folder: str | Path | None = None):
        self.progress, self.bar, self.run_folder = progress, None, run_folder

    def on_train_begin(self, args, state, control, **kwargs):
        from nlsup_kit.trainer import count_run

        if self.run_folder is not None:
            count_run("trained", self.run_folder)
        self.bar = progress_bar(total=state.max_steps, initial=state.global_step, desc="sentence-transformers",
                                unit="step", show=self.progress)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(1)

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


def train_sentence_transformer(recipe: Recipe, output_dir: str | Path, data_dir: str | Path | None = None,
                               with_callback: bool = True, reuse: bool = True,
                               progress: bool | None = None) -> SentenceTransformerRun:
    """The recipe's model trained by :func:`simcse_trainer` on the recipe's text, with the recipe's
    :class:`NonLinguisticCallback` or without (sentence-transformers' plain unsupervised SimCSE), saved in
    ``output_dir/model``. With ``reuse``, a finished run of the same recipe and choice there is read back."""
    from nlsup_kit.data import ensure_data
    from nlsup_kit.data.text import load_text_data
    from nlsup_kit.trainer import count_run

    output_dir = Path(output_dir)
    record = output_dir / RUN_RECORD
    asked = {"recipe": json.loads(recipe.to_json()), "with_callback": with_callback}
    if reuse and record.is_file() and (output_dir / "model").is_dir():
        stored = json.loads(record.read_text())
        if {key: stored.get(key) for key in asked} == asked:
            count_run("reused", output_dir)
            return SentenceTransformerRun(output_dir / "model", stored["log_history"], stored["seconds"], read_back=True)
    started = time.perf_counter()
    data_dir = ensure_data([], data_dir)
    model = mean_pooled_model(recipe)
    sentences = load_text_data(recipe.text_data, data_dir, recipe.max_text_examples)
    callbacks = [NonLinguisticCallback(model, recipe, data_dir=data_dir)] if with_callback else []
    trainer = simcse_trainer(model, sentences, recipe, output_dir / "trainer", callbacks, progress, run_folder=output_dir)
    trainer.train()
    read_whole(model)  # trained at the recipe's length, saved to read whole sentences
    model.save(str(output_dir / "model"))
    run = SentenceTransformerRun(output_dir / "model", trainer.state.log_history, time.perf_counter() - started)
    record.write_text(json.dumps({**asked, "log_history": run.log_history, "seconds": run.seconds}, indent=2))
    return run


def read_whole(model) -> None:
    """Cut no sentence short of the positions' limit, as SentEval and the kit's scorer read them: sentence-transformers
    keeps its cut in the tokenizer (``max_seq_length`` is its ``model_max_length``), and saves it with the model."""
    model.max_seq_length = position_limit(model[0].auto_model)


def evaluator_spearman(model, pairs: StsPairs, name: str = "sts") -> float:
    """Spearman x 100 of cosine similarity as sentence-transformers' own ``EmbeddingSimilarityEvaluator`` computes
    it, for the same pairs the kit's scorer reads: an independent second scorer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    model = model if isinstance(model, SentenceTransformer) else SentenceTransformer(str(model))
    read_whole(model)
    evaluator = EmbeddingSimilarityEvaluator(pairs.sentences1, pairs.sentences2, pairs.scores,
                                             main_similarity="cosine", name=name)
    return 100 * evaluator(model)[f"{name}_spearman_cosine"]


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
    """The model must pool as the recipe's ``pooler`` says, so that the recipe (settings chosen for that pooler)
    describes the run; the image/audio update reads [CLS] whatever the pooling. One line naming both otherwise."""
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
        self.updates = 0  # image/audio updates taken: one per optimizer step of the trainer

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
        self.updates += 1

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
