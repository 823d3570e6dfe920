"""Interruption: a CPU run killed with SIGKILL mid-run and resumed ends with the same weights and metrics as
an uninterrupted run of the same seed; a NaN loss stops training and keeps the last good checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

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
    sets = [arg for s in settings(model) for arg in ("--set", s)]
    return [sys.executable, "-m", "nlsup_kit.cli", "train", "--recipe", "quick-visualcse", *sets,
            "--data-dir", str(data_dir), "--output-dir", str(out), *extra]


def weights(run) -> dict[str, torch.Tensor]:
    out = {}
    for folder in ("best", "checkpoint"):
        for file in ("model.safetensors", "head.safetensors", "modality.safetensors"):
            out.update({f"{folder}/{file}/{k}": v for k, v in load_file(str(run / folder / file)).items()})
    return out


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_model, data_dir, tmp_path):
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(command(tiny_model, data_dir, reference), env=env, check=True, capture_output=True,
                   timeout=600)

    process = subprocess.Popen(command(tiny_model, data_dir, resumed), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (resumed / "checkpoint" / STATE_FILE).is_file() and any(
                r["step"] >= 7 for r in read_metrics(resumed)):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL  # killed mid-run, not finished
    assert not (resumed / "result.json").exists()
    done = subprocess.run(command(tiny_model, data_dir, resumed, "--resume"), env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    assert read_metrics(resumed) == read_metrics(reference)
    want, got = weights(reference), weights(resumed)
    assert got.keys() == want.keys()
    for key, tensor in want.items():
        assert torch.equal(got[key], tensor), key
    assert json.loads((resumed / "result.json").read_text())["best_stsb_dev"] == \
        json.loads((reference / "result.json").read_text())["best_stsb_dev"]


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
