"""Nothing written is lost: a folder that holds a run is never replaced by accident, and --overwrite keeps
the old run whole until the new one has finished."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from nlsup_kit.cli import main
from nlsup_kit.errors import NlsupError
from nlsup_kit.recipes import apply_overrides, get_recipe
from nlsup_kit.trainer import train


def tiny(model, *extra):
    return apply_overrides(get_recipe("quick-simcse"), [f"model={model}", "max_text_examples=64", "batch_size=8",
                                                         "max_steps=2", "eval_steps=2", *extra])


def snapshot(folder):
    """Every file of a run folder, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_training_into_a_finished_run_is_refused_and_leaves_it_untouched(tiny_model, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    first = train(tiny(tiny_model), run, data_dir, progress=False)
    before = snapshot(run)
    argv = ["train", "--recipe", "quick-simcse", "--data-dir", str(data_dir), "--output-dir", str(run)]
    for setting in (f"model={tiny_model}", "max_text_examples=64", "batch_size=8", "max_steps=1"):
        argv += ["--set", setting]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {run}: already holds a finished run of quick-simcse (2 steps, best STS-B dev "
                   f"{first.best_dev:.2f}); continue it with --resume, train into a new --output-dir, or replace "
                   f"it with --overwrite")
    assert snapshot(run) == before


def test_reuse_never_replaces_a_different_run(tiny_model, data_dir, tmp_path):
    """A notebook cell re-run with other settings must not destroy the run another notebook left there."""
    run = tmp_path / "run"
    train(tiny(tiny_model), run, data_dir, progress=False)
    before = snapshot(run)
    with pytest.raises(NlsupError, match="already holds a finished run of quick-simcse"):
        train(tiny(tiny_model, "max_steps=1"), run, data_dir, progress=False, reuse=True)
    assert snapshot(run) == before


def test_bad_data_with_overwrite_leaves_the_old_run_in_place(tiny_model, data_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny(tiny_model), run, data_dir, progress=False)
    old = snapshot(run)
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "a.png")
    bad = apply_overrides(get_recipe("quick-visualcse"), [f"model={tiny_model}", "max_text_examples=64",
                                                          "batch_size=8", f"modality_data={folder.parent}"])
    with pytest.raises(NlsupError, match="fewer than modality_batch_size"):
        train(bad, run, data_dir, progress=False, overwrite=True)
    assert snapshot(run) == old and not (tmp_path / "run.replaced").exists()


def test_a_replacement_killed_mid_run_leaves_the_old_run_whole_aside(tiny_model, data_dir, tmp_path):
    run, aside = tmp_path / "run", tmp_path / "run.replaced"
    train(tiny(tiny_model), run, data_dir, progress=False)
    old = snapshot(run)
    argv = [sys.executable, "-m", "nlsup_kit.cli", "train", "--recipe", "quick-simcse", "--data-dir", str(data_dir),
            "--output-dir", str(run), "--overwrite"]
    for setting in (f"model={tiny_model}", "max_text_examples=800", "batch_size=8", "max_steps=100",
                    "eval_steps=1000", "log_steps=1", "checkpoint_steps=2"):
        argv += ["--set", setting]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert snapshot(aside) == old  # the old run, whole, while the new one is half done
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 3
    # the next attempt replaces the half-done run, keeps the whole old one aside until it finishes, then drops it
    assert train(tiny(tiny_model, "max_steps=3", "eval_steps=3"), run, data_dir, progress=False,
                 overwrite=True).steps == 3
    assert not aside.exists() and json.loads((run / "result.json").read_text())["steps"] == 3


def test_resume_continues_in_the_folder_without_a_refusal(tiny_model, data_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny(tiny_model, "checkpoint_steps=1"), run, data_dir, progress=False)
    assert train(tiny(tiny_model, "checkpoint_steps=1"), run, data_dir, progress=False, resume=True).steps == 2


