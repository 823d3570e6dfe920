"""Interruption: a CPU run killed with SIGKILL mid-run, or inside a save, and resumed ends with the same weights
and metrics as an uninterrupted run of the same seed; a NaN loss stops training and keeps the last good
checkpoint."""

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
from nlsup_kit.checkpoint import STATE_FILE, read_metrics
from nlsup_kit.trainer import Trainer


def settings(model) -> list[str]:
    return [f"model={model}", "max_text_examples=400", "batch_size=8", "max_steps=40", "checkpoint_steps=5",
            "eval_steps=10", "log_steps=1", "modality_batch_size=4", "image_size=16", "patch_size=8",
            "learning_rate=1e-4", "modality_learning_rate=1e-4", "device=cpu"]


def command(model, data_dir, out, overrides=(), *flags) -> list[str]:
    """``nlsup train`` arguments, after a launcher (python, torchrun or the kill point); ``overrides`` are
    settings on top of :func:`settings`."""
    sets = [arg for s in [*settings(model), *overrides] for arg in ("--set", s)]
    return ["train", "--recipe", "quick-visualcse", *sets, "--data-dir", str(data_dir), "--output-dir", str(out),
            *flags]


PYTHON = [sys.executable, "-m", "nlsup_kit.cli"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
            "nlsup_kit.cli"]
KILL_AT = [sys.executable, str(Path(__file__).with_name("killpoint.py"))]


def quiet_env() -> dict[str, str]:
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    return env


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=quiet_env(), capture_output=True, text=True, timeout=600)


def finish(launch, model, data_dir, out, overrides=(), *flags) -> Path:
    done = run([*launch, *command(model, data_dir, out, overrides, *flags)])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def reference(tiny_model, data_dir, tmp_path_factory) -> Path:
    """One uninterrupted single-process run of :func:`settings`."""
    return finish(PYTHON, tiny_model, data_dir, tmp_path_factory.mktemp("reference") / "run")


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


def kill_then_resume(launch: list[str], model, data_dir, out, kill_after_step: int, overrides=(),
                     resume_overrides=()) -> Path:
    """A run SIGKILLed (with every process it started) after ``kill_after_step``, then resumed, with
    ``resume_overrides`` on top of its settings."""
    process = subprocess.Popen([*launch, *command(model, data_dir, out, overrides)], env=quiet_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (out / "checkpoint" / STATE_FILE).is_file() and any(
                r["step"] >= kill_after_step for r in read_metrics(out)):
            break
        time.sleep(0.02)
    tree = process_tree(process.pid)
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL  # killed mid-run, not finished
    deadline = time.time() + 60
    while any(alive(pid) for pid in tree) and time.time() < deadline:
        time.sleep(0.1)
    assert not (out / "result.json").exists()
    return finish(launch, model, data_dir, out, [*overrides, *resume_overrides], "--resume")


def assert_same_run(reference, resumed) -> None:
    assert read_metrics(resumed) == read_metrics(reference)
    want, got = weights(reference), weights(resumed)
    assert got.keys() == want.keys()
    for key, tensor in want.items():
        assert torch.equal(got[key], tensor), key
    assert json.loads((resumed / "result.json").read_text())["best_stsb_dev"] == \
        json.loads((reference / "result.json").read_text())["best_stsb_dev"]


def test_sigkill_then_resume_equals_an_uninterrupted_run(reference, tiny_model, data_dir, tmp_path):
    assert_same_run(reference, kill_then_resume(PYTHON, tiny_model, data_dir, tmp_path / "run", 7))


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


# a kill inside the Nth save of checkpoint/ (step 5 N), and what it leaves on disk at that moment
KILL_POINTS = {
    "before its training state": ("torch/serialization.py:save", 2, lambda out: (
        (out / "checkpoint.tmp" / "model.safetensors").is_file()
        and not (out / "checkpoint.tmp" / STATE_FILE).exists())),
    "before its manifest": ("nlsup_kit/checkpoint.py:write_manifest=checkpoint.tmp", 2, lambda out: (
        (out / "checkpoint.tmp" / STATE_FILE).is_file()
        and not (out / "checkpoint.tmp" / "manifest.json").exists())),
    "between its two renames": ("pathlib.py:rename=checkpoint.tmp", 2, lambda out: (
        not (out / "checkpoint").exists() and (out / "checkpoint.old" / STATE_FILE).is_file()
        and (out / "checkpoint.tmp" / "manifest.json").is_file())),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_inside_a_save_then_resume_equals_an_uninterrupted_run(point, reference, tiny_model, data_dir,
                                                                      tmp_path):
    target, nth, left_on_disk = KILL_POINTS[point]
    out = tmp_path / "run"
    killed = run([*KILL_AT, target, str(nth), *command(tiny_model, data_dir, out)])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert left_on_disk(out)  # the kill landed where it was aimed
    assert_same_run(reference, finish(PYTHON, tiny_model, data_dir, out, (), "--resume"))


def test_two_process_run_resumes_each_process_own_random_streams(tiny_model, data_dir, tmp_path):
    """torchrun with 2 gloo processes: dropout differs per process, so the weights after a resume equal the
    uninterrupted run's only if every process gets back its own random state."""
    shorter = ["max_steps=16", "checkpoint_steps=4", "eval_steps=8"]
    reference = finish(TORCHRUN, tiny_model, data_dir, tmp_path / "reference", shorter)
    resumed = kill_then_resume(TORCHRUN, tiny_model, data_dir, tmp_path / "resumed", 6, shorter)
    assert_same_run(reference, resumed)
    ranks = torch.load(resumed / "checkpoint" / STATE_FILE, weights_only=True)["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    recipe = apply_overrides(get_recipe("quick-visualcse"), [*settings(tiny_model), *shorter])
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
