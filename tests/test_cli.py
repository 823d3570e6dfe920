"""The nlsup command: listing, training, errors as one line with exit code 2."""

import subprocess
import sys

import pytest

from nlsup_kit.cli import main


def test_recipes_lists_every_recipe(capsys):
    from nlsup_kit.recipes import RECIPES

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES)
    assert main(["recipes", "visualcse-bert-base"]) == 0
    assert "google/vit-base-patch16-224-in21k" in capsys.readouterr().out
    from nlsup_kit.paper import recipe_source

    for name in ("visualcse-xlmr-base-de", "class-simcse"):  # each setting's source, or that they are the kit's
        assert main(["recipes", name]) == 0
        assert capsys.readouterr().out.endswith(f"# where these come from\n{recipe_source(name)}\n")


@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "quick-simcse", "--set", "batch_sise=4"], "did you mean 'batch_size'"),
    (["train", "--recipe", "quick-simcse", "--set", "batch_size=1"], "at least 2"),
    (["train", "--recipe", "quick-simcse", "--set", "learning_rate=fast"], "expected float"),
    (["train", "--recipe", "quick-simcse", "--set", "learning_rate=0"], "learning_rate=0.0"),
    (["train", "--recipe", "quick-simcce"], "did you mean 'quick-simcse'"),
    (["eval-sts", "--model", "minilm-l6", "--data-dir", "/nonexistent/nlsup"], "does not exist"),
])
def test_bad_settings_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_trained_run_exports_and_loads_in_sentence_transformers(reference, tmp_path):
    """End to end through the CLI: the best save of a run the CLI trained (``conftest.reference``), exported,
    loads with sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    run = subprocess.run([sys.executable, "-m", "nlsup_kit.cli", "export", str(reference / "best"), "--out",
                          str(tmp_path / "st")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(["hello"]).shape == (1, 32)


def test_progress_bars_follow_tqdm_disable_and_explicit_choice(monkeypatch):
    from nlsup_kit.progress import progress_bar

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3)).disable
    assert not progress_bar(range(3), show=True).disable
    monkeypatch.setenv("TQDM_DISABLE", "")
    assert progress_bar(range(3), show=False).disable
