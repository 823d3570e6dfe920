"""The paper, its reference code, and where a learner can check each number the kit takes from them.

* :data:`PAPER_STS` / :func:`paper_scores`: the STS results reported by Jian, Gao & Vosoughi (NeurIPS 2022,
  arXiv:2209.09433; its BERT-base and RoBERTa-base rows as the reference READMEs print them): Spearman x 100 on the seven tasks, keyed by the kit's recipe names, so
  a notebook can set its own numbers beside them (labelled as the different settings they are).
* :data:`RECIPE_SOURCES` / :func:`recipe_source`: for every paper recipe of :mod:`nlsup_kit.recipes`, the file
  of the public reference code (:data:`REFERENCE_URL`, or SimCSE's, :data:`SIMCSE_URL`) and the line that shows
  each setting. The kit's tests check that every value here equals the recipe's.
* :data:`REFERENCE_RUNS`: the two training logs the reference code ships (time, steps, best checkpoint).
* :data:`UNTRAINED_BERT`: BERT-base before any training, the baseline every method starts from.

Files are read at the pinned commits :data:`COMMITS`, so line numbers stay valid; :attr:`Source.url` opens one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nlsup_kit.data.senteval import STS_TASKS
from nlsup_kit.models import RELEASED
from nlsup_kit.recipes import IN_OTHER_LANGUAGES, LANGUAGE_SETTINGS, RECIPES

PAPER_URL = "https://arxiv.org/abs/2209.09433"
# The reference run's first logged text loss: raw BERT-base's mean over its first 500 steps (logging_steps=500)
REFERENCE_FIRST_LOSS = (0.0096, "yiren-jian/NonLing-CSE VisualCSE/training_logs/unsup-VisualCSE-bert-base-uncased.txt "
                                "line 151, the mean over steps 1-500 (logging_steps=500, line 4) of a run started from "
                                "raw BERT-base")
# the paper's run length, as its updates are listed beside a short run's ("Total optimization steps = 15626")
PAPER_STEPS = 15626
PAPER_UPDATES = (f"one epoch of wiki1m ({PAPER_STEPS:,} steps: its 1,000,001 sentences at batch 64, rounded up, as "
                 "yiren-jian/NonLing-CSE VisualCSE/training_logs/unsup-VisualCSE-bert-base-uncased.txt lines 99 and 104 "
                 "count them; SimCSE's run_unsup_example.sh trains the same file at the same batch, lines 9 and 12)")
SIMCSE_PAPER_URL = "https://arxiv.org/abs/2104.08821"
REFERENCE_REPO = "yiren-jian/NonLing-CSE"  # the authors' code: VisualCSE/ and AudioCSE/, each built on SimCSE
REFERENCE_URL = "https://github.com/yiren-jian/NonLing-CSE"
SIMCSE_REPO = "princeton-nlp/SimCSE"
SIMCSE_URL = "https://github.com/princeton-nlp/SimCSE"
STSB_MULTI_MT_REPO = "PhilipMay/stsb-multi-mt"  # the multilingual STS-B's release (nlsup_kit.data.multilingual)
BERT_REPO = "google-research/bert"  # its README: what the uncased models do to accents (notebook 6)
UDHR_COPY_REPO = "lancejpollard/text"  # where the kit's copy of the UDHR preamble came from (nlsup_kit.data.parallel)
CITED_REPOS = (REFERENCE_REPO, SIMCSE_REPO, STSB_MULTI_MT_REPO, BERT_REPO, UDHR_COPY_REPO)
# The commits the line numbers below were read at (NonLing-CSE's last commit, 2023-01-30; SimCSE's, 2024-10-16).
COMMITS = {REFERENCE_REPO: "3e1e01cadc3cf6520f3427a7d2d4d97cc1d89a43",
           SIMCSE_REPO: "49fa580a853752ede55b8c76d9debf748e214d3f"}

_ROWS = {
    "simcse-bert-base": (68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25),
    "visualcse-bert-base": (71.16, 83.29, 75.13, 81.59, 80.05, 80.03, 71.23, 77.50),
    "audiocse-bert-base": (71.65, 84.27, 76.69, 83.22, 78.69, 79.94, 70.49, 77.85),
    "simcse-roberta-base": (70.16, 81.77, 73.24, 81.36, 80.65, 80.22, 68.56, 76.57),
    "visualcse-roberta-base": (70.41, 83.51, 74.87, 82.79, 81.67, 81.89, 69.95, 77.87),
    "audiocse-roberta-base": (68.44, 83.93, 75.77, 82.38, 82.07, 81.63, 70.56, 77.83),
    "simcse-roberta-large": (72.86, 83.99, 75.62, 84.77, 81.80, 81.98, 71.26, 78.90),
    "visualcse-roberta-large": (73.09, 84.77, 77.09, 85.47, 82.06, 83.26, 72.23, 79.71),
    "audiocse-roberta-large": (72.10, 84.30, 76.74, 85.11, 82.51, 82.94, 72.45, 79.45),
}

# recipe -> task (STS_TASKS names, and "avg") -> Spearman x 100
PAPER_STS: dict[str, dict[str, float]] = {
    recipe: dict(zip((*STS_TASKS, "avg"), row)) for recipe, row in _ROWS.items()}


def paper_scores(recipe: str, tasks=(*STS_TASKS, "avg")) -> dict[str, float] | None:
    """The paper's scores of ``recipe`` on ``tasks``, or None for a recipe the paper does not report."""
    row = PAPER_STS.get(recipe)
    return None if row is None else {task: row[task] for task in tasks}


