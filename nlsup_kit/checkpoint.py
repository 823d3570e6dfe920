"""A run folder on disk: every file name, how a save is written so a kill never leaves half of one, and how
runs are read back.

A run folder holds ``recipe.json``, ``metrics.jsonl``, ``result.json`` (once finished) and two saves, ``best/``
and ``checkpoint/``. A save is written into ``<save>.tmp``, closed by ``manifest.json`` (every file's size and
sha256, written last), then swapped in by two renames; a kill between them leaves ``<save>.old``, which
:func:`recover` puts back. A save that cannot fit (checked before it starts against the previous save's size, or
failing with a full disk halfway) is one line, its ``.tmp`` removed and the previous save untouched. Reading a save checks it against its manifest first, so a truncated file or a file
from another save (a crash between two writes, a hand copy) is one line naming it, never a silent mix.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from nlsup_kit.data.disk import MB, disk_problem, free_megabytes, require_space
from nlsup_kit.errors import NlsupError, read_back


# The run folder is a low-level format: it knows what it stores by these two faces, not by the classes above it
# (the encoder, the branch, the recipe), which import it.
class Saves(Protocol):
    def save(self, directory: Path) -> object: ...


class SavedRecipe(Protocol):
    """A dataclass of settings (nlsup_kit.recipes.Recipe) written as JSON."""

    def to_json(self) -> str: ...


HEAD_FILE = "head.safetensors"  # the MLP head, beside the HF backbone's files
BRANCH_FILE = "modality.safetensors"  # the image/audio branch's weights
BRANCH_CONFIG_FILE = "modality.json"  # and its shape
RECIPE_FILE = "recipe.json"
STATE_FILE = "training_state.pt"  # optimizers, schedules, random states, data position: checkpoint/ only
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
BEST_DIR, CHECKPOINT_DIR = "best", "checkpoint"
RUN_FILES = (RECIPE_FILE, METRICS_FILE, RESULT_FILE, BEST_DIR, CHECKPOINT_DIR)
# What a resumed run may change: these decide only when the kit logs, evaluates and saves. Evaluation runs the
# encoder without dropout and draws no random numbers, so the weights come out as if never interrupted.
RESUMABLE_SETTINGS = ("log_steps", "eval_steps", "checkpoint_steps")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def saved_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)


def write_manifest(folder: Path) -> None:
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)}
             for name in saved_files(folder)}
    partial = folder / (MANIFEST_FILE + ".part")
    partial.write_text(json.dumps({"format": 1, "files": files}, indent=1))
    partial.rename(folder / MANIFEST_FILE)


def verify(folder: str | Path, hint: str) -> None:
    """Check every file of a run's save against its manifest: one line naming the first that does not belong.
    A folder saved by hand (``SentenceEncoder.save``: no recipe, no manifest) has nothing to check."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.exists() and not (folder / RECIPE_FILE).exists():
        return
    listed = read_back(manifest, lambda p: json.loads(p.read_text())["files"],
                       "the list of this save's files, written last", hint)
    for name, expected in listed.items():
        path = folder / name
        if not path.is_file():
            raise NlsupError(f"{path}: missing; {MANIFEST_FILE} lists it as part of this save ({hint})")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise NlsupError(f"{path}: {size:,} bytes where the save wrote {expected['bytes']:,} (truncated, or "
                             f"from another save) ({hint})")
        if sha256(path) != expected["sha256"]:
            raise NlsupError(f"{path}: not the file this save wrote (its sha256 differs from {MANIFEST_FILE}: "
                             f"from another save, or changed since) ({hint})")
    for name in saved_files(folder):
        if name not in listed:
            raise NlsupError(f"{folder / name}: not part of this save ({MANIFEST_FILE} does not list it: copied in "
                             f"from another save?) ({hint})")


def sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


ELSEWHERE = "choose an --output-dir on a disk you can write to"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def with_margin(size: int) -> int:
    """``size`` bytes and room for file system blocks and small files: 2% and 1 MB."""
    return int(size * 1.02) + MB


