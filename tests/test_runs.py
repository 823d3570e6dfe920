"""Nothing written is lost: a folder that holds a run is never replaced by accident, and --overwrite keeps
the old run whole until the new one has finished."""

import json
import signal
import subprocess
import sys
import time

import pytest

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
    ("checkpoint/model.safetensors", RESUME)] for how in ("missing", "empty", "truncated")
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