@dataclass(frozen=True)
class Source:
    """One value and where to see it: ``file`` of ``repo`` at :data:`COMMITS`, ``line`` where one line shows it
    (None for a file too large to browse by line, such as a training log: search it for ``shows``)."""

    value: object
    file: str
    shows: str  # the text at that line, or the text to search the file for
    line: int | None = None
    repo: str = REFERENCE_REPO

    @property
    def url(self) -> str:
        anchor = f"#L{self.line}" if self.line else ""
        return f"https://github.com/{self.repo}/blob/{COMMITS[self.repo]}/{self.file}{anchor}"

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        return f"{self.repo}, {where}: {self.shows}"


# Also reported outside the paper (the same numbers, in files a learner can open).
PAPER_ROWS_ALSO_IN: dict[str, Source] = {
    "visualcse-bert-base": Source(77.50, "VisualCSE/README.md", "| RTX-6000 | 71.16 | 83.29 | ... | 77.50 |", 76),
    "visualcse-roberta-base": Source(77.87, "VisualCSE/README.md", "| RTX-6000 | 70.41 | 83.51 | ... | 77.87 |", 86),
    "audiocse-bert-base": Source(77.85, "AudioCSE/README.md", "| RTX-6000 | 71.65 | 84.27 | ... | 77.85 |", 63),
    "audiocse-roberta-base": Source(77.83, "AudioCSE/README.md", "| RTX-6000 | 68.44 | 83.93 | ... | 77.83 |", 73),
    "simcse-bert-base": Source(76.25, "README.md", "[princeton-nlp/unsup-simcse-bert-base-uncased](...) | 76.25", 93,
                               SIMCSE_REPO),
    "simcse-roberta-base": Source(76.57, "README.md", "[princeton-nlp/unsup-simcse-roberta-base](...) | 76.57", 95,
                                  SIMCSE_REPO),
    "simcse-roberta-large": Source(78.90, "README.md", "[princeton-nlp/unsup-simcse-roberta-large](...) | 78.90", 96,
                                   SIMCSE_REPO),
}

# ---- where each paper recipe's settings come from -------------------------------------------------------------

_TRAIN_FILES = {"data/wiki1m_for_simcse.txt": "wiki1m", "data/nli_for_simcse.csv": "nli"}


def _flag(file: str, line: int, text: str, convert=str, repo: str = REFERENCE_REPO) -> Source:
    """A ``--flag value`` (or ``for NAME in value``) line; the value is read from the quoted text itself."""
    raw = text.split()[-1]
    return Source(_TRAIN_FILES.get(raw, raw) if convert is str else convert(raw), file, text, line, repo)


# The lines of the reference scripts the table quotes (whitespace stripped), by (repo, file) and line number.
_UNSUP_TRAIN = {33: "--model_name_or_path bert-base-uncased", 34: "--train_file data/wiki1m_for_simcse.txt",
                36: "--num_train_epochs 1", 37: "--per_device_train_batch_size 64", 38: "--learning_rate 3e-5",
                39: "--max_seq_length 32", 43: "--eval_steps 125", 44: "--pooler_type cls", 47: "--temp 0.05"}
