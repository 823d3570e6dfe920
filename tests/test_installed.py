"""The kit as a learner meets it (tests/learner.py sets the machine up and runs every notebook once): the kit
comes from the wheel, each notebook fetches its data through the kit, runs its solutions and hints, renders
offline, fails in a second with one line when there is no network and no data, and notebook 1 runs again in
JupyterLab in a browser (tests/lab.py)."""

import dataclasses
import time
import tomllib
from pathlib import Path

import pytest

from hints import TAG
from lab import ARGS, CHROMIUM, NOTEBOOK, Lab, finished_runs, poll, wait_until
from learner import NOTEBOOKS, ROOT, checked
from rendered import look


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
    # each file once, by its release name; the checksum list once, before the archive (this mirror has none: 404)
    assert sorted(first) == ["/SHA256SUMS", "/senteval.tar", "/wiki1m_for_simcse.txt"]
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


@pytest.fixture
def jupyterlab(tmp_path, data_dir, learner, first_run):
    lab = Lab(tmp_path, data_dir, learner.results / "runs", learner.home)
    try:
        lab.wait_ready()
        yield lab
    finally:
        lab.stop()


STALL_SECONDS = 600  # no cell finished for this long: stuck (a quick cell here takes well under a minute)
LIMIT_SECONDS = 2400  # slow machines may take long, as long as cells keep finishing


@pytest.mark.slow
def test_notebook_one_runs_in_jupyterlab_and_draws_plotly(jupyterlab):
    """A learner's view: JupyterLab in headless Chromium runs notebook 1 end to end and draws plotly figures.
    The learner has run the notebooks once already (``first_run``): notebook 1 is reopened in that learner's
    home beside that run's finished runs, as a learner reopens it: ``train(..., reuse=True)`` loads them, the
    evaluations read the similarities stored by the first run (:mod:`nlsup_kit.similarity_cache`), and every
    cell runs again. Nothing may be trained again."""
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
        assert {"quick-simcse-seed42", "quick-simcse-cls-seed42", "01-sup-quick-simcse"} <= set(lab.copied)
        assert page.locator(".js-plotly-plot .main-svg").count() >= 3
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot))
        browser.close()
