"""A learner's view: JupyterLab in headless Chromium runs notebook 1 end to end and draws plotly figures.

The learner has run the notebooks once already (the session's ``first_run``, tests/learner.py): notebook 1 is
reopened in that learner's home beside that run's finished runs, as a learner reopens it: ``train(...,
reuse=True)`` loads them, the evaluations read the similarities stored by the first run
(:mod:`nlsup_kit.similarity_cache`), and every cell runs again. The test checks that nothing was trained again.

Every wait checks the server's own account (/api/sessions) too, so a failure says which step stalled
(no idle kernel, Run All queued nothing, a traceback, no cell finishing) and leaves a screenshot and the
server log.
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


@pytest.fixture
def jupyterlab(tmp_path, data_dir, learner, first_run):
    lab = Lab(tmp_path, data_dir, learner.results / "runs", learner.home)
    try:
        lab.wait_ready()
        yield lab
    finally:
        lab.stop()


def wait_until(condition, seconds: float, what: str, diagnose) -> None:
    if not poll(condition, seconds):
        pytest.fail(f"{what} (waited {seconds:.0f} s)\n{diagnose()}")


STALL_SECONDS = 600  # no cell finished for this long: stuck (a quick cell here takes well under a minute)
LIMIT_SECONDS = 2400  # slow machines may take long, as long as cells keep finishing


@pytest.mark.slow
def test_notebook_one_runs_in_jupyterlab_and_draws_plotly(jupyterlab):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (.ci/run does)", pytrace=False)
    import playwright.sync_api as playwright
    lab = jupyterlab
    screenshot = ROOT / "build" / "jupyterlab_01_text_simcse.png"
    screenshot.parent.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.time()

        def prompts() -> list[str]:
            return [text.strip() for text in page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]

        def diagnose() -> str:
            page.screenshot(path=str(screenshot))
            dialogs = page.locator(".jp-Dialog").all_inner_texts()
            return (f"after {time.time() - started:.0f} s: kernel {lab.kernel_state()}; code cell prompts "
                    f"{prompts()}; dialogs {dialogs}; screenshot {screenshot}\n"
                    f"server log ({lab.log_path}):\n{lab.log_tail()}")

        def output(text: str):
            return page.locator(f".jp-OutputArea-output:has-text('{text}')")

        def run_all() -> None:
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.locator("li[data-command='runmenu:run-all']").click()

        page.goto(f"{lab.base}/lab/tree/{NOTEBOOK}?token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        wait_until(lambda: lab.kernel_state() == "idle", 180, "the notebook's kernel never became idle", diagnose)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
        def started_running() -> bool:
            return any(p.startswith("[*]") or p[1:2].isdigit() for p in prompts())

        run_all()
        if not poll(started_running, 30):
            run_all()  # a click that landed while the page was still settling: once more, then insist
            wait_until(started_running, 60, "Run > Run All Cells queued no cell, twice", diagnose)

        progress = {"done": -1, "at": time.time()}

        def finished() -> bool:
            if output("Traceback").count():
                pytest.fail(f"the notebook raised:\n{page.locator('.jp-OutputArea-output').all_inner_texts()[-1]}")
            if lab.kernel_state() in ("dead", "none"):
                pytest.fail(f"the kernel died while running the notebook\n{diagnose()}")
            done = sum(p[1:2].isdigit() for p in prompts())
            if done != progress["done"]:
                progress.update(done=done, at=time.time())
            elif time.time() - progress["at"] > STALL_SECONDS:
                pytest.fail(f"no cell finished for {STALL_SECONDS} s\n{diagnose()}")
            return output("checks passed").count() > 0

        wait_until(finished, LIMIT_SECONDS, "the notebook did not print 'checks passed'", diagnose)
        assert finished_runs(lab.runs) == lab.copied, "notebook 1 trained again instead of reusing the finished runs"
        assert {"quick-simcse-seed42", "01-quick-simcse-avg-seed42", "01-sup-quick-simcse"} <= set(lab.copied)
        assert page.locator(".js-plotly-plot .main-svg").count() >= 3
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot))
        browser.close()