_SUP_TRAIN = {1: "for IMAGE_BSZ in 48", 3: "for SUPCON_TEMPERATURE in 0.05", 5: "for IMAGE_LEARNING_RATE in 1e-7",
              7: "for IMAGE_LOSS_WEIGHT in 100.0", 21: "--model_name_or_path bert-base-uncased",
              22: "--train_file data/nli_for_simcse.csv", 24: "--num_train_epochs 3",
              25: "--per_device_train_batch_size 128", 26: "--learning_rate 3e-5", 27: "--max_seq_length 32",
              31: "--eval_steps 125", 32: "--pooler_type cls", 34: "--temp 0.05", 51: "--pooler cls"}
_SCRIPT_LINES = {
    (REFERENCE_REPO, "VisualCSE/run_unsup_example.sh"): _UNSUP_TRAIN,
    (REFERENCE_REPO, "AudioCSE/run_unsup_example.sh"): _UNSUP_TRAIN,  # the same file, byte for byte
    (REFERENCE_REPO, "VisualCSE/run_sup_example.sh"): _SUP_TRAIN,
    (REFERENCE_REPO, "AudioCSE/run_sup_example.sh"): _SUP_TRAIN,  # the same file, byte for byte
    (SIMCSE_REPO, "run_unsup_example.sh"): {
        8: "--model_name_or_path bert-base-uncased", 9: "--train_file data/wiki1m_for_simcse.txt",
        11: "--num_train_epochs 1", 12: "--per_device_train_batch_size 64", 13: "--learning_rate 3e-5",
        14: "--max_seq_length 32", 18: "--eval_steps 125", 19: "--pooler_type cls", 22: "--temp 0.05"},
}


def _text_flags(script: str, repo: str = REFERENCE_REPO) -> dict[str, Source]:
    """The text flags of a script's ``python train.py`` call (the value read from each quoted line)."""
    lines = _SCRIPT_LINES[(repo, script)]
    keys = {"model": "--model_name_or_path", "text_data": "--train_file", "epochs": "--num_train_epochs",
            "batch_size": "--per_device_train_batch_size", "learning_rate": "--learning_rate",
            "max_length": "--max_seq_length", "eval_steps": "--eval_steps", "pooler": "--pooler_type",
            "temperature": "--temp"}
    kinds = {"epochs": int, "batch_size": int, "max_length": int, "eval_steps": int, "learning_rate": float,
             "temperature": float}
    out = {}
    for key, flag in keys.items():
        line = next(n for n, text in lines.items() if text.startswith(flag + " "))
        out[key] = _flag(script, line, lines[line], kinds.get(key, str), repo)
    return out


def _optimizer(folder: str, repo: str = REFERENCE_REPO) -> Source:
    """The AdamW a trainers.py imports: transformers' (the version each README pins), not torch's."""
    file, version = ("simcse/trainers.py", "transformers==4.2.1, requirements.txt line 1, whose AdamW.step is "
                     "4.5.0's") if repo == SIMCSE_REPO else (f"{folder}/src/trainers.py", "transformers 4.5.0")
    return Source("reference-adamw", file, f"from transformers.optimization import Adafactor, AdamW, get_scheduler "
                  f"({version}: eps added to sqrt(v) before the bias correction, optimization.py lines 345-355)",
                  76, repo)


_MODEL_FILES = {"VisualCSE": ("VisualCSE/src/models.py", 351, 353), "AudioCSE": ("AudioCSE/src/models.py", 412, 414)}


def _own_head(folder: str) -> Source:
    """The unsupervised scripts pass --mlp_only_train: the image/audio [CLS] goes through image_mlp alone."""
    models, own, _ = _MODEL_FILES[folder]
    return Source("own", f"{folder}/run_unsup_example.sh", f"--mlp_only_train (so {models} line {own}: "
                  "pooler_output = self.image_mlp(pooler_output))", 45)


def _text_then_own_head(folder: str) -> Source:
    """Without --mlp_only_train (run_sup_example.sh has none) the text MLP comes first, then image_mlp."""
    models, _, text = _MODEL_FILES[folder]
    return Source("text-then-own", models, "else: pooler_output = self.mlp(pooler_output); the next line: "
                  "pooler_output = self.image_mlp(pooler_output) (run_sup_example.sh passes no --mlp_only_train)",
                  text)


