"""The main job: execute the notebook sequence in QUICK mode with papermill, export HTML beside each executed
notebook, and print one table of the STS results the notebooks recorded. The notebooks ship inside the kit,
so this runs from a plain ``pip install`` as well as from a checkout; the data is found or downloaded once
(see :func:`nlsup_kit.data.ensure_data`)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from nlsup_kit.data.paths import shipped_dir
from nlsup_kit.data.senteval import short_task_name
from nlsup_kit.errors import NlsupError
from nlsup_kit.notebook import read_results

CELL_TIMEOUT = 600
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
DEMO_DATA = ("senteval", "wiki", "digits", "spoken-words")  # what the seven notebooks read in QUICK mode


def notebooks() -> list[Path]:
    """The lesson sequence, from the installed kit (or the checkout's ``notebooks/``)."""
    folder = shipped_dir("notebooks")
    found = sorted(folder.glob(NOTEBOOK_PATTERN))
    if not found:
        raise NlsupError(f"{folder}: no notebooks in the installed kit; reinstall nlsup-kit")
    return found


def copy_notebooks(target: str | Path) -> list[Path]:
    """Copy the notebooks into ``target`` for a user to open; a notebook already there is kept, not replaced
    (it may hold the user's own edits)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks():
        destination = target / notebook.name
        if destination.exists():
            print(f"kept {destination} (already there; delete it to get a fresh copy)")
            continue
        shutil.copyfile(notebook, destination)
        written.append(destination)
    return written


def execute_notebook(notebook: Path, out_dir: Path, parameters: dict | None = None,
                     progress: bool | None = None) -> tuple[Path, float]:
    """Run one notebook with papermill (kernel python3, per-cell timeout, working directory ``out_dir``) and
    write HTML beside the result (:func:`nlsup_kit.html_export.export_html`: formulas as MathML, solutions
    folded, readable offline). ``progress``: papermill's cell-by-cell bar (None: on a terminal only)."""
    import papermill
    from traitlets.config import Config

    from nlsup_kit.html_export import export_html

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    started = time.time()
    saved = {name: os.environ.get(name) for name in ("TQDM_DISABLE", "NLSUP_BATCH")}
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress-bar widgets in executed notebooks
    os.environ["NLSUP_BATCH"] = "1"  # and no interactive widgets (notebook.live_front_end)
    # Local IPC sockets where the OS has them: the kernel then has no reason to warn about unencrypted TCP.
    transport = Config({"KernelManager": {"transport": "ipc"}}) if os.name == "posix" else Config()
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters or {},
                                   kernel_name="python3", cwd=str(out_dir), execution_timeout=CELL_TIMEOUT,
                                   progress_bar={"disable": None if progress is None else not progress,
                                                 "desc": notebook.stem, "leave": False},
                                   config=transport)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.time() - started
    drop_progress_widgets(executed)
    export_html(executed)
    return executed, seconds


def drop_progress_widgets(executed: Path) -> None:
    """A library's own progress bar (transformers' weight loading, sentence-transformers' model card) renders in a
    kernel as a widget, whatever TQDM_DISABLE says (tqdm's notebook bars set ``disable`` themselves), and an executed
    notebook keeps only its first frame, "0%": a load that looks stalled. Batch runs show no widgets, so none is kept."""
    notebook = json.loads(executed.read_text())
    for cell in notebook["cells"]:
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET_VIEW not in o.get("data", {})]
    notebook["metadata"].pop("widgets", None)
    executed.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def results_table(rows: dict[str, dict[str, float]]) -> str:
    """One column per task, and "avg" only where some row averages more than one task (over one task it would
    repeat that task's column)."""
    tasks = list(dict.fromkeys(t for values in rows.values() for t in values if t != "avg"))
    if any(len([t for t in values if t != "avg"]) > 1 for values in rows.values()):
        tasks.append("avg")
    width = max(map(len, rows)) + 2
    short = [short_task_name(t) for t in tasks]
    header = "run".ljust(width) + "".join(s.rjust(9) for s in short)
    lines = [header, "-" * len(header)]
    for name, values in rows.items():
        lines.append(name.ljust(width) + "".join(f"{values[t]:9.2f}" if t in values else " " * 8 + "-"
                                                 for t in tasks))
    return "\n".join(lines)


def run_demo(out_dir: str | Path = "build", data_dir: str | Path | None = None) -> dict[str, float]:
    """Execute every notebook of the sequence; returns seconds per notebook."""
    from nlsup_kit.data import ensure_data

    out_dir = Path(out_dir).resolve()
    # Fetched here, with a progress bar on the terminal, rather than silently inside the first kernel.
    os.environ["NLSUP_DATA"] = str(ensure_data(DEMO_DATA, data_dir))  # the kernels inherit it
    results_dir = out_dir / "notebooks"
    timings = {}
    sequence = notebooks()
    for number, notebook in enumerate(sequence, start=1):
        print(f"[{sum(timings.values()):5.0f}s] {number}/{len(sequence)} {notebook.name} ...", flush=True)
        executed, seconds = execute_notebook(notebook, results_dir, {"RESULTS_DIR": str(results_dir)})
        timings[notebook.stem] = seconds
        print(f"[{sum(timings.values()):5.0f}s] {notebook.name}: {seconds:.0f}s -> {executed.with_suffix('.html')}",
              flush=True)
    rows = {f"{nb[:2]} {name}": values for nb, table in read_results(results_dir).items()
            for name, values in table.items()}
    table = results_table(rows)
    (out_dir / "demo_sts.md").write_text(table + "\n")
    print(f"\nSTS (Spearman x 100, SentEval protocol) recorded by the notebooks, quick mode:\n{table}")
    return timings
