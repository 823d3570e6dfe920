"""The notebook sequence: committed clean, and every notebook runs in QUICK mode under papermill."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_five_notebooks_in_sequence():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_with_one_parameters_cell(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "committed outputs"
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in notebook["cells"]) == 1
    first = "".join(notebook["cells"][0]["source"])
    assert "colab.research.google.com" in first and path.name in first
    assert "google.colab" in "".join(code[0]["source"])  # the install cell is a no-op elsewhere


@pytest.fixture(scope="session")
def shared_results(tmp_path_factory):
    """One results folder for the whole sequence, as in `make demo`: later notebooks reuse earlier runs."""
    return tmp_path_factory.mktemp("notebook-results")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, data_dir, tmp_path, shared_results, monkeypatch):
    """Each notebook ends with assertions on its own results, so a broken lesson fails here."""
    pytest.importorskip("papermill")
    from nlsup_kit.demo import execute_notebook

    monkeypatch.setenv("NLSUP_DATA", str(data_dir))
    monkeypatch.setenv("NLSUP_MODE", "quick")
    executed, _ = execute_notebook(path, tmp_path, {"RESULTS_DIR": str(shared_results)})
    outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("checks passed" in "".join(o.get("text", "")) for o in outputs)
    html = executed.with_suffix(".html").read_text()
    assert "Plotly.newPlot" in html  # interactive figures made it into the exported HTML