def test_resuming_a_finished_run_changes_nothing_and_training_longer_is_explained(tiny_model, data_dir, tmp_path,
                                                                                   capsys):
    run = tmp_path / "run"
    first = train(tiny(tiny_model), run, data_dir, progress=False)
    before = snapshot(run)
    again = train(tiny(tiny_model, "eval_steps=1"), run, data_dir, progress=False, resume=True)
    assert (again.steps, again.best_dev, again.seconds) == (first.steps, first.best_dev, first.seconds)
    assert capsys.readouterr().err.strip() == (f"note: {run}: already finished (2 steps, best STS-B dev "
                                               f"{first.best_dev:.2f}); nothing to resume")
    with pytest.raises(NlsupError) as longer:
        train(tiny(tiny_model, "max_steps=5"), run, data_dir, progress=False, resume=True)
    assert str(longer.value) == (
        f"{run / 'checkpoint'}: saved by a run planned for 2 steps (max_steps 2 -> 5); its learning rates fall to 0 "
        f"at step 2, so a run of another length is not its continuation: train that length from the start into a "
        f"new --output-dir, or go on from these weights as a new run with --set model={run / 'checkpoint'} and a "
        f"new --output-dir")
    assert snapshot(run) == before
    # the way on that the refusal offers: a new run that starts from the finished run's last weights
    from safetensors.torch import load_file

    from nlsup_kit.trainer import Trainer

    onward = Trainer(tiny(tiny_model, f"model={run / 'checkpoint'}", "max_steps=3", "eval_steps=3"),
                     tmp_path / "onward", data_dir, progress=False)
    saved = load_file(str(run / "checkpoint" / "model.safetensors"))
    start = onward.encoder.backbone.state_dict()
    assert all(torch.equal(start[k], v) for k, v in saved.items())
    assert onward.train().steps == 3


# ---- every file the kit reads back, damaged: one line naming it, nothing touched --------------------------------

