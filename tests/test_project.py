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
    """Every dependency, with pyproject's bounds; beyond them only packages of an extra (its ``-e ".[demo]"``
    installs the rest), also with pyproject's bounds."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    bounds = {requirement_name(d): d.strip()[len(requirement_name(d)):] for d in specs}
    wanted = {requirement_name(d) for d in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = {}
    for item in env["dependencies"]:
        for spec in item["pip"] if isinstance(item, dict) else [item]:
            if not spec.startswith("-e") and requirement_name(spec) not in ("python", "pip"):
                name = requirement_name(spec)
                listed[CONDA_NAMES.get(name, name)] = spec.strip()[len(name):]
    assert wanted <= listed.keys() <= bounds.keys() - {"nlsup-kit"}
    assert {name: bounds[name] for name in listed} == listed


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
    from nlsup_kit.paper import CITED_REPOS  # the reference code and SimCSE, which the kit cites by address

    assert found - set(CITED_REPOS) == {PROJECT_URL.removeprefix("https://github.com/")}


def private_notes_mentions(folder: str) -> list[str]:
    """``file:line`` of every mention of PAPER.md under ``folder`` (text files: .py, .ipynb, .md, ...)."""
    hits = []
    for path in sorted((ROOT / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".so"):
            for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
                if "PAPER.md" in line:
                    hits.append(f"{path.relative_to(ROOT)}:{number}")
    return hits


@pytest.mark.parametrize("folder", ["nlsup_kit", "notebooks"])
def test_learner_files_cite_sources_learners_can_open_not_the_private_notes(folder):
    """PAPER.md is the team's own notes (beside the repository, not shipped): a learner cannot open it. Cite the
    paper (arXiv 2209.09433) for its results table, the reference code (github.com/yiren-jian/NonLing-CSE, naming
    the file), SimCSE, or the kit's nlsup_kit.paper (recipe_source, REFERENCE_RUNS, UNTRAINED_BERT) instead."""
    hits = private_notes_mentions(folder)
    assert not hits, f"{len(hits)} mention(s) of PAPER.md: " + ", ".join(hits)