def _sup_side(script: str) -> dict[str, Source]:
    """run_sup_example.sh: the text flags and the four ``for`` loops that fix the modality settings."""
    lines = _SCRIPT_LINES[(REFERENCE_REPO, script)]
    out = {**_text_flags(script), "optimizer": _optimizer(script.split("/")[0])}
    out["supervised"] = Source(True, script.split("/")[0] + "/train.py",
                               "elif len(column_names) == 3:  # the next line: '# Pair datasets with hard negatives' "
                               "(nli_for_simcse.csv has three columns)", 431)
    out["eval_pooling"] = _flag(script, 51, lines[51])
    for key, line, kind in (("modality_batch_size", 1, int), ("modality_temperature", 3, float),
                            ("modality_learning_rate", 5, float), ("modality_loss_weight", 7, float)):
        out[key] = _flag(script, line, lines[line], kind)
    out["modality_loss"] = _released_supcon(script.split("/")[0], script, 44)
    out["modality_head"] = _text_then_own_head(script.split("/")[0])
    return out


def _released_supcon(folder: str, script: str, line: int) -> Source:
    return Source("released-supcon", script, f"--new_supcon (with method SupCon): new_SupCon_forward in "
                  f"{folder}/src/trainers.py", line)


def _command(readme: str, line: int, command: str, folder: str) -> dict[str, Source]:
    """The README's ``bash run_unsup_example.sh BSZ T LR LAMBDA METHOD WD`` (the script's ``$1``..``$6``)."""
    args = command.split("run_unsup_example.sh", 1)[1].split()
    out = {key: Source(kind(args[i]), readme, command, line) for i, (key, kind) in enumerate(
        (("modality_batch_size", int), ("modality_temperature", float), ("modality_learning_rate", float),
         ("modality_loss_weight", float)))}
    assert args[4] == "SupCon"
    out["modality_loss"] = _released_supcon(folder, f"{folder}/run_unsup_example.sh", 57)
    out["modality_head"] = _own_head(folder)
    return out


def _roberta_text(readme: str, line: int, folder: str) -> dict[str, Source]:
    """The README's instruction for RoBERTa-base: edit run_unsup_example.sh's model, learning rate, batch size."""
    text = ("replacing `bert-base-uncased` with `roberta-base`, learning rate to `2e-5` and batch size `128`")
    return {**_text_flags(f"{folder}/run_unsup_example.sh"), "optimizer": _optimizer(folder),
            "model": Source("roberta-base", readme, text, line), "learning_rate": Source(2e-5, readme, text, line),
            "batch_size": Source(128, readme, text, line)}


_VIT_BASE = "google/vit-base-patch16-224-in21k"
_IMAGE = {
    "vit_embeddings": Source(_VIT_BASE, "VisualCSE/src/models.py",
                             f'VisionTransformer = ViTModel.from_pretrained("{_VIT_BASE}")', 291),
    "patch_size": Source(16, "VisualCSE/src/models.py", f'ViTModel.from_pretrained("{_VIT_BASE}") (patch16)', 291),
    "image_size": Source(224, "VisualCSE/src/trainers.py", "transforms.RandomResizedCrop(size=224, scale=(0.2, 1.))",
                         468),
}
_AUDIO_TRAINER = "AudioCSE/src/trainers.py"
_AUDIO = {
    "audio_mel_bins": Source(128, _AUDIO_TRAINER, "args['num_mel_bins'] = 128", 458),
    "audio_frames": Source(1024, _AUDIO_TRAINER, "args['target_length'] = 1024", 459),
    "spec_freq_mask": Source(48, _AUDIO_TRAINER, "args['freqm'] = 48", 460),
    "spec_time_mask": Source(192, _AUDIO_TRAINER, "args['timem'] = 192", 461),
    "audio_mixup": Source(0.5, _AUDIO_TRAINER, "args['mixup'] = 0.5", 462),
    "audio_patch_size": Source(24, "AudioCSE/src/models.py",
                               "self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=24, stride=24)", 293),
}
_V_README, _A_README = "VisualCSE/README.md", "AudioCSE/README.md"
_SIMCSE_README = "README.md"

