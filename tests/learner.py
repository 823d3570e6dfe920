"""The learner's machine, shared by the tests that need it (session fixtures in conftest.py): a wheel of this
checkout installed into a fresh virtual environment outside it, the notebooks copied out by the installed
`nlsup notebooks` into an empty folder, an empty home, no NLSUP_DATA, no ../shared; the data travels over HTTP
from a mirror on 127.0.0.1 that serves SimCSE's file names. ``first_run`` runs all seven notebooks there once,
with their solutions and hints: tests/test_installed.py checks that run, and reopens notebook 1 in JupyterLab
beside its finished runs (tests/lab.py).

The torch-sized dependencies come from the test's own environment through a .pth file, and their Jupyter data
files (nbconvert's templates) through JUPYTER_PATH: installing them again would copy gigabytes."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from hints import with_hint_cells
from httpmirror import Handler, serving, simcse_release

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
RUN_LIMIT = 2400  # seconds for the five notebooks with their solutions and hints: 1,215 on a 2-core AMD EPYC (2026-12)

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
    def home(self) -> Path:
        """The learner's home folder, empty at first."""
        return self.base / "home"

    @property
    def cache(self) -> Path:
        """Where the kit keeps downloaded data in this learner's home."""
        return self.home / ".cache" / "nlsup-kit" / "data"

    def executed(self, name: str) -> dict:
        return json.loads((self.results / "executed" / name).read_text())


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def make_learner(base: Path) -> Learner:
    """The learner's machine in the empty folder ``base``."""
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
    (base / "home").mkdir()  # Learner.home
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NLSUP_", "JUPYTER", "VIRTUAL_ENV", "PYTHON", "HF_", "XDG_", "OMP_"))}
    env.update(HOME=str(base / "home"), PATH=f"{python.parent}:{os.environ['PATH']}", NLSUP_MODE="quick",
               JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))  # the reused wheels' templates
    learner = Learner(base, python, env, base / "lessons", base / "results")
    checked(learner.run(python.parent / "nlsup", "notebooks", learner.lessons))
    for name in NOTEBOOKS:  # each exercise hint's code runs where the learner reads it (tests/hints.py)
        lesson = learner.lessons / name
        lesson.write_text(json.dumps(with_hint_cells(json.loads(lesson.read_text()))))
    return learner


def data_cells(lessons: Path) -> str:
    """Every notebook's parameters cell and data cell, in order, as one script (a data cell may read MODE)."""
    cells = []
    for name in NOTEBOOKS:
        code = [c for c in json.loads((lessons / name).read_text())["cells"] if c["cell_type"] == "code"]
        parameters = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        data = [c for c in code if "ensure_data(" in "".join(c["source"])]
        assert len(parameters) == len(data) == 1, f"{name}: one parameters cell and one data cell expected"
        cells += ["".join(parameters[0]["source"]), "".join(data[0]["source"])]
    return "\n".join(cells)


def run_every_notebook(learner: Learner, data_dir: Path) -> tuple[str, list[str], list[str], str]:
    """All seven notebooks, then their data cells again in the same home; the mirror's request log after each."""
    with serving() as mirror:
        Handler.files = simcse_release(data_dir)
        env = {**learner.env, "NLSUP_MIRROR": mirror}
        output = checked(learner.notebooks(NOTEBOOKS, env))
        first = list(Handler.requests)
        again = checked(learner.run(learner.python, "-c", data_cells(learner.lessons), env=env))
        second = Handler.requests[len(first):]
    return output, first, second, again
