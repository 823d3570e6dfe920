"""Small helpers the notebooks share: environment report, QUICK/FULL switch, results for the demo table."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

QUICK_TASKS = ["STS16", "STSBenchmark"]  # about 5k distinct sentences: seconds on a CPU


def quick_default() -> bool:
    """QUICK unless ``NLSUP_MODE=full``: the same notebook serves papermill, JupyterLab and Colab."""
    return os.environ.get("NLSUP_MODE", "quick").lower() != "full"


def describe_environment() -> str:
    import torch
    import transformers

    import nlsup_kit

    device = (f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available()
              else f"cpu ({os.cpu_count()} cores)")
    return (f"python {platform.python_version()} | torch {torch.__version__} | transformers "
            f"{transformers.__version__} | nlsup-kit {nlsup_kit.__version__} | device {device}\n{gpu_line()}")


def gpu_line() -> str:
    """What GPU this session has, and on Colab how to get one (a free T4 runs the GPU settings)."""
    import torch

    if torch.cuda.is_available():
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"gpu: {torch.cuda.get_device_name(0)}, {memory:.0f} GiB"
    if "google.colab" in sys.modules:
        return "gpu: none (for one: Runtime > Change runtime type > T4 GPU, then run all cells again)"
    return "gpu: none (QUICK mode is sized for a CPU)"


def record_results(results_dir: str | Path, notebook: str, rows: dict[str, dict[str, float]]) -> Path:
    """Write the STS rows a notebook produced, for the demo's summary table."""
    path = Path(results_dir) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path


def read_results(results_dir: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("*.json"))}
