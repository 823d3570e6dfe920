"""Interruption: a CPU run killed with SIGKILL mid-run and resumed ends with the same weights and metrics as
an uninterrupted run of the same seed; a NaN loss stops training and keeps the last good checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import STATE_FILE, Trainer, read_metrics


def settings(model) -> list[str]:
    return [f"model={model}", "max_text_examples=400", "batch_size=8", "max_steps=40", "checkpoint_steps=5",
            "eval_steps=10", "log_steps=1", "modality_batch_size=4", "image_size=16", "patch_size=8",
            "learning_rate=1e-4", "modality_learning_rate=1e-4", "device=cpu"]


def command(model, data_dir, out, *extra) -> list[str]:
    """``nlsup train`` as a module, to follow a launcher: ``python`` or ``torchrun``."""
    sets = [arg for s in settings(model) for arg in ("--set", s)]
    return ["-m", "nlsup_kit.cli", "train", "--recipe", "quick-visualcse", *sets,
            "--data-dir", str(data_dir), "--output-dir", str(out), *extra]


def weights(run) -> dict[str, torch.Tensor]:
    out = {}
    for folder in ("best", "checkpoint"):
        for file in ("model.safetensors", "head.safetensors", "modality.safetensors"):
            out.update({f"{folder}/{file}/{k}": v for k, v in load_file(str(run / folder / file)).items()})
    return out


def stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name: state, parent pid, ... (OSError once the process is gone)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (torchrun starts its workers in sessions of their own, so killing
    torchrun's process group would leave them running)."""
    children = {}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            children.setdefault(int(stat_fields(folder.name)[1]), []).append(int(folder.name))
        except OSError:
            continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def alive(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def kill_then_resume(launch: list[str], model, data_dir, tmp_path, kill_after_step: int, overrides=()):
    """An uninterrupted run, and a run SIGKILLed (with every process it started) after ``kill_after_step`` then
    resumed; returns both output folders. ``overrides`` are settings on top of :func:`settings`."""
    sets = [arg for setting in overrides for arg in ("--set", setting)]
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    done = subprocess.run([*launch, *command(model, data_dir, reference, *sets)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    process = subprocess.Popen([*launch, *command(model, data_dir, resumed, *sets)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (resumed / "checkpoint" / STATE_FILE).is_file() and any(
                r["step"] >= kill_after_step for r in read_metrics(resumed)):
            break
        time.sleep(0.02)
    tree = process_tree(process.pid)
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL  # killed mid-run, not finished
    deadline = time.time() + 60
    while any(alive(pid) for pid in tree) and time.time() < deadline:
        time.sleep(0.1)
    assert not (resumed / "result.json").exists()
    done = subprocess.run([*launch, *command(model, data_dir, resumed, *sets, "--resume")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return reference, resumed


def assert_same_run(reference, resumed) -> None:
    assert read_metrics(resumed) == read_metrics(reference)
    want, got = weights(reference), weights(resumed)
    assert got.keys() == want.keys()
    for key, tensor in want.items():
        assert torch.equal(got[key], tensor), key
    assert json.loads((resumed / "result.json").read_text())["best_stsb_dev"] == \
        json.loads((reference / "result.json").read_text())["best_stsb_dev"]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_model, data_dir, tmp_path):
    assert_same_run(*kill_then_resume([sys.executable], tiny_model, data_dir, tmp_path, 7))


def test_two_process_run_resumes_each_process_own_random_streams(tiny_model, data_dir, tmp_path):
    """torchrun with 2 gloo processes: dropout differs per process, so the weights after a resume equal the
    uninterrupted run's only if every process gets back its own random state."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    shorter = ["max_steps=16", "checkpoint_steps=4", "eval_steps=8"]
    reference, resumed = kill_then_resume(launch, tiny_model, data_dir, tmp_path, 6, shorter)
    assert_same_run(reference, resumed)
    ranks = torch.load(resumed / "checkpoint" / STATE_FILE, weights_only=True)["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    recipe = apply_overrides(get_recipe("quick-visualcse"), [*settings(tiny_model), *shorter])
    with pytest.raises(NlsupError, match="written by 2 processes; resume with the same number"):
        Trainer(recipe, resumed, data_dir, progress=False).train(resume=True)


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tiny_model, data_dir, tmp_path):
    recipe = apply_overrides(get_recipe("quick-simcse"), settings(tiny_model))
    trainer = Trainer(recipe, tmp_path / "run", data_dir, progress=False)
    loss, calls = trainer.text_loss, []

    def poisoned(*views):
        calls.append(1)
        value = loss(*views)
        return value * float("nan") if len(calls) > 7 else value

    trainer.text_loss = poisoned
    with pytest.raises(NlsupError, match=r"text_loss=nan at step 8; the last good checkpoint is .*checkpoint"):
        trainer.train()
    state = torch.load(tmp_path / "run" / "checkpoint" / STATE_FILE, weights_only=True)
    assert state["progress"]["step"] == 5
    assert torch.isfinite(load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))[
        "embeddings.word_embeddings.weight"]).all()


def test_resume_refuses_changed_settings_and_missing_checkpoints(tiny_model, data_dir, tmp_path):
    recipe = apply_overrides(get_recipe("quick-simcse"), [*settings(tiny_model), "max_steps=5"])
    with pytest.raises(NlsupError, match="nothing to resume"):
        Trainer(recipe, tmp_path / "run", data_dir, progress=False).train(resume=True)
    Trainer(recipe, tmp_path / "run", data_dir, progress=False).train()
    changed = apply_overrides(recipe, ["learning_rate=2e-4"])
    with pytest.raises(NlsupError, match=r"different settings \(learning_rate\)"):
        Trainer(changed, tmp_path / "run", data_dir, progress=False).train(resume=True)
