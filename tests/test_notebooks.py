"""The notebook sequence, committed clean, and its class mode run on a CPU with stand-ins. Every notebook runs
in QUICK mode under papermill as a learner would run it, from an installed wheel: tests/test_installed.py."""

import json
import re
from pathlib import Path

import pytest
from hints import TAG, hint_code, with_hint_cells

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_seven_notebooks_in_sequence():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


def english_stand_in_data(data_dir, folder):
    """A data folder for class mode on a CPU: the real SentEval, and a Wikipedia file of its first 1,000 lines."""
    (folder / "wiki").mkdir(parents=True)
    (folder / "senteval").symlink_to(data_dir / "senteval")
    with open(data_dir / "wiki" / "wiki_sentences.txt", encoding="utf-8") as wiki:
        (folder / "wiki" / "wiki_sentences.txt").write_text("".join(line for line, _ in zip(wiki, range(1000))))
    return folder


def failed_at_the_final_checks(failure, executed) -> str:
    """Assert that a class-mode run stopped at the notebook's final checks, refusing a stand-in, after every
    cell above them ran; returns everything the cells printed."""
    assert failure.value.ename == "AssertionError" and "did not" in failure.value.evalue, failure.value.evalue
    cells = [c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"]
    failed = next(i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c["outputs"]))
    assert "if training did nothing" in "".join(cells[failed]["source"]), executed.name  # the final checks
    assert all(c["execution_count"] for c in cells[:failed]), executed.name  # every cell before them ran
    return "".join("".join(o.get("text", "")) for c in cells for o in c["outputs"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_with_one_parameters_cell(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "committed outputs"
    parameters = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1
    source = "".join(parameters[0]["source"])  # the mode switch a learner reads there (tests/test_installed.py too)
    assert "MODE = notebook_mode()" in source and "NLSUP_MODE=quick, class or full" in source
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
        assert len(hint_code("".join(task["source"]))) == 1, "a hint holds one python block, run by the tests"
        assert re.search(r"\(quick mode: (about [0-9]+ (seconds|minutes?)|under (a second|a minute|[0-9]+ seconds)|a second or two) on a 2-core CPU\)",
                         "".join(task["source"]).splitlines()[0]), "the exercise's cost"
        assert scaffold["cell_type"] == "code" and "TODO" in "".join(scaffold["source"])
        written = [line for line in scaffold["source"] + solution["source"] if "RESULTS_DIR}/" in line
                   and any(call in line for call in ("train(", "Trainer(", "Path("))]
        assert all("RESULTS_DIR}/exercises/" in line for line in written), written  # never the shared runs
        assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True
        assert "".join(solution["source"]).startswith("# Solution\nif SOLUTIONS")
        assert "watch = Stopwatch()" in "".join(solution["source"]) and "print(watch.line())" in "".join(
            solution["source"]), "a solution prints its own time, beside the heading's estimate"


def test_class_mode_runs_every_cell_on_a_cpu_with_stand_ins_until_the_checks_refuse_them(data_dir, tmp_path,
                                                                                        monkeypatch):
    """Class mode trains BERT-base on a GPU. Here notebook 2 (both class runs, text and images) runs it on a CPU
    with stand-ins reached the way the real things are: a 2-layer random BERT in a local Hugging Face cache
    under bert-base-uncased's hub id, and a data folder whose Wikipedia file holds the first 1,000 sentences. Every cell runs (the plan,
    the class runs, evaluations, charts) until each notebook's final checks, which must refuse the random
    stand-in: they guard against training that learned nothing. The released SimCSE and VisualCSE have stand-ins
    in the same cache, so the lesson's released-model cell measures them as it would the real ones, and the
    first final check refuses them. (Notebooks 1, 3 and 5 ran the same way by hand, in about 25 s each; left out
    to keep the suite under 30 minutes. Notebook 4 needs a GPU for class mode.)"""
    import math

    from papermill.exceptions import PapermillExecutionError

    from conftest import hub_stand_in
    from nlsup_kit.demo import execute_notebook

    hub_stand_in(tmp_path / "hub", "google-bert/bert-base-uncased")
    for seed, released in enumerate(("princeton-nlp/unsup-simcse-bert-base-uncased",
                                     "gcyzsl/unsup-VisualCSE-bert-base-uncased"), start=1):
        hub_stand_in(tmp_path / "hub", released, seed=seed)
    data = english_stand_in_data(data_dir, tmp_path / "data")
    for name, value in {"NLSUP_MODE": "class", "NLSUP_DATA": str(data), "HF_HUB_CACHE": str(tmp_path / "hub"),
                        "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)  # the kernel's environment, as a learner's Jupyter would have it

    steps = math.ceil(1000 / 64) * 3  # three epochs of the stand-in corpus at batch 64
    for notebook in [p for p in NOTEBOOKS if p.name[:2] == "02"]:
        with pytest.raises(PapermillExecutionError) as failure:
            execute_notebook(notebook, tmp_path / "executed", {"RESULTS_DIR": str(tmp_path / "results")})
        printed = failed_at_the_final_checks(failure, tmp_path / "executed" / notebook.name)
        assert "released:simcse-bert-base measured" in failure.value.evalue
        assert "it did not reproduce its published score within 2 points" in failure.value.evalue
        assert re.search(r"released:visualcse-bert-base over released:simcse-bert-base, STSBenchmark: published "
                         r"\+3\.18, measured here [+-]\d", printed), printed
        if notebook.name.startswith("02"):
            assert f"class mode: 2 runs, {2 * steps} steps (class-visualcse {steps}, class-simcse {steps})" in printed
    runs = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    assert runs == ["class-simcse-seed42", "class-visualcse-seed42"]


def test_a_hint_runs_where_the_learner_reads_it_and_a_broken_one_stops_the_notebook(tmp_path):
    """The mechanism tests/test_installed.py applies to every notebook: the hint's code runs after the cells
    above it (it sees their names), and a hint that raises fails the run."""
    from papermill.exceptions import PapermillExecutionError

    from nlsup_kit.demo import execute_notebook

    def notebook(hint: str) -> dict:
        exercise = f"### Exercise 1\n<details><summary>Hint</summary>\n\n```python\n{hint}\n```\n\n</details>"
        return {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {"tags": ["parameters"]},
                           "outputs": [], "source": "above = 41"},
                          {"cell_type": "markdown", "id": "b", "metadata": {}, "source": exercise}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}

    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    good.write_text(json.dumps(with_hint_cells(notebook("print(above + 1)"))))
    bad.write_text(json.dumps(with_hint_cells(notebook("print(knn_accuracy)"))))
    executed, _ = execute_notebook(good, tmp_path / "out")
    hint = next(c for c in json.loads(executed.read_text())["cells"] if TAG in c["metadata"].get("tags", []))
    assert hint["outputs"][0]["text"] == ["42\n"]
    with pytest.raises(PapermillExecutionError, match="NameError"):
        execute_notebook(bad, tmp_path / "out")


def test_an_executed_notebook_keeps_no_progress_bar_widget_and_every_other_output(tmp_path):
    """A library's tqdm bar in a kernel is a widget that TQDM_DISABLE does not reach; its saved first frame ("0%")
    would read as a stalled load, so the executed notebook drops it and keeps the cell's printed output."""
    from nlsup_kit.demo import WIDGET_VIEW, execute_notebook

    source = "from tqdm.notebook import tqdm\nfor _ in tqdm(range(3), desc='a library bar'):\n    pass\nprint('loaded')"
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {}, "outputs": [],
                           "source": source}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "bar.ipynb"
    path.write_text(json.dumps(notebook))
    executed, _ = execute_notebook(path, tmp_path / "out")
    outputs = json.loads(executed.read_text())["cells"][0]["outputs"]
    assert [o.get("text") for o in outputs] == [["loaded\n"]]
    assert not any(WIDGET_VIEW in o.get("data", {}) for o in outputs)


def test_notebook_6_class_mode_trains_in_german_through_stand_ins_until_the_checks_refuse_them(data_dir, tmp_path,
                                                                                              monkeypatch):
    """Notebook 6's class mode on a CPU, what it downloads replaced by stand-ins reached the way the real things
    are: random 2-layer models in a local hub cache under bert-base-uncased's, mBERT's and XLM-R base's hub ids;
    German STS-B and the STS17 archive written by the tests in their releases' formats and sizes
    (tests/test_multilingual.py) and served by a local mirror under their release names. As notebook 2's test
    holds a 1,000-line Wikipedia file, the data folder holds the German corpus as a finished download leaves it,
    cut to 1,000 sentences (48 steps a run, not 936; the download itself is tested in tests/test_multilingual.py).
    Every cell runs (the tokenizer comparison, both German recipes, their evaluation on German STS-B and STS17
    en-de, the charts) until the final checks, which must refuse the random stand-ins. One seed
    (EXTRA_SEEDS=[]); a second seed is the same code path again."""
    from papermill.exceptions import PapermillExecutionError

    from conftest import hub_stand_in
    from httpmirror import Handler, serving
    from nlsup_kit.data.multilingual import STS17_PAIRS, STSB_MULTI_ROWS
    from nlsup_kit.demo import execute_notebook
    from nlsup_kit.recipes import RECIPES
    from nlsup_kit.data.leipzig import corpus_file
    from test_multilingual import german_split, sts17_archive, sts17_track

    hub = tmp_path / "hub"
    for repo_id, family in (("google-bert/bert-base-uncased", "bert"), ("google-bert/bert-base-multilingual-cased", "bert"),
                            ("FacebookAI/xlm-roberta-base", "xlm-roberta")):
        hub_stand_in(hub, repo_id, family)
    data = english_stand_in_data(data_dir, tmp_path / "data")
    corpus = RECIPES["class-simcse-xlmr"].text_data.removeprefix("leipzig:")
    stored = corpus_file(data, corpus)
    stored.parent.mkdir(parents=True)
    stored.write_text("".join(f"Satz {i}: Ein Kind liest im Garten ein Buch über {i % 97} Sterne.\n" for i in range(1000)),
                      encoding="utf-8")
    notebook = next(p for p in NOTEBOOKS if p.name.startswith("06"))
    with serving() as address:
        Handler.files = {**{f"/stsb-de-{split}.csv": german_split(STSB_MULTI_ROWS[split], seed)
                            for split, seed in (("dev", 1), ("test", 2))},
                         "/STS2017-extended.zip": sts17_archive({pair: sts17_track(pair, seed)
                                                                 for seed, pair in enumerate(STS17_PAIRS)})}
        for name, value in {"NLSUP_MODE": "class", "NLSUP_DATA": str(data), "HF_HUB_CACHE": str(hub),
                            "HF_HUB_OFFLINE": "1", "NLSUP_MIRROR": address}.items():
            monkeypatch.setenv(name, value)  # the kernel's environment, as a learner's Jupyter would have it
        with pytest.raises(PapermillExecutionError) as failure:
            execute_notebook(notebook, tmp_path / "executed", {"RESULTS_DIR": str(tmp_path / "results"), "EXTRA_SEEDS": []})
    printed = failed_at_the_final_checks(failure, tmp_path / "executed" / notebook.name)
    assert "did not beat the untrained XLM-R" in failure.value.evalue
    assert "class mode: 2 runs, 96 steps (class-simcse-xlmr 48, class-visualcse-xlmr 48); no step time measured for xlmr-base" in printed
    for model in ("bert-base-uncased", "mbert", "xlmr-base"):
        assert f"\n{model}: pieces x English" in printed  # each tokenizer measured
    assert "stsb-de: stsb_multi_mt" in printed and "sts17-en-de: STS17, cross-lingual" in printed  # the protocol
    runs = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    # English SimCSE is notebook 1's second run, through the model's own pooler (the mean of the tokens for raw BERT)
    assert runs == ["class-simcse-avg-seed42", "class-simcse-xlmr-seed42", "class-visualcse-xlmr-seed42"]