# recipe -> setting (a field of nlsup_kit.recipes.Recipe) -> the value and where the reference code shows it
RECIPE_SOURCES: dict[str, dict[str, Source]] = {
    "simcse-bert-base": {**_text_flags("run_unsup_example.sh", SIMCSE_REPO), "optimizer": _optimizer("", SIMCSE_REPO)},
    "simcse-roberta-base": {**_roberta_text(_V_README, 78, "VisualCSE")},
    "simcse-roberta-large": {
        **_text_flags("run_unsup_example.sh", SIMCSE_REPO), "optimizer": _optimizer("", SIMCSE_REPO),
        "model": Source("roberta-large", _SIMCSE_README, "[princeton-nlp/unsup-simcse-roberta-large](...) | 78.90",
                        96, SIMCSE_REPO),
        "batch_size": Source(512, _SIMCSE_README, "| Batch size    | 64          | 512            | 512       |",
                             242, SIMCSE_REPO),
        "learning_rate": Source(3e-5, _SIMCSE_README, "| Learning rate (large) | 1e-5 | 3e-5 | 1e-5 | "
                                "(Unsup. RoBERTa)", 244, SIMCSE_REPO)},
    "visualcse-bert-base": {
        **_text_flags("VisualCSE/run_unsup_example.sh"), "optimizer": _optimizer("VisualCSE"),
        **_command(_V_README, 69, "CUDA_VISIBLE_DEVICES=0 bash run_unsup_example.sh 48 0.07 1e-6 0.05 SupCon 0.0",
                   "VisualCSE"),
        **_IMAGE},
    "visualcse-roberta-base": {
        **_roberta_text(_V_README, 78, "VisualCSE"),
        **_command(_V_README, 80, "CUDA_VISIBLE_DEVICES=0 bash run_unsup_example.sh 48 0.07 1e-7 0.2 SupCon 0.0",
                   "VisualCSE"),
        **_IMAGE,
        "vit_embeddings": Source(_VIT_BASE, "VisualCSE/training_logs/unsup-VisualCSE-roberta-base.txt",
                                 f'"_name_or_path": "{_VIT_BASE}"', 70)},
    "audiocse-bert-base": {
        **_text_flags("AudioCSE/run_unsup_example.sh"), "optimizer": _optimizer("AudioCSE"),
        **_command(_A_README, 56, "CUDA_VISIBLE_DEVICES=0 bash run_unsup_example.sh 48 0.07 2e-7 0.01 SupCon 0.0",
                   "AudioCSE"),
        **_AUDIO},
    "audiocse-roberta-base": {
        **_roberta_text(_A_README, 65, "AudioCSE"),
        **_command(_A_README, 67, "CUDA_VISIBLE_DEVICES=0 bash run_unsup_example.sh 48 0.07 2e-7 0.02 SupCon 0.0  "
                   "### 48 0.07 3e-6 0.2 SupCon 0.0", "AudioCSE"),
        **_AUDIO},
    "sup-simcse-bert-base": {key: s for key, s in _sup_side("VisualCSE/run_sup_example.sh").items()
                             if not key.startswith("modality")},
    "sup-visualcse-bert-base": {**_sup_side("VisualCSE/run_sup_example.sh"), **_IMAGE},
    "sup-audiocse-bert-base": {**_sup_side("AudioCSE/run_sup_example.sh"), **_AUDIO},
}

# recipe -> the pooler its authors score the released model with (the README's evaluation command), which
# Recipe.pooling_for_evaluation derives from SimCSE's convention
EVALUATION_POOLERS: dict[str, Source] = {
    "visualcse-bert-base": Source("cls_before_pooler", _V_README, "python evaluation.py --model_name_or_path "
                                  "gcyzsl/unsup-VisualCSE-bert-base-uncased --pooler cls_before_pooler --task_set sts "
                                  "--mode test", 93),
    "audiocse-bert-base": Source("cls_before_pooler", _A_README, "python evaluation.py --model_name_or_path "
                                 "gcyzsl/unsup-AudioCSE-bert-base-uncased --pooler cls_before_pooler --task_set sts "
                                 "--mode test", 80)}

# The paper's image data as the method readings set it beside a run's (notebooks 2, 4 and 7)
PAPER_IMAGE_DATA = "60 ImageNet classes x 500 at 224 px, VisualCSE/README.md line 64 and VisualCSE/src/trainers.py line 468"

# recipe -> the number format its script trains in (fp16 with a gradient scaler; the kit: bf16 autocast on GPUs
# with bf16 tensor cores, fp16 with a scaler on older ones, fp32 on a CPU: nlsup_kit.device.autocast_dtype)
REFERENCE_PRECISION: dict[str, Source] = {name: Source("fp16", f"{folder}/run_unsup_example.sh", "--fp16", 58)
                                          for name, folder in (("visualcse-bert-base", "VisualCSE"),
                                                               ("audiocse-bert-base", "AudioCSE"))}

