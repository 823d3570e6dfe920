"""JupyterLab for the browser test (tests/test_installed.py): a server with its own settings, run in the
learner's home beside that learner's finished runs, and the waits that say which step stalled: every wait
checks the server's own account (/api/sessions) too, so a failure names the step (no idle kernel, Run All
queued nothing, a traceback, no cell finishing) and leaves a screenshot and the server log.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_text_simcse.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LAB_SETTINGS = {  # JupyterLab 4 otherwise keeps off-screen cells out of the page; no news fetch offline
    "notebook-extension/tracker": {"windowingMode": "none"},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(condition, seconds: float, interval: float = 2) -> bool:
    """Whether ``condition()`` came true within ``seconds``."""
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(interval)
    return True


def finished_runs(runs: Path) -> dict[str, str]:
    """Each finished run's folder name and its result file's text."""
    return {path.parent.name: path.read_text() for path in sorted(runs.glob("*/result.json"))}


class Lab:
    """A JupyterLab server with its own settings, workspaces and runtime folders (nothing from ~/.jupyter)."""

    def __init__(self, tmp_path: Path, data_dir: Path, runs: Path, home: Path):
        self.workdir = tmp_path / "notebooks"
        self.workdir.mkdir()
        shutil.copy(ROOT / "notebooks" / NOTEBOOK, self.workdir)  # a copy: autosave must not touch the repo
        self.runs = self.workdir / "build" / "runs"  # where the notebook's RESULTS_DIR ("build") keeps its runs
        shutil.copytree(runs, self.runs, copy_function=os.link)  # the kit replaces files, never edits them
        self.copied = finished_runs(self.runs)
        for name, values in LAB_SETTINGS.items():
            plugin, file = name.split("/")
            path = tmp_path / "lab-settings" / "@jupyterlab" / plugin / f"{file}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "jupyterlab.log"
        env = {**os.environ, "HOME": str(home), "NLSUP_DATA": str(data_dir), "NLSUP_MODE": "quick",
               "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
        with open(self.log_path, "wb") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.workdir}", "--allow-root",
                 "--LabApp.extension_manager=readonly", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.base}/api/{path}?token={self.token}", timeout=10) as response:
            return json.loads(response.read())

    def kernel_state(self) -> str:
        """The notebook's kernel as the server sees it: 'none', 'starting', 'idle', 'busy', 'dead'..."""
        for session in self.api("sessions"):
            if session["path"] == NOTEBOOK and session.get("kernel"):
                return session["kernel"]["execution_state"]
        return "none"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def answers(self) -> bool:
        if self.server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {self.server.returncode}:\n{self.log_tail()}")
        try:
            self.api("status")
            return True
        except OSError:
            return False

    def wait_ready(self, seconds: float = 90) -> None:
        if not poll(self.answers, seconds, interval=1):
            pytest.fail(f"JupyterLab did not answer within {seconds:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()


def wait_until(condition, seconds: float, what: str, diagnose) -> None:
    if not poll(condition, seconds):
        pytest.fail(f"{what} (waited {seconds:.0f} s)\n{diagnose()}")