def space_for(folder: Path, estimate: int) -> int:
    """Bytes a new save of ``folder`` needs while the previous one still stands: the previous save's size when
    there is one (it is what the next writes), else ``estimate``, :func:`with_margin`."""
    return with_margin(folder_bytes(folder) or estimate)


def require_run_space(output_dir: Path, best_estimate: int, checkpoint_estimate: int) -> None:
    """Before the first step rather than at the first save: room for both saves (best/, checkpoint/) and for a
    new checkpoint written beside the old one, less what the folder already holds; sizes as :func:`space_for`."""
    best, checkpoint = folder_bytes(output_dir / BEST_DIR), folder_bytes(output_dir / CHECKPOINT_DIR)
    peak = (best or best_estimate) + 2 * (checkpoint or checkpoint_estimate)
    needed = with_margin(peak - best - checkpoint)
    if free_megabytes(output_dir) * MB < needed:
        raise NlsupError(f"{output_dir}: this run's saves need {needed / MB:,.1f} MB more (best/ "
                         f"{(best or best_estimate) / MB:,.1f} MB, checkpoint/ {(checkpoint or checkpoint_estimate) / MB:,.1f}"
                         f" MB, and each new checkpoint beside the previous one), {free_megabytes(output_dir):,.1f} MB "
                         f"free; free some space, or {ELSEWHERE}")