# A paper recipe moved to another language keeps its base recipe's sources for every setting but the language's
# (nlsup_kit.recipes.LANGUAGE_SETTINGS), which are the kit's.
RECIPE_SOURCES.update({name: {key: source for key, source in RECIPE_SOURCES[base].items() if key not in LANGUAGE_SETTINGS}
                       for name, base in IN_OTHER_LANGUAGES.items()})

# What a learner should know beside the table: where the kit's recipe and the reference code part ways.
RECIPE_NOTES: dict[str, str] = {
    **{name: f"{base}'s settings in another language: " + ", ".join(
           f"{key} {getattr(RECIPES[name], key)}" for key in LANGUAGE_SETTINGS) +
           " are the kit's (the paper trains in English only)" for name, base in IN_OTHER_LANGUAGES.items()},
    "simcse-roberta-base": "the text settings of VisualCSE's RoBERTa-base run (a like-for-like baseline); SimCSE's "
                           "own unsupervised RoBERTa-base, which the paper's SimCSE row reports, used batch 512 and "
                           "learning rate 1e-5 (princeton-nlp/SimCSE, README.md lines 242-243)",
    "simcse-roberta-large": "SimCSE's own settings; the reference code ships no RoBERTa-large script or log",
    "visualcse-roberta-base": "the released VisualCSE/src/models.py loads google/vit-large-patch16-224-in21k for "
                              "RoBERTa (line 374), but the RoBERTa-base training log loaded vit-base (line 70)",
    "audiocse-bert-base": "no AudioCSE training log is released (AudioCSE/training_logs/ holds only a README, whose "
                          "command line 5 repeats VisualCSE's 1e-6 0.05)",
    "audiocse-roberta-base": "AudioCSE/README.md line 65 says 'To train VisualCSE with roberta-base' (sic); line 67 "
                             "comments out an alternative, 48 0.07 3e-6 0.2",
    "sup-simcse-bert-base": "the text side of the reference code's supervised script; SimCSE's own supervised run "
                            "used 4 GPUs x 128 and learning rate 5e-5 (princeton-nlp/SimCSE, run_sup_example.sh "
                            "lines 6, 23, 24)",
}


def recipe_sources(recipe: str) -> dict[str, Source]:
    """Setting -> :class:`Source` for a paper recipe; empty for the kit's own recipes (quick-*, class-*)."""
    from nlsup_kit.recipes import get_recipe

    get_recipe(recipe)  # an unknown name: one line naming the choices
    return dict(RECIPE_SOURCES.get(recipe, {}))


def recipe_source(recipe: str, setting: str | None = None) -> str:
    """A printable line saying where ``recipe``'s settings (or its one ``setting``) come from, file by file."""
    sources = recipe_sources(recipe)
    if not sources:
        return f"{recipe}: the kit's own settings (nlsup_kit/recipes.py), not from the paper's code"
    if setting is not None:
        if setting not in sources:
            return f"{recipe}.{setting}: the kit's own setting (nlsup_kit/recipes.py), not from the paper's code"
        return f"{recipe}.{setting}={sources[setting].value!r}: {sources[setting]}"
    by_file: dict[tuple[str, str], list[str]] = {}
    for key, source in sources.items():
        at = f" l.{source.line}" if source.line else ""
        by_file.setdefault((source.repo, source.file), []).append(f"{key}={source.value!r}{at}")
    parts = [f"{repo}, {file}: {', '.join(items)}" for (repo, file), items in by_file.items()]
    note = f" (note: {RECIPE_NOTES[recipe]})" if recipe in RECIPE_NOTES else ""
    return f"{recipe}: " + "; ".join(parts) + note


# ---- the reference code's own runs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceRun:
    """One of the training logs shipped with the reference code (one epoch of wiki1m, evaluation every 125 steps
    on STS-B dev, the best checkpoint kept), each on one GPU (`n_gpu: 1` in the log; an RTX-6000 by the
    README) with torch 1.10 and transformers 4.5."""

    recipe: str
    train_seconds: float
    steps: int
    best_step: int
    best_stsb_dev: float  # Spearman x 100 on STS-B dev at best_step
    log: str
    sources: tuple[Source, ...]

    def __str__(self) -> str:
        return (f"{self.recipe}: {self.train_seconds:,.0f} s for {self.steps:,} steps on one GPU (an RTX-6000 by its "
                f"README), best STS-B dev {self.best_stsb_dev:.2f} at step {self.best_step:,} ({REFERENCE_REPO}, {self.log})")


