"""Interruption: a CPU run killed with SIGKILL mid-run, or inside a save, and resumed ends with the same weights
and metrics as an uninterrupted run of the same seed; a NaN loss stops training and keeps the last good
checkpoint."""

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from cli_runs import (KILL_AT, PYTHON, SHORTER, TORCHRUN, assert_same_run, command, finish, kill_after,
                      kill_then_resume, run, settings, weights)
from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.checkpoint import STATE_FILE, read_metrics
from nlsup_kit.trainer import Trainer


def test_resume_may_change_when_it_logs_evaluates_and_saves_and_trains_the_same(reference, tiny_model, data_dir,
                                                                                tmp_path):
    """RESUMABLE_SETTINGS: evaluating and saving at other steps after the resume leaves the training itself,
    and so the last weights and the final evaluation, exactly as in the uninterrupted run."""
    resumed = kill_then_resume(PYTHON, tiny_model, data_dir, tmp_path / "run", 7,
                               resume_overrides=["eval_steps=3", "log_steps=2", "checkpoint_steps=4"])
    want, got = weights(reference), weights(resumed)
    for key, tensor in want.items():
        if key.startswith("checkpoint/"):
            assert torch.equal(got[key], tensor), key
    final = [r for r in read_metrics(resumed) if r["step"] == 40]
    assert final == [r for r in read_metrics(reference) if r["step"] == 40]
    assert any(r["step"] == 39 and "stsb_dev" in r for r in read_metrics(resumed))  # the new eval_steps is used
    assert json.loads((resumed / "recipe.json").read_text())["eval_steps"] == 3


def test_a_run_augmenting_whole_batches_resumes_exactly(tiny_model, data_dir, tmp_path):
    """The cached pipeline (images decoded once, each batch augmented where it trains: here the CPU) draws from
    a generator of its own, which the checkpoint keeps."""
    cached = ["modality_pipeline=cached", "max_steps=16", "checkpoint_steps=4", "eval_steps=8"]
    reference = finish(PYTHON, tiny_model, data_dir, tmp_path / "reference", cached)
    assert_same_run(reference, kill_then_resume(PYTHON, tiny_model, data_dir, tmp_path / "resumed", 6, cached))


def test_a_checkpoint_of_one_pipeline_is_not_resumed_by_the_other(data_dir):
    """``auto`` picks the pipeline by device: a cached run's checkpoint resumed where auto means per-item (or the
    reverse) is refused in one line naming the setting, not continued with other random streams."""
    from nlsup_kit.data.batch_augment import batch_augment_for
    from nlsup_kit.data.batches import Repeating, modality_loader

    recipe = apply_overrides(get_recipe("quick-visualcse"), ["modality_batch_size=4"])
    cached = Repeating(modality_loader(recipe, data_dir, pipeline="cached"), batch_augment_for(recipe, 0))
    next(cached)
    per_item = Repeating(modality_loader(recipe, data_dir, pipeline="per-item"))
    with pytest.raises(NlsupError, match="made by the cached pipeline .* --set modality_pipeline=cached$"):
        per_item.restore(cached.state())
    next(per_item)
    with pytest.raises(NlsupError, match="made by the per-item pipeline .* --set modality_pipeline=per-item$"):
        cached.restore(per_item.state())


# a kill inside the first save of checkpoint/ of a resumed run, and what it leaves on disk at that moment
KILL_POINTS = {
    "before its training state": ("torch/serialization.py:save", lambda out: (
        (out / "checkpoint.tmp" / "model.safetensors").is_file()
        and not (out / "checkpoint.tmp" / STATE_FILE).exists())),
    "before its manifest": ("nlsup_kit/checkpoint.py:write_manifest=checkpoint.tmp", lambda out: (
        (out / "checkpoint.tmp" / STATE_FILE).is_file()
        and not (out / "checkpoint.tmp" / "manifest.json").exists())),
    "between its two renames": ("pathlib.py:rename=checkpoint.tmp", lambda out: (
        not (out / "checkpoint").exists() and (out / "checkpoint.old" / STATE_FILE).is_file()
        and (out / "checkpoint.tmp" / "manifest.json").is_file())),
}