def save_atomically(folder: Path, write: Callable[[Path], None], estimate: int = 0) -> None:
    """``write(tmp)`` fills a fresh temporary folder; the manifest closes it; two renames swap it in. Short of
    space (see :func:`space_for`), nothing is written; a disk that fills anyway loses only the ``.tmp``."""
    tmp, old = sibling(folder, ".tmp"), sibling(folder, ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    needed = space_for(folder, estimate)
    require_space(folder.parent, needed, ELSEWHERE)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        write_manifest(tmp)
    except BaseException as err:
        # safetensors and torch.save report a full disk in words of their own ("unexpected pos ..."): a disk
        # left with under 1 MB free at the failure is read as full, whatever the writer said
        full = isinstance(err, Exception) and free_megabytes(folder.parent) < 1
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise disk_problem(err, folder.parent, needed, ELSEWHERE) from None
        if full:
            raise disk_problem(OSError(errno.ENOSPC, "no space"), folder.parent, needed, ELSEWHERE) from None
        raise
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def recover(folder: Path) -> None:
    """After a kill between the two renames of :func:`save_atomically`, the previous whole save is back."""
    if not folder.exists() and sibling(folder, ".old").is_dir():
        sibling(folder, ".old").rename(folder)


def write_save(folder: Path, encoder: Saves, branch: Saves | None, recipe: SavedRecipe,
               training_state: dict | None = None, estimate: int = 0) -> None:
    """A run's save: the encoder as a loadable HF folder + head, the branch, the recipe and, in checkpoint/,
    the training state; swapped in whole (``estimate``: its bytes, for the space check of a first save)."""
    def write(tmp: Path) -> None:
        encoder.save(tmp)
        if branch is not None:
            branch.save(tmp)
        (tmp / RECIPE_FILE).write_text(recipe.to_json())
        if training_state is not None:
            torch.save(training_state, tmp / STATE_FILE)

    save_atomically(folder, write, estimate)


def read_training_state(folder: Path, hint: str) -> dict:
    return read_back(folder / STATE_FILE, lambda p: torch.load(p, weights_only=True, map_location="cpu"),
                     "the training state (optimizers, schedules, random states)", hint)


def process_random_state() -> dict:
    """This process's random generators (torch, Python, NumPy, CUDA): dropout and augmentation draw from them."""
    numpy_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": torch.from_numpy(numpy_state[1].astype(np.int64)), "numpy_pos": int(numpy_state[2]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_process_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_resumable(checkpoint: Path, stored: SavedRecipe, wanted: SavedRecipe, steps_per_epoch: int) -> None:
    """Resuming continues the saved run exactly, so only :data:`RESUMABLE_SETTINGS` may differ; a run of
    another length is refused with the ways on."""
    changed = {k: (v, getattr(wanted, k)) for k, v in dataclasses.asdict(stored).items()
               if k not in RESUMABLE_SETTINGS and v != getattr(wanted, k)}
    if not changed:
        return
    shown = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
    if set(changed) <= {"max_steps", "epochs"}:
        planned = steps_per_epoch * stored.epochs
        planned = planned if stored.max_steps is None else min(planned, stored.max_steps)
        raise NlsupError(
            f"{checkpoint}: saved by a run planned for {planned} steps ({shown}); its learning rates fall to 0 "
            f"at step {planned}, so a run of another length is not its continuation: train that length from "
            f"the start into a new --output-dir, or go on from these weights as a new run with "
            f"--set model={checkpoint} and a new --output-dir")
    saved = " ".join(f"--set {k}={old}" for k, (old, _) in changed.items())
    raise NlsupError(f"{checkpoint}: saved with different settings ({shown}); a resume may change only "
                     f"{', '.join(RESUMABLE_SETTINGS)}: resume with the saved settings ({saved}), or train into a "
                     f"new --output-dir")


@dataclass
class TrainResult:
    output_dir: Path
    best_dir: Path
    best_dev: float
    steps: int
    seconds: float  # wall time of the whole run, evaluations included
    first_loss: float
    last_loss: float
    step_seconds: float = math.nan  # time spent in training iterations alone (throughput)


def read_metrics(output_dir: str | Path) -> list[dict]:
    """The JSONL log of a run: one record per logged step (losses, lr, and stsb_dev where evaluated)."""
    return read_back(Path(output_dir) / METRICS_FILE,
                     lambda p: [json.loads(line) for line in p.read_text().splitlines() if line],
                     "the training log (one JSON record a line)", "the run's weights in best/ are unaffected")


def read_result(output_dir: Path, hint: str) -> TrainResult:
    stored = read_back(output_dir / RESULT_FILE, lambda p: json.loads(p.read_text()), "the run's result", hint)
    return TrainResult(output_dir, output_dir / BEST_DIR, stored["best_stsb_dev"], stored["steps"],
                       stored["seconds"], stored["first_loss"], stored["last_loss"],
                       stored.get("step_seconds", math.nan))


def finished_run(recipe: SavedRecipe, output_dir: str | Path) -> TrainResult | None:
    """The result of a completed run of exactly this recipe in ``output_dir``, if there is one."""
    output_dir = Path(output_dir)
    recipe_file = output_dir / RECIPE_FILE
    if not ((output_dir / RESULT_FILE).is_file() and recipe_file.is_file() and (output_dir / BEST_DIR).is_dir()):
        return None
    hint = "the run cannot be reused: train again with overwrite=True (--overwrite)"
    if read_back(recipe_file, type(recipe).from_json, "the run's recipe", hint) != recipe:
        return None
    return read_result(output_dir, hint)


def resumable_run(recipe: SavedRecipe, output_dir: str | Path) -> bool:
    """Whether ``output_dir`` holds an unfinished run of exactly this recipe with a checkpoint to continue."""
    output_dir = Path(output_dir)
    checkpoint = output_dir / CHECKPOINT_DIR
    if (output_dir / RESULT_FILE).exists() or not (checkpoint.is_dir() or sibling(checkpoint, ".old").is_dir()):
        return False
    try:
        return type(recipe).from_json(output_dir / RECIPE_FILE) == recipe
    except (OSError, ValueError, TypeError, NlsupError):
        return False


def describe_run(output_dir: Path) -> str | None:
    """What run ``output_dir`` holds, in a few words, or None when it holds none."""
    if not any((output_dir / name).exists() for name in RUN_FILES):
        return None
    try:
        name = json.loads((output_dir / RECIPE_FILE).read_text()).get("name", "a recipe")
    except (OSError, ValueError):
        name = "a recipe"
    try:
        result = json.loads((output_dir / RESULT_FILE).read_text())
        return f"a finished run of {name} ({result['steps']} steps, best STS-B dev {result['best_stsb_dev']:.2f})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"an unfinished run of {name}"