_HARDWARE = (Source("RTX-6000", _V_README, "We tested our code on Nvidia RTX-6000 (for base and unsupervised models)",
                    13),
             Source("torch 1.10, transformers 4.5", _V_README, "We use `python=3.8`, `pytorch-1.10` with `cuda-11.3`, "
                    "..., `transformers-4.5.0`.", 11))
_BERT_LOG = "VisualCSE/training_logs/unsup-VisualCSE-bert-base-uncased.txt"
_ROBERTA_LOG = "VisualCSE/training_logs/unsup-VisualCSE-roberta-base.txt"
_SAVES_BEST_ONLY = Source("the last save is the best", "VisualCSE/src/trainers.py",
                          "def _save_checkpoint: 'only save the best-validation checkpoints'", 162)


def _logged_run(recipe: str, log: str, seconds: float, steps: int, best_step: int, score: float,
                lines: tuple[int, int, int, int]) -> ReferenceRun:
    """A run read off its training log: each number once, quoted as the log prints it (``lines``: where the
    runtime, the step count, the example count and the best score stand)."""
    runtime_at, steps_at, examples_at, score_at = lines
    best = round(100 * score, 2)
    return ReferenceRun(recipe, seconds, steps, best_step, best, log, (
        Source(seconds, log, f"train_runtime = {seconds}", runtime_at),
        Source(steps, log, f"Total optimization steps = {steps}", steps_at),
        Source(1000001, log, "Num examples = 1000001", examples_at),
        Source(best_step, log, f"{best_step}/{steps} [...] Saving model checkpoint (the last save before training ends)"),
        Source(best, log, f"Loading best model from ... (score: {score})", score_at),
        _SAVES_BEST_ONLY, *_HARDWARE))


REFERENCE_RUNS: dict[str, ReferenceRun] = {
    "visualcse-bert-base": _logged_run("visualcse-bert-base", _BERT_LOG, 11692.114, 15626, 2125, 0.8364591679967303,
                                       (822, 104, 99, 754)),
    "visualcse-roberta-base": _logged_run("visualcse-roberta-base", _ROBERTA_LOG, 5725.9719, 7813, 875,
                                          0.8454911866853387, (500, 109, 104, 430)),
}


# ---- BERT-base before training -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    """STS scores (Spearman x 100, the seven tasks and their mean) of a model nobody trained for sentences."""

    label: str
    pooling: str
    scores: dict[str, float]
    source: str


def _scores(*row: float) -> dict[str, float]:
    return dict(zip((*STS_TASKS, "avg"), row))


UNTRAINED_BERT: dict[str, Baseline] = {
    "simcse-paper": Baseline(
        "bert-base-uncased, SimCSE paper's 'BERTbase (first-last avg.)'",
        "avg_embeddings_last: the mean over tokens of (static word embeddings + last layer) / 2; princeton-nlp/SimCSE "
        "README.md line 201 says the paper's 'first-last' averaged the last layer and the static word embedding, "
        "as yiren-jian/NonLing-CSE VisualCSE/evaluation.py line 128 computes it",
        _scores(39.70, 59.38, 49.67, 66.03, 66.19, 53.87, 62.06, 56.70),
        f"SimCSE paper ({SIMCSE_PAPER_URL}), Table 5 (v4), row 'BERTbase (first-last avg.)'"),
}


SUPERVISED_SIMCSE_BERT_BASE: dict[str, float] = _scores(75.30, 84.67, 80.19, 85.40, 80.82, 84.26, 80.39, 81.58)
SUPERVISED_SIMCSE_SOURCE = Source(81.58, "README.md", "| 75.30 | 84.67 | 80.19 | 85.40 | 80.82 | 84.26 | 80.39 | 81.58 | "
                                  "(evaluation of princeton-nlp/sup-simcse-bert-base-uncased)", 189, SIMCSE_REPO)


# ---- the released models ---------------------------------------------------------------------------------------

# Where the authors list each released model: SimCSE's README table, and the model lists and supervised commands of
# VisualCSE/README.md and AudioCSE/README.md.
_LISTED_AT = {"simcse-bert-base": 93, "simcse-roberta-base": 95, "simcse-roberta-large": 96, "sup-simcse-bert-base": 97,
              "visualcse-bert-base": 98, "visualcse-roberta-base": 99, "visualcse-roberta-large": 100,
              "sup-visualcse-bert-base": 105, "audiocse-bert-base": 85, "audiocse-roberta-base": 86,
              "audiocse-roberta-large": 87, "sup-audiocse-bert-base": 92}


