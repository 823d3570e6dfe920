"""The kit as a learner meets it: a wheel installed into a fresh virtual environment outside the checkout, the
notebooks copied out by the installed `nlsup notebooks` into an empty folder, an empty home, no NLSUP_DATA,
no ../shared; the data travels over HTTP from a mirror on 127.0.0.1 that serves SimCSE's file names.

The torch-sized dependencies come from the test's own environment through a .pth file, and their Jupyter data
files (nbconvert's templates) through JUPYTER_PATH: installing them again would copy gigabytes. The kit itself
is imported from the wheel, which the first test checks."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hints import TAG, with_hint_cells
from httpmirror import Handler, serving, simcse_release
from rendered import look

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
RUN_LIMIT = 2400  # seconds for the five notebooks with their solutions; about 900 on an idle 2-core machine

DRIVER = """
import sys
from pathlib import Path
from nlsup_kit.demo import execute_notebook
folder, results = Path(sys.argv[1]), Path(sys.argv[2])
for name in sys.argv[3:]:
    executed, seconds = execute_notebook(folder / name, results / "executed",
                                         {"RESULTS_DIR": str(results), "SOLUTIONS": True}, progress=False)
    print(f"{name}: {seconds:.0f}s", flush=True)
"""


@dataclass
class Learner:
    base: Path
    python: Path
    env: dict[str, str]
    lessons: Path
    results: Path

    def run(self, *args, env=None, timeout=600, prefix=()) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *map(str, args)], env=env or self.env, cwd=self.base, text=True,
                              capture_output=True, timeout=timeout)

    def notebooks(self, names, env=None, prefix=()) -> subprocess.CompletedProcess:
        return self.run(self.python, "-c", DRIVER, self.lessons, self.results, *names, env=env, prefix=prefix,
                        timeout=RUN_LIMIT)

    @property
    def cache(self) -> Path:
        """Where the kit keeps downloaded data in this learner's (empty at first) home."""
        return self.base / "home" / ".cache" / "nlsup-kit" / "data"

    def executed(self, name: str) -> dict:
        return json.loads((self.results / "executed" / name).read_text())


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def learner(tmp_path_factory, data_dir) -> Learner:
    base = tmp_path_factory.mktemp("learner")
    source = base / "source"  # setuptools builds inside the source tree: a copy keeps the checkout clean
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                                 ".pytest_cache", ".hypothesis"))
    checked(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(base / "dist"), str(source)], capture_output=True, text=True))
    checked(subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], capture_output=True, text=True))
    python = base / "venv" / "bin" / "python"
    site = checked(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True)).strip()
    Path(site, "reuse-big-wheels.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((base / "dist").glob("nlsup_kit-*.whl"))
    checked(subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                           capture_output=True, text=True))
    (base / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NLSUP_", "JUPYTER", "VIRTUAL_ENV", "PYTHON", "HF_", "XDG_"))}
    env.update(HOME=str(base / "home"), PATH=f"{python.parent}:{os.environ['PATH']}", NLSUP_MODE="quick",
               JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))  # the reused wheels' templates
    learner = Learner(base, python, env, base / "lessons", base / "results")
    checked(learner.run(python.parent / "nlsup", "notebooks", learner.lessons))
    for name in NOTEBOOKS:  # each exercise hint's code runs where the learner reads it (tests/hints.py)
        lesson = learner.lessons / name
        lesson.write_text(json.dumps(with_hint_cells(json.loads(lesson.read_text()))))
    return learner


def data_cells(lessons: Path) -> str:
    """Every notebook's data cell as one script, with the parameters cell's ``DATA_DIR = None``."""
    cells = ["".join(c["source"]) for name in NOTEBOOKS for c in json.loads((lessons / name).read_text())["cells"]
             if c["cell_type"] == "code" and "ensure_data(" in "".join(c["source"])]
    assert len(cells) == len(NOTEBOOKS)
    return "\n".join(["DATA_DIR = None", *cells])


@pytest.fixture(scope="module")
def first_run(learner, data_dir):
    """All five notebooks, then their data cells again in the same home; the mirror's request log after each."""
    with serving() as mirror:
        Handler.files = simcse_release(data_dir)
        env = {**learner.env, "NLSUP_MIRROR": mirror}
        output = checked(learner.notebooks(NOTEBOOKS, env))
        first = list(Handler.requests)
        again = checked(learner.run(learner.python, "-c", data_cells(learner.lessons), env=env))
        second = Handler.requests[len(first):]
    return output, first, second, again


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
