"""What a learner sees of an exported notebook with the network off: formulas left as raw LaTeX, formulas that
are not laid out, solutions left open. Other tests import it (``from rendered import look``).

Headless Chromium, an offline context, and every request that is not file: or data: aborted: a page that only
renders with a CDN's help (MathJax) fails here as it would in a classroom without network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # as in tests/lab.py
FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)

SOLUTIONS = """() => [...document.querySelectorAll('.jp-CodeCell')]
    .filter(cell => (cell.querySelector('.jp-InputArea-editor')?.textContent ?? '').trim().startsWith('# Solution'))
    .map(cell => ({first_line: cell.querySelector('.jp-InputArea-editor').textContent.trim().split('\\n')[0],
                   folded: !!cell.closest('details:not([open])')}))"""
# With every <details> open (a hint's formulas count too), the text a reader sees outside code, and each
# <math> that takes no room or whose fractions are not stacked (numerator above denominator): not MathML layout.
SEEN = """() => {
    document.querySelectorAll('details').forEach(d => d.open = true);
    const style = document.head.appendChild(document.createElement('style'));
    style.textContent = 'pre, code { display: none !important; }';
    const text = document.body.innerText;
    style.remove();
    const flat = [...document.querySelectorAll('math')].filter(m => {
        const box = m.getBoundingClientRect();
        return box.width === 0 || box.height === 0 || [...m.querySelectorAll('mfrac')].some(f =>
            f.children[0].getBoundingClientRect().bottom > f.children[1].getBoundingClientRect().top + 1);
    }).map(m => m.textContent);
    return {text, flat, math: document.querySelectorAll('math').length};
}"""


class Look(NamedTuple):
    unrendered: list[str]  # `$...$` / `$$...$$` still in the visible text, and "<math> not laid out: ..."
    math: int  # <math> elements in the page
    solutions: list[str]  # first line of each solution cell
    open_solutions: list[str]  # those not inside a closed <details>


def look(html_path: str | Path) -> Look:
    """Open ``html_path`` offline in headless Chromium and report what a learner would see (see :class:`Look`).
    No Chromium: the calling test fails with one line (a missing browser must not pass quietly)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (.ci/run does)", pytrace=False)
    import playwright.sync_api as playwright

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(offline=True)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                          else route.abort())
            page = context.new_page()
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load")
            solutions = page.evaluate(SOLUTIONS)
            seen = page.evaluate(SEEN)
        finally:
            browser.close()
    return Look(FORMULA.findall(seen["text"]) + [f"<math> not laid out: {t}" for t in seen["flat"]], seen["math"],
                [s["first_line"] for s in solutions], [s["first_line"] for s in solutions if not s["folded"]])


def unrendered_formulas(html_path: str | Path) -> list[str]:
    """The formulas a learner would read as raw LaTeX (or not at all) in ``html_path`` offline."""
    return look(html_path).unrendered


def open_solutions(html_path: str | Path) -> list[str]:
    """The solution cells of ``html_path`` that are not folded in a closed ``<details>``."""
    return look(html_path).open_solutions