def damage(path, how):
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    else:  # truncated
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture(scope="module")
def finished_run(tiny_model, data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("damaged") / "run"
    recipe = apply_overrides(get_recipe("quick-visualcse"), [
        f"model={tiny_model}", "max_text_examples=64", "batch_size=8", "max_steps=2", "eval_steps=2",
        "modality_batch_size=8", "image_size=16", "patch_size=8"])
    train(recipe, run, data_dir, progress=False)
    return run


EVAL = ["eval-sts", "--model", "{run}/best", "--tasks", "STS16"]
EXPORT = ["export", "{run}/best", "--out", "{run}-exported"]
RESUME = ["train", "--resume"]
DAMAGE = [(file, argv, how) for file, argv in [
    ("best/model.safetensors", EVAL), ("best/head.safetensors", EVAL), ("best/config.json", EVAL),
    ("best/tokenizer.json", EXPORT), ("best/recipe.json", EXPORT), ("checkpoint/training_state.pt", RESUME),
    ("checkpoint/modality.safetensors", RESUME), ("checkpoint/recipe.json", RESUME),
    ("checkpoint/model.safetensors", RESUME), ("checkpoint/manifest.json", RESUME), ("best/manifest.json", EVAL),
    ("best/manifest.json", EXPORT)] for how in ("missing", "empty", "truncated")
    if (file, how) != ("best/recipe.json", "missing")]  # export then takes the default pooler, or --pooling


@pytest.mark.parametrize("file, argv, how", DAMAGE, ids=lambda v: v if isinstance(v, str) else v[0])
def test_a_damaged_file_is_one_line_that_names_it(finished_run, tmp_path, data_dir, tiny_model, capsys, file, argv,
                                                  how):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if argv[:2] == ["train", "--resume"]:
        recipe = json.loads((finished_run / "recipe.json").read_text())
        argv = ["train", "--recipe", "quick-visualcse", "--output-dir", str(run), "--data-dir", str(data_dir),
                "--resume"] + [arg for key in ("model", "max_text_examples", "batch_size", "max_steps", "eval_steps",
                                               "modality_batch_size", "image_size", "patch_size")
                               for arg in ("--set", f"{key}={recipe[key]}")]
    else:
        argv = [a.format(run=run) for a in argv] + (["--data-dir", str(data_dir)] if argv[0] == "eval-sts" else [])
    damage(run / file, how)
    before = snapshot(run)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {run / file}: "), err
    assert snapshot(run) == before


# ---- files that do not belong together: caught by the save's manifest, never mixed silently ------------------

@pytest.fixture(scope="module")
def other_run(tiny_model, data_dir, tmp_path_factory):
    """A SimCSE run of the same tiny model with another seed: same file sizes for the shared files, other bytes."""
    run = tmp_path_factory.mktemp("other") / "run"
    train(tiny(tiny_model, "seed=43"), run, data_dir, progress=False)
    return run


def resume_argv(run, data_dir):
    """``nlsup train --resume`` with exactly the settings ``run`` was trained with."""
    import dataclasses

    saved = json.loads((run / "recipe.json").read_text())
    defaults = dataclasses.asdict(get_recipe(saved["name"]))
    sets = [arg for key, value in saved.items() if value != defaults[key] for arg in ("--set", f"{key}={value}")]
    return ["train", "--recipe", saved["name"], "--output-dir", str(run), "--data-dir", str(data_dir), "--resume",
            *sets]


MIXES = {  # (file copied from the other save, into which run, the command that reads it, what the line says)
    "weights from another run": ("checkpoint/model.safetensors", "visual", RESUME, "not the file this save wrote"),
    "training state from another run": ("checkpoint/training_state.pt", "visual", RESUME, "bytes where the save"),
    "head from another run": ("best/head.safetensors", "visual", EVAL, "not the file this save wrote"),
    "a branch copied into a text-only run": ("checkpoint/modality.safetensors", "text", RESUME, "not part of this"),
}


@pytest.mark.parametrize("mix", MIXES)
def test_a_file_from_another_save_is_one_line_that_names_it(finished_run, other_run, tmp_path, data_dir, capsys, mix):
    import shutil

    file, into, argv, says = MIXES[mix]
    target, source = (finished_run, other_run) if into == "visual" else (other_run, finished_run)
    run = tmp_path / "run"
    shutil.copytree(target, run)
    shutil.copyfile(source / file, run / file)
    if argv == RESUME:
        argv = resume_argv(run, data_dir)
    else:
        argv = [a.format(run=run) for a in argv] + ["--data-dir", str(data_dir)]
    before = snapshot(run)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {run / file}: ") and says in err, err
    assert snapshot(run) == before


def test_a_run_counts_once_by_its_folder_as_what_it_first_was(tmp_path):
    """The notebooks' runtime line counts runs: read back twice, or trained and then read back, is one run."""
    from nlsup_kit.notebook import runtime_line
    from nlsup_kit.trainer import RUN_COUNTS, count_run, run_origin

    saved = {kind: set(folders) for kind, folders in RUN_COUNTS.items()}
    try:
        for kind in RUN_COUNTS:
            RUN_COUNTS[kind].clear()
        count_run("trained", tmp_path / "a")
        count_run("reused", tmp_path / "a")
        count_run("reused", tmp_path / "b")
        count_run("reused", tmp_path / "b" / ".." / "b")
        assert {kind: len(folders) for kind, folders in RUN_COUNTS.items()} == {"trained": 1, "reused": 1}
        assert run_origin(tmp_path / "b" / ".." / "b").startswith("read back") and run_origin(tmp_path / "a") == "trained here"
        assert runtime_line("quick").endswith(f" It trained 1 run(s) ({tmp_path.name}/a) and read back 1 ({tmp_path.name}/b) that an earlier notebook or an "
                                              "earlier run of this one had trained (read back, a run takes seconds).")
    finally:
        for kind, folders in saved.items():
            RUN_COUNTS[kind].clear()
            RUN_COUNTS[kind].update(folders)
