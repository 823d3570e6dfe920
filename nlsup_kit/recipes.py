"""Training recipes: one dataclass, the paper's settings as named instances, ``key=value`` overrides.

The paper recipes copy the reference code's scripts and READMEs (github.com/yiren-jian/NonLing-CSE, e.g.
VisualCSE/run_unsup_example.sh and the command in VisualCSE/README.md); SimCSE's own for the text-only large
model. :func:`nlsup_kit.paper.recipe_source` names the file and line of each setting, and a test keeps the two
in step. The non-linguistic loss of every paper recipe is ``released-supcon``, the variant that produced the
published numbers (``--new_supcon``: ``new_SupCon_forward`` in VisualCSE/src/trainers.py); it is not SupCon
(see :class:`nlsup_kit.losses.ReleasedSupConLoss`); set ``modality_loss=supcon`` for the real one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path

from nlsup_kit.data.imagenet_subset import PREFIX as IMAGENET_SUBSET
from nlsup_kit.data.multilingual import STSB_MULTI_LANGUAGES
from nlsup_kit.embeddings.branch import MODALITIES as BRANCH_MODALITIES
from nlsup_kit.embeddings.branch import MODALITY_HEADS, BranchConfig
from nlsup_kit.encoder import POOLERS
from nlsup_kit.errors import NlsupError
from nlsup_kit.losses import MODALITY_LOSSES
from nlsup_kit.optimizers import OPTIMIZERS

MODALITIES = ("none", *BRANCH_MODALITIES)  # none: text-only SimCSE
MODALITY_PIPELINES = ("auto", "per-item", "cached")


@dataclass
class Recipe:
    """Every setting of a training run, in five sections (:data:`SECTIONS`); comments say what the paper used."""

    name: str = "custom"
    model: str = "minilm-l6"
    # ---- text: the SimCSE side, every recipe ----
    text_data: str = "wiki"  # wiki (wiki1m's first 20,000 lines, or what the data folder holds), wiki1m, nli, sick-nli, leipzig:<corpus>, a file
    # the language of text_data, whose STS-B dev split picks the checkpoint: en is SentEval's (the paper's); any
    # other is stsb_multi_mt's (nlsup_kit.data.multilingual)
    text_language: str = "en"
    max_text_examples: int | None = None  # None: the whole corpus
    bad_text: str = "fail"  # a corpus line that is not UTF-8: fail naming it, or skip (counted)
    supervised: bool = False  # triples (anchor, positive, hard negative) instead of dropout views
    batch_size: int = 64
    learning_rate: float = 3e-5
    # both updates' AdamW: reference-adamw is transformers 4.5.0's arithmetic, which the reference code trains
    # with (eps before the bias correction); torch-adamw is torch's (nlsup_kit.optimizers)
    optimizer: str = "reference-adamw"
    max_length: int = 32
    temperature: float = 0.05
    hard_negative_weight: float = 0.0
    pooler: str = "cls"  # SimCSE's --pooler_type: cls (through the MLP head), or one of the others (no head)
    eval_pooling: str | None = None  # None: SimCSE's convention (pooling_for_evaluation)
    # ---- modality: the image or audio side, shared by both ----
    modality: str = "none"  # none, image, audio
    # image: digits, imagenette, imagenet-subset:DIR (the paper's 60 x 500 from ImageNet-1k's train folder DIR),
    # a folder; audio: spoken-words, librispeech, a folder
    modality_data: str = "digits"
    modality_batch_size: int = 48
    modality_learning_rate: float = 1e-6
    modality_loss_weight: float = 0.05  # lambda
    modality_temperature: float = 0.07
    modality_loss: str = "released-supcon"  # supcon, simclr, released-supcon
    joint_loss: bool = False  # one summed-loss step instead of the paper's two separate updates
    # own: z = the branch's MLP head on [CLS] (the reference's unsupervised scripts); text-then-own: the text MLP
    # head first, then the branch's (its supervised scripts): nlsup_kit.embeddings.branch.MODALITY_HEADS
    modality_head: str = "own"
    # how image/audio batches are made: per-item (each view augmented in the loader on the CPU, as the reference
    # code does), cached (decoded once, each batch augmented on the training device: nlsup_kit.data.batch_augment),
    # auto (cached on a GPU, per-item on a CPU)
    modality_pipeline: str = "auto"
    # ---- image only ----
    vit_embeddings: str | None = None  # pretrained HF ViT whose embeddings start the image side
    # with modality_data=imagenet-subset:DIR, which of DIR's images: a file of .../<class>/<image> lines, as the
    # reference's VisualCSE/sampled-Imagenet.txt; None: that list (the paper's), shipped
    image_list: str | None = None
    image_size: int = 224
    patch_size: int = 16
    # ---- audio only ----
    audio_frames: int = 1024
    audio_mel_bins: int = 128
    audio_patch_size: int = 24
    spec_freq_mask: int = 48
    spec_time_mask: int = 192
    audio_mixup: float = 0.5
    # ---- run: how long, when to log, evaluate and save, where and how to compute ----
    epochs: int = 1
    max_steps: int | None = None  # stop early (None: epochs x steps per epoch)
    eval_steps: int = 125
    checkpoint_steps: int = 250  # a resumable checkpoint (optimizers, schedules, RNG, data position) this often
    log_steps: int = 25
    seed: int = 42
    device: str = "auto"
    # image/audio loader processes; None: on a GPU with the per-item pipeline one per core but one (at most 8,
    # shared by the processes of one machine), else none (the cached pipeline's host share is milliseconds, and on
    # a CPU the training itself needs the cores)
    num_workers: int | None = None
    # torch.compile the fixed-shape steps (CUDA graphs on a GPU; ~75 s to compile on an H100); None: on GPUs
    # with bf16 tensor cores (Ampere and later), where it measured 1.9x faster (benchmarks/RESULTS.md)
    compile: bool | None = None
    gather_negatives: bool = True  # under torchrun: negatives from the global batch, not each GPU's slice

    def pooling_for_evaluation(self) -> str:
        """``eval_pooling`` when set, else SimCSE's convention: a run trained through the MLP head (``cls``) is
        evaluated on the [CLS] vector before it (``cls_before_pooler``), any other run with its own pooler."""
        if self.eval_pooling is not None:
            return self.eval_pooling
        return "cls_before_pooler" if self.pooler == "cls" else self.pooler

    def pipeline_on(self, device: str) -> str:
        """``modality_pipeline`` on a device of this type (``cuda``, ``cpu``): ``auto`` is cached on a GPU."""
        if self.modality_pipeline != "auto":
            return self.modality_pipeline
        return "cached" if device == "cuda" else "per-item"

    def loader_workers(self, device: str, pipeline: str | None = None) -> int:
        """``num_workers`` on a device of this type for ``pipeline`` (the recipe's there by default); ``None``
        resolved as its comment says."""
        if self.num_workers is not None:
            return self.num_workers
        if device != "cuda" or (pipeline or self.pipeline_on(device)) != "per-item":
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        return max(1, min(8, per_process - 1))

    def validate(self) -> Recipe:
        problems = {
            "batch_size": self.batch_size < 2, "modality_batch_size": self.modality_batch_size < 2,
            "learning_rate": self.learning_rate <= 0, "modality_learning_rate": self.modality_learning_rate <= 0,
            "temperature": self.temperature <= 0, "modality_temperature": self.modality_temperature <= 0,
            "epochs": self.epochs < 1, "eval_steps": self.eval_steps < 1,
            "checkpoint_steps": self.checkpoint_steps < 1, "max_length": self.max_length < 2,
            "num_workers": self.num_workers is not None and self.num_workers < 0,
            "max_steps": self.max_steps is not None and self.max_steps < 1,
        }
        for key, bad in problems.items():
            if bad:
                hint = "must be at least 2 for a contrastive loss" if "batch" in key else "is out of range"
                raise NlsupError(f"setting {key}={getattr(self, key)} {hint}")
        choices = {"modality": MODALITIES, "modality_loss": MODALITY_LOSSES, "pooler": POOLERS,
                   "eval_pooling": (None, *POOLERS), "bad_text": ("fail", "skip"),
                   "text_language": STSB_MULTI_LANGUAGES, "modality_pipeline": MODALITY_PIPELINES,
                   "optimizer": OPTIMIZERS, "modality_head": MODALITY_HEADS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise NlsupError(f"setting {key}={getattr(self, key)!r} is not one of "
                                 f"{', '.join(str(a) for a in allowed)}")
        if self.image_list is not None and not self.modality_data.startswith(IMAGENET_SUBSET):
            raise NlsupError(f"setting image_list picks images of an ImageNet folder: use it with modality_data="
                             f"{IMAGENET_SUBSET}DIR, not {self.modality_data!r}")
        if self.modality_head == "text-then-own" and self.pooler != "cls":
            raise NlsupError(f"setting modality_head=text-then-own needs the text head, which pooler={self.pooler} "
                             f"trains without: use pooler=cls, or modality_head=own")
        return self

    def branch_config(self, hidden_size: int) -> BranchConfig:
        """The shape of the modality branch this recipe trains on a backbone ``hidden_size`` wide."""
        if self.modality == "image":
            return BranchConfig("image", hidden_size, self.patch_size, image_size=self.image_size,
                                head=self.modality_head)
        return BranchConfig(self.modality, hidden_size, self.audio_patch_size, mel_bins=self.audio_mel_bins,
                            frames=self.audio_frames, head=self.modality_head)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, path: Path) -> Recipe:
        """A saved recipe; a setting it predates takes the value the kit used then (:data:`BEFORE_SETTING`)."""
        values = {**BEFORE_SETTING, **json.loads(Path(path).read_text())}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# What runs saved before a setting existed did: torch's AdamW, and the branch's own head alone.
BEFORE_SETTING = {"optimizer": "torch-adamw", "modality_head": "own"}


# Which settings belong together: text for every recipe, the modality side, image-only, audio-only, the run.
SECTIONS = {
    "text": ("name", "model", "text_data", "text_language", "max_text_examples", "bad_text", "supervised",
             "batch_size", "learning_rate", "optimizer", "max_length", "temperature", "hard_negative_weight", "pooler",
             "eval_pooling"),
    "modality": ("modality", "modality_data", "modality_batch_size", "modality_learning_rate",
                 "modality_loss_weight", "modality_temperature", "modality_loss", "joint_loss", "modality_head",
                 "modality_pipeline"),
    "image": ("vit_embeddings", "image_list", "image_size", "patch_size"),
    "audio": ("audio_frames", "audio_mel_bins", "audio_patch_size", "spec_freq_mask", "spec_time_mask",
              "audio_mixup"),
    "run": ("epochs", "max_steps", "eval_steps", "checkpoint_steps", "log_steps", "seed", "device", "num_workers",
            "compile", "gather_negatives"),
}


def _paper(name: str, **settings) -> Recipe:
    return Recipe(name=name, text_data="wiki1m", eval_steps=125, **settings)


_BERT = dict(model="bert-base-uncased", batch_size=64, learning_rate=3e-5)
_ROBERTA = dict(model="roberta-base", batch_size=128, learning_rate=2e-5)
# SimCSE's unsupervised RoBERTa-large setting (princeton-nlp/SimCSE README.md, hyperparameter table)
_ROBERTA_LARGE = dict(model="roberta-large", batch_size=512, learning_rate=3e-5)
_IMAGE = dict(modality="image", modality_data="imagenette", modality_batch_size=48, modality_temperature=0.07)
_AUDIO = dict(modality="audio", modality_data="librispeech", modality_batch_size=48, modality_temperature=0.07)
_SUP = dict(model="bert-base-uncased", text_data="nli", supervised=True, batch_size=128, learning_rate=3e-5,
            epochs=3, eval_pooling="cls", modality_batch_size=48, modality_learning_rate=1e-7,
            modality_loss_weight=100.0, modality_temperature=0.05, modality_head="text-then-own")
# eval_steps=20: one STS-B dev evaluation, at the end of the notebooks' 20-step runs (it was the best of two,
# at steps 10 and 20, in every quick run measured: seeds 1, 2, 3 and 42), about 11 s saved per run on 2 cores.
# pooler="avg": the offline MiniLM is a sentence-transformers model trained to be used through the mean of its tokens
# (its 1_Pooling/config.json), so quick mode trains and compares the methods through that pooler; notebook 1 trains
# SimCSE's own [CLS] setting beside it (pooler=cls) for the pooler lesson.
_QUICK = dict(model="minilm-l6", pooler="avg", text_data="wiki", max_text_examples=640, batch_size=32, learning_rate=3e-5,
              eval_steps=20, log_steps=1, modality_batch_size=30, modality_learning_rate=1e-5,
              modality_loss_weight=0.1, modality_loss="supcon")

# Sized for one free Colab T4 session (the notebooks' class mode, the default on a GPU): BERT-base as in the
# paper, the 20,000-sentence head of wiki1m three times (936 steps at batch 64), STS-B dev every 125 steps as in
# the paper, and the offline digits and spoken words for the other side (the kit's settings, not the paper's).
_CLASS = dict(model="bert-base-uncased", text_data="wiki", batch_size=64, learning_rate=3e-5, epochs=3,
              eval_steps=125, log_steps=25, modality_batch_size=30, modality_learning_rate=1e-5,
              modality_loss_weight=0.1, modality_loss="supcon")
# Beyond English in class mode (the kit's settings): XLM-R base on 20,000 sentences of the German Wikipedia (a
# Leipzig corpus, nlsup_kit.data.leipzig), German STS-B dev picking the checkpoint; for another language set
# text_data and text_language together.
_GERMAN = dict(model="xlmr-base", text_data="leipzig:deu_wikipedia_2021_100K", text_language="de",
               max_text_examples=20_000)
_DIGITS = dict(modality="image", modality_data="digits", image_size=32, patch_size=8)
_SPOKEN_WORDS = dict(modality="audio", modality_data="spoken-words", audio_frames=128, audio_mel_bins=64,
                     audio_patch_size=16, spec_freq_mask=12, spec_time_mask=24)

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    _paper("simcse-bert-base", **_BERT),
    _paper("simcse-roberta-base", **_ROBERTA),
    _paper("simcse-roberta-large", **_ROBERTA_LARGE),
    _paper("visualcse-bert-base", **_BERT, **_IMAGE, modality_learning_rate=1e-6, modality_loss_weight=0.05,
           vit_embeddings="google/vit-base-patch16-224-in21k"),
    _paper("visualcse-roberta-base", **_ROBERTA, **_IMAGE, modality_learning_rate=1e-7, modality_loss_weight=0.2,
           vit_embeddings="google/vit-base-patch16-224-in21k"),
    _paper("audiocse-bert-base", **_BERT, **_AUDIO, modality_learning_rate=2e-7, modality_loss_weight=0.01),
    _paper("audiocse-roberta-base", **_ROBERTA, **_AUDIO, modality_learning_rate=2e-7, modality_loss_weight=0.02),
    Recipe(name="sup-simcse-bert-base", **_SUP),
    Recipe(name="sup-visualcse-bert-base", **_SUP, modality="image", modality_data="imagenette",
           vit_embeddings="google/vit-base-patch16-224-in21k"),
    Recipe(name="sup-audiocse-bert-base", **_SUP, modality="audio", modality_data="librispeech"),
    Recipe(name="quick-simcse", **_QUICK),
    Recipe(name="quick-visualcse", **_QUICK, **_DIGITS),
    Recipe(name="quick-audiocse", **_QUICK, **_SPOKEN_WORDS),
    Recipe(name="class-simcse", **_CLASS),
    Recipe(name="class-visualcse", **_CLASS, **_DIGITS),
    Recipe(name="class-audiocse", **_CLASS, **_SPOKEN_WORDS),
    Recipe(name="class-simcse-xlmr", **{**_CLASS, **_GERMAN}),
    Recipe(name="class-visualcse-xlmr", **{**_CLASS, **_GERMAN}, **_DIGITS),
]}

# Beyond English at the paper's size: a paper recipe with only the language changed. XLM-R base has RoBERTa-base's
# architecture, so the RoBERTa-base recipes give every other setting; a million German Wikipedia sentences stand
# where wiki1m's million English ones do, and German STS-B dev picks the checkpoint. The paper trains in English
# only, so these three settings are the kit's (nlsup_kit.paper.recipe_source says so).
LANGUAGE_SETTINGS = ("model", "text_data", "text_language")
IN_OTHER_LANGUAGES = {"simcse-xlmr-base-de": "simcse-roberta-base", "visualcse-xlmr-base-de": "visualcse-roberta-base"}
RECIPES.update({name: dataclasses.replace(RECIPES[base], name=name, model="xlmr-base",
                                          text_data="leipzig:deu_wikipedia_2021_1M", text_language="de")
                for name, base in IN_OTHER_LANGUAGES.items()})


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {', '.join(RECIPES)}"
        raise NlsupError(f"unknown recipe {name!r}{hint}")
    return dataclasses.replace(RECIPES[name])


def _convert(key: str, raw: str, annotation) -> object:
    kinds = typing.get_args(annotation) or (annotation,)
    if raw.lower() in ("none", "null") and type(None) in kinds:
        return None
    for kind in kinds:
        try:
            if kind is bool:
                if raw.lower() in ("true", "1", "yes"):
                    return True
                if raw.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            if kind in (int, float, str):
                return kind(raw)
        except ValueError:
            continue
    names = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
    raise NlsupError(f"--set {key}={raw}: expected {names}")


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """``["batch_size=32", "modality=image"]`` -> a new, validated recipe; unknown keys get a suggestion."""
    hints = typing.get_type_hints(Recipe)
    changes = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise NlsupError(f"--set {item!r}: expected key=value")
        if key not in hints:
            close = difflib.get_close_matches(key, hints, n=1)
            raise NlsupError(f"--set {key}: unknown setting" + (f"; did you mean {close[0]!r}?" if close else ""))
        changes[key] = _convert(key, raw.strip(), hints[key])
    return dataclasses.replace(recipe, **changes).validate()
