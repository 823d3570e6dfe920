"""The kit as a learner meets it (tests/learner.py sets the machine up and runs every notebook once): the kit
comes from the wheel, each notebook fetches its data through the kit, runs its solutions and hints, renders
offline, and fails in a second with one line when there is no network and no data."""

import dataclasses
import tomllib
from pathlib import Path

from hints import TAG
from learner import NOTEBOOKS, ROOT, checked
from rendered import look


def test_the_kit_is_imported_from_the_wheel_not_the_checkout(learner):
    where = checked(learner.run(learner.python, "-c", "import nlsup_kit; print(nlsup_kit.__file__)")).strip()
    assert Path(where).is_relative_to(learner.base / "venv"), where
    assert sorted(p.name for p in learner.lessons.iterdir()) == NOTEBOOKS


def test_every_notebook_runs_from_the_wheel_and_fetches_its_data_through_the_kit(learner, first_run):
    output, first, *_ = first_run
    cache = learner.cache
    for name in NOTEBOOKS:
        assert f"{name}: " in output
        outputs = [o for c in learner.executed(name)["cells"] for o in c.get("outputs", [])]
        text = "".join("".join(o.get("text", "")) for o in outputs)
        assert not [o for o in outputs if o["output_type"] == "error"]
        assert f"data: {cache}" in text, name  # each data cell asked the kit and got the cache folder
        assert "checks passed" in text, name
        solutions = [c for c in learner.executed(name)["cells"] if "".join(c["source"]).startswith("# Solution")]
        assert solutions and all(c["outputs"] for c in solutions), name  # every exercise's solution ran and printed
        hints = [c for c in learner.executed(name)["cells"] if TAG in c["metadata"].get("tags", [])]
        assert len(hints) >= 2 and all(c["execution_count"] for c in hints), name  # every hint's code ran
        html = (learner.results / "executed" / name).with_suffix(".html")
        assert "Plotly.newPlot" in html.read_text(), name  # interactive figures made it into the exported HTML
        seen = look(html)  # offline, in Chromium: every formula typeset, every solution folded
        assert seen.unrendered == [], name
        assert len(seen.solutions) == len(solutions) and seen.open_solutions == [], name
    assert sorted(first) == ["/senteval.tar", "/wiki1m_for_simcse.txt"]  # each file once, by its release name
    assert (cache / "senteval" / "STS" / "STSBenchmark" / "sts-test.csv").is_file()
    assert (cache / "wiki" / "wiki_sentences.txt").is_file()


def test_the_data_cells_run_again_in_the_same_home_download_nothing(learner, first_run):
    _, _, second, again = first_run
    assert second == []
    assert again.splitlines() == [f"data: {learner.cache}"] * len(NOTEBOOKS)


def test_colab_cells_read_from_the_executed_notebooks(learner, first_run):
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    for name in NOTEBOOKS:
        cells = learner.executed(name)["cells"]
        install = "".join(cells[1]["source"])
        assert f'%pip install -q "nlsup-kit[notebooks] @ git+{url}"' in install
        assert 'if "google.colab" in sys.modules:' in install  # does nothing here, as outside any Colab
        assert not cells[1].get("outputs")
        parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        source = "".join(parameters["source"])
        assert "MODE = notebook_mode()" in source and "NLSUP_MODE=quick, class or full" in source
        printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
        assert "\ngpu: none (quick mode is sized for a CPU)" in printed


def test_offline_with_no_data_and_no_mirror_the_data_cell_fails_in_a_second_with_one_line(learner):
    """No network at all (a fresh network namespace), an empty home, no NLSUP_MIRROR: the official source."""
    home = learner.base / "offline-home"
    home.mkdir()
    offline = dataclasses.replace(learner, env={**learner.env, "HOME": str(home)}, results=learner.base / "offline")
    result = offline.notebooks([NOTEBOOKS[0]], prefix=("unshare", "--net"))
    assert result.returncode != 0
    cells = offline.executed(NOTEBOOKS[0])["cells"]
    failed = [(c, o) for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(failed) == 1
    cell, error = failed[0]
    assert "ensure_data(" in "".join(cell["source"])
    assert error["ename"] == "NlsupError" and len(error["traceback"]) == 1, error["traceback"]
    line = error["traceback"][0]
    assert "huggingface.co" in line and "NLSUP_MIRROR" in line and "nlsup download senteval" in line
    assert cell["metadata"]["papermill"]["duration"] < 2
    assert not (home / ".cache" / "nlsup-kit").exists()
