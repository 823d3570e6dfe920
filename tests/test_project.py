"""Project-level promises: environment.yml mirrors pyproject, recipes mirror PAPER.md, the audio set."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch", "pysoundfile": "soundfile"}


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!\[ ]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {requirement_name(d) for d in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for item in env["dependencies"]:
        for spec in item["pip"] if isinstance(item, dict) else [item]:
            if not spec.startswith("-e") and requirement_name(spec) not in ("python", "pip"):
                listed.add(CONDA_NAMES.get(requirement_name(spec), requirement_name(spec)))
    assert listed == wanted


def paper_table() -> dict[str, list[str]]:
    paper = ROOT.parent / "shared" / "PAPER.md"
    if not paper.is_file():
        pytest.fail(f"{paper} not found: the paper's recipe table is checked against it", pytrace=False)
    rows = {}
    for line in paper.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith(("unsup", "supervised")):
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("row, recipes", [
    ("unsup VisualCSE, BERT-base", ["visualcse-bert-base"]),
    ("unsup VisualCSE, RoBERTa-base", ["visualcse-roberta-base"]),
    ("unsup AudioCSE, BERT-base", ["audiocse-bert-base"]),
    ("unsup AudioCSE, RoBERTa-base", ["audiocse-roberta-base"]),
    ("supervised (both)", ["sup-visualcse-bert-base", "sup-audiocse-bert-base"]),
])
def test_paper_recipes_match_paper_table(row, recipes):
    from nlsup_kit.recipes import get_recipe

    batch, lr, m_batch, m_lr, weight, temperature, epochs = paper_table()[row]
    for name in recipes:
        recipe = get_recipe(name)
        assert recipe.batch_size == int(batch) and recipe.learning_rate == float(lr)
        assert recipe.modality_batch_size == int(m_batch) and recipe.modality_learning_rate == float(m_lr)
        assert recipe.modality_loss_weight == float(weight)
        assert recipe.modality_temperature == float(temperature)
        assert recipe.epochs == int(epochs.split()[0]) and recipe.max_length == 32 and recipe.temperature == 0.05


def test_committed_spoken_words_set():
    import soundfile

    folder = ROOT / "data" / "spoken_words"
    clips = sorted(folder.glob("*/*.flac"))
    assert sum(p.stat().st_size for p in clips) < 5 * 2**20
    assert len({p.parent.name for p in clips}) == 10 and len(clips) == 240
    info = soundfile.info(str(clips[0]))
    assert info.samplerate == 16000 and info.channels == 1


def test_spoken_word_generator_makes_readable_clips(tmp_path):
    from nlsup_kit.data.audio import generate_spoken_words, read_audio

    assert generate_spoken_words(tmp_path, words=("seven",)) == 24
    waveform = read_audio(next((tmp_path / "seven").iterdir()))
    assert 0.3 < len(waveform) / 16000 < 2.0 and waveform.abs().max() > 0.05


PROJECT_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
INSTALL_CELL = ('# Colab only: install the kit with everything these notebooks import (elsewhere this cell does nothing).\n'
                'import sys\n'
                'if "google.colab" in sys.modules:\n'
                '    %pip install -q "nlsup-kit[notebooks] @ git+{url}"')


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_colab_badge_and_install_cell_use_the_one_project_address(path):
    import json

    cells = json.loads(path.read_text())["cells"]
    repository = PROJECT_URL.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{repository}/blob/main/notebooks/{path.name}"
    assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({badge})" in "".join(cells[0]["source"])
    assert "".join(cells[1]["source"]) == INSTALL_CELL.format(url=PROJECT_URL)


def test_no_other_project_address_anywhere():
    """Every GitHub address of this project in the repository is the one in pyproject.toml."""
    pattern = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/[\w.-]+)")
    files = [p for p in ROOT.rglob("*") if p.suffix in (".md", ".ipynb", ".py", ".toml", ".yml", ".sh")
             and not {".venv", "build", ".git"} & set(p.relative_to(ROOT).parts)]
    found = {m.group(1).removesuffix(".git") for p in files for m in pattern.finditer(p.read_text(errors="ignore"))}
    assert found == {PROJECT_URL.removeprefix("https://github.com/")}