def test_kills_mid_run_and_inside_saves_one_after_another_then_resume_equal_an_uninterrupted_run(
        reference, tiny_model, data_dir, tmp_path):
    """SIGKILLed mid-run from outside after step 7, then each resume killed inside its first save at the next point,
    the run resumes from its last whole checkpoint every time and ends as the uninterrupted one."""
    out = tmp_path / "run"
    kill_after(PYTHON, tiny_model, data_dir, out, 7)
    for point, (target, left_on_disk) in KILL_POINTS.items():
        killed = run([*KILL_AT, target, "1", *command(tiny_model, data_dir, out), "--resume"])
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert left_on_disk(out), point  # the kill landed where it was aimed
    assert_same_run(reference, finish(PYTHON, tiny_model, data_dir, out, (), "--resume"))


def test_two_process_run_resumes_each_process_own_random_streams(torchrun_reference, tiny_model, data_dir,
                                                                  tmp_path):
    """torchrun with 2 gloo processes: dropout differs per process, so the weights after a resume equal the
    uninterrupted run's only if every process gets back its own random state."""
    resumed = kill_then_resume(TORCHRUN, tiny_model, data_dir, tmp_path / "resumed", 6, SHORTER)
    assert_same_run(torchrun_reference, resumed)
    ranks = torch.load(resumed / "checkpoint" / STATE_FILE, weights_only=True)["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    recipe = apply_overrides(get_recipe("quick-visualcse"), [*settings(tiny_model), *SHORTER])
    with pytest.raises(NlsupError, match="written by 2 processes; resume with the same number"):
        Trainer(recipe, resumed, data_dir, progress=False).train(resume=True)


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tiny_model, data_dir, tmp_path):
    recipe = apply_overrides(get_recipe("quick-simcse"), settings(tiny_model))
    trainer = Trainer(recipe, tmp_path / "run", data_dir, progress=False)
    loss, calls = trainer.iteration.text_loss, []

    def poisoned(*views):
        calls.append(1)
        value = loss(*views)
        return value * float("nan") if len(calls) > 7 else value

    trainer.iteration.text_loss = poisoned
    with pytest.raises(NlsupError, match=r"text_loss=nan at step 8; the last good checkpoint is .*checkpoint"):
        trainer.train()
    state = torch.load(tmp_path / "run" / "checkpoint" / STATE_FILE, weights_only=True)
    assert state["position"]["step"] == 5
    assert torch.isfinite(load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))[
        "embeddings.word_embeddings.weight"]).all()


def test_resume_refuses_changed_settings_and_missing_checkpoints(tiny_model, data_dir, tmp_path):
    recipe = apply_overrides(get_recipe("quick-simcse"), [*settings(tiny_model), "max_steps=5"])
    with pytest.raises(NlsupError, match="nothing to resume"):
        Trainer(recipe, tmp_path / "run", data_dir, progress=False).train(resume=True)
    Trainer(recipe, tmp_path / "run", data_dir, progress=False).train()
    changed = apply_overrides(recipe, ["learning_rate=2e-4"])
    with pytest.raises(NlsupError, match=r"different settings \(learning_rate 0.0001 -> 0.0002\); a resume may "
                                         r"change only log_steps, eval_steps, checkpoint_steps: resume with"):
        Trainer(changed, tmp_path / "run", data_dir, progress=False).train(resume=True)
    other_optimizer = apply_overrides(recipe, ["optimizer=torch-adamw"])
    with pytest.raises(NlsupError, match=r"\(optimizer reference-adamw -> torch-adamw\).*resume with the saved "
                                         r"settings \(--set optimizer=reference-adamw\)"):
        Trainer(other_optimizer, tmp_path / "run", data_dir, progress=False).train(resume=True)
