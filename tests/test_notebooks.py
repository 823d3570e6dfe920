"""The notebook sequence, committed clean. Every notebook runs in QUICK mode under papermill as a learner would
run it, from an installed wheel: tests/test_installed.py."""

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_has_a_hint_a_scaffold_in_its_own_folder_and_a_collapsed_solution(path):
    """The solutions run in tests/test_installed.py (SOLUTIONS = True); here, their shape in the file."""
    cells = json.loads(path.read_text())["cells"]
    parameters = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assert "SOLUTIONS = False" in "".join(parameters["source"])
    starts = [i for i, c in enumerate(cells) if "".join(c["source"]).startswith("### Exercise")]
    assert len(starts) >= 2
    for i in starts:
        task, scaffold, solution = cells[i:i + 3]
        assert "<summary>Hint</summary>" in "".join(task["source"])
        assert scaffold["cell_type"] == "code" and "TODO" in "".join(scaffold["source"])
        written = [line for line in scaffold["source"] + solution["source"] if "RESULTS_DIR}/" in line
                   and any(call in line for call in ("train(", "Trainer(", "Path("))]
        assert all("RESULTS_DIR}/exercises/" in line for line in written), written  # never the shared runs
        assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True
        assert "".join(solution["source"]).startswith("# Solution\nif SOLUTIONS")
