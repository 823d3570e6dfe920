"""The main job: execute the notebook sequence in QUICK mode with papermill, export HTML beside each executed
notebook, and print one table of the STS results the notebooks recorded. Offline on a CPU; online on a fresh
machine it first downloads SentEval and a wiki1m slice."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nlsup_kit.data.paths import REPO_DATA_DIR, resolve_data_dir
from nlsup_kit.notebook import read_results

NOTEBOOK_DIR = REPO_DATA_DIR.parent / "notebooks"
CELL_TIMEOUT = 600


def ensure_data(data_dir: Path) -> None:
    """Online fallback: fetch SentEval and a wiki1m slice when the data directory lacks them."""
    from nlsup_kit.data.download import SOURCES, download_senteval, fetch_head
    from nlsup_kit.data.text import WIKI_SMALL

    if not (data_dir / "senteval").is_dir():
        download_senteval(data_dir)
    if not (data_dir / WIKI_SMALL).is_file():
        fetch_head(SOURCES["wiki1m"], data_dir / WIKI_SMALL, max_lines=20_000)


def execute_notebook(notebook: Path, out_dir: Path, parameters: dict | None = None) -> tuple[Path, float]:
    """Run one notebook with papermill (kernel python3, per-cell timeout) and write HTML beside the result."""
    import papermill
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    started = time.time()
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress-bar widgets in executed notebooks
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters or {},
                                   kernel_name="python3", cwd=str(notebook.parent),
                                   execution_timeout=CELL_TIMEOUT, progress_bar=False)
    finally:
        if quiet is None:
            os.environ.pop("TQDM_DISABLE")
        else:
            os.environ["TQDM_DISABLE"] = quiet
    seconds = time.time() - started
    body, _ = HTMLExporter(template_name="lab").from_filename(str(executed))
    executed.with_suffix(".html").write_text(body, encoding="utf-8")
    return executed, seconds


def results_table(rows: dict[str, dict[str, float]]) -> str:
    tasks = list(dict.fromkeys(t for values in rows.values() for t in values if t != "avg")) + ["avg"]
    width = max(map(len, rows)) + 2
    short = [t.replace("Benchmark", "-B").replace("Relatedness", "-R") for t in tasks]
    header = "run".ljust(width) + "".join(s.rjust(9) for s in short)
    lines = [header, "-" * len(header)]
    for name, values in rows.items():
        lines.append(name.ljust(width) + "".join(f"{values[t]:9.2f}" if t in values else " " * 8 + "-"
                                                 for t in tasks))
    return "\n".join(lines)


def run_demo(out_dir: str | Path = "build", data_dir: str | Path | None = None) -> dict[str, float]:
    """Execute every notebook in ``notebooks/``; returns seconds per notebook."""
    out_dir = Path(out_dir).resolve()
    data_dir = resolve_data_dir(data_dir, must_exist=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_data(data_dir)
    os.environ["NLSUP_DATA"] = str(data_dir)  # the kernels inherit it
    results_dir = out_dir / "notebooks"
    timings = {}
    for notebook in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        executed, seconds = execute_notebook(notebook, results_dir, {"RESULTS_DIR": str(results_dir)})
        timings[notebook.stem] = seconds
        print(f"[{sum(timings.values()):5.0f}s] {notebook.name}: {seconds:.0f}s -> {executed.with_suffix('.html')}")
    rows = {f"{nb[:2]} {name}": values for nb, table in read_results(results_dir).items()
            for name, values in table.items()}
    table = results_table(rows)
    (out_dir / "demo_sts.md").write_text(table + "\n")
    print(f"\nSTS (Spearman x 100, SentEval protocol) recorded by the notebooks, QUICK mode:\n{table}")
    return timings