def _listed(recipe: str) -> Source:
    hub_id, line = RELEASED[recipe].hub_id, _LISTED_AT[recipe]
    if hub_id.startswith("princeton-nlp/"):
        return Source(hub_id, "README.md", f"| [{hub_id}](https://huggingface.co/{hub_id}) | ...", line, SIMCSE_REPO)
    folder = "VisualCSE" if "VisualCSE" in hub_id else "AudioCSE"
    shows = f"python evaluation.py --model_name_or_path {hub_id} --pooler cls ..." if recipe.startswith("sup-") else hub_id
    return Source(hub_id, f"{folder}/README.md", shows, line)


# recipe -> where its authors list the released model (nlsup_kit.models.RELEASED holds the hub ids and poolers)
RELEASED_SOURCES: dict[str, Source] = {recipe: _listed(recipe) for recipe in RELEASED}


def published_scores(recipe: str) -> tuple[dict[str, float], str] | None:
    """The published STS scores of the model ``released:<recipe>`` and where they are printed; None where no
    source here prints them (the supervised VisualCSE and AudioCSE models)."""
    if recipe in PAPER_STS:
        row = PAPER_ROWS_ALSO_IN.get(recipe)
        if row is not None and row.repo == REFERENCE_REPO:  # the authors' README prints the whole row
            return PAPER_STS[recipe], (f"every task in {row} (the run its script gives \"to faithfully reproduce the "
                                       f"results in our paper\", {PAPER_URL}, as the same README says above it; "
                                       "the README prints no score of the uploaded checkpoint itself, so this is the "
                                       "run's score, which the checkpoint need not match to the digit)")
        if recipe.startswith("simcse-"):
            average = f"; the seven-task average, {row.value:.2f}, also in {row}" if row is not None else ""
            return PAPER_STS[recipe], (f"every task in SimCSE's paper, Table 5 (v4), {SIMCSE_PAPER_URL}, the baseline "
                                       f"row the paper sets its methods beside, {PAPER_URL}{average}")
        return PAPER_STS[recipe], f"the results the paper reports, {PAPER_URL}"
    if recipe == "sup-simcse-bert-base":
        return SUPERVISED_SIMCSE_BERT_BASE, str(SUPERVISED_SIMCSE_SOURCE)
    return None


def beside_published(recipe: str, measured: dict[str, float]) -> str:
    """Lines setting the scores measured on ``released:<recipe>`` (task -> Spearman x 100) beside the published
    ones, with the difference, and where the published ones are printed."""
    published = published_scores(recipe)
    listed = RELEASED_SOURCES[recipe]
    if published is None:
        return (f"released:{recipe} ({listed.value}, listed in {listed}): no source here publishes its STS "
                f"scores; measured above")
    scores, source = published
    rows = [f"{task:16} measured {measured[task]:6.2f}  published {scores[task]:6.2f}  difference "
            f"{measured[task] - scores[task]:+6.2f}" for task in measured if task in scores]
    return "\n".join([f"released:{recipe} ({listed.value}, listed in {listed}) beside its published scores "
                      f"({source}):", *rows])


def own_run_commands(family: str = "bert-base", seeds: Sequence[int] = (42, 1, 2)) -> str:
    """What would produce the kit's own GPU numbers for ``family``, which the kit has not produced yet: every
    method over several ``seeds``, since one run per method cannot measure how far its runs spread."""
    loop = " ".join(str(seed) for seed in seeds)

    def over_seeds(recipe: str) -> str:
        return (f"    for seed in {loop}; do nlsup train --recipe {recipe} --set seed=$seed --output-dir "
                f"build/runs/{recipe}-seed$seed && nlsup eval-sts --model build/runs/{recipe}-seed$seed/best; done")

    methods = ("simcse", "visualcse", "audiocse")
    return "\n".join([
        f"the kit's own numbers: not run yet on a GPU. To produce them, {len(seeds)} seeds of every method:",
        "  class mode (sized for one free Colab T4 session per run, projected): run this notebook on a GPU runtime "
        "(MODE is class there; SimCSE and VisualCSE), or, for every method,",
        *(over_seeds(f"class-{method}") for method in methods),
        "  full mode (the paper's settings, hours per run):",
        *(over_seeds(f"{method}-{family}") for method in methods)])
