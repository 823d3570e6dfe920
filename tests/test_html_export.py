"""The HTML that `nlsup demo` writes, as a learner opens it with the network off: every formula of the kit's
notebooks typeset (MathML, no MathJax to fetch), `$` in code left alone, exercise solutions folded."""

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from rendered import look

from nlsup_kit.html_export import export_html, latex_to_mathml

ROOT = Path(__file__).resolve().parents[1]
# What the notebooks write, also when a notebook is edited away from one of them.
FORMULAS = r"""For a batch of $B$ sentences, $z_i^+$, $z_j^-$, $\ell_i$, $\mathcal{L}$, $B\times B$ and
$\log \mathbb{E}\, e^{-2\|f(x)-f(y)\|^2}$, $p\in P(a)$, $k\neq a$:

$$\ell_i = -\log \frac{e^{\cos(z_i, z_i^+)/\tau}}{\sum_{j=1}^{B}\left(e^{\cos(z_i, z_j^+)/\tau} + e^{\cos(z_i, z_j^-)/\tau}\right)}, \qquad \tau = 0.05 .$$

<details><summary>Hint</summary>

A model that cannot tell the sentences apart has loss $\log B$.

</details>
"""
CODE = "Code keeps its dollars: `price = \"$5\"` and `$x$`.\n\n```\ncost = '$$a$$ and $b$'\n```\n"


def kit_markdown() -> list[str]:
    """Every markdown cell of the kit's notebooks that holds a `$`."""
    cells = (c for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
             for c in json.loads(path.read_text())["cells"])
    return [source for c in cells if c["cell_type"] == "markdown" and "$" in (source := "".join(c["source"]))]


def test_html_has_every_formula_as_mathml_and_the_solution_folded(tmp_path):
    markdown = kit_markdown()
    assert markdown, "no formula in the kit's notebooks: grep them for `$`"
    notebook = new_notebook(cells=[
        *map(new_markdown_cell, [FORMULAS, CODE, *markdown]),
        new_code_cell("print('an ordinary cell')", outputs=[new_output("stream", text="an ordinary cell\n")]),
        new_code_cell("# Solution\nprint('the answer')", metadata={"jupyter": {"source_hidden": True}},
                      outputs=[new_output("stream", text="the answer\n")]),
    ])
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    saved = path.read_bytes()
    html = export_html(path)
    seen = look(html)
    assert seen.unrendered == []
    assert seen.math >= (FORMULAS.count("$") - FORMULAS.count("$$")) // 2  # one <math> per formula at least
    assert seen.solutions == ["# Solution"] and seen.open_solutions == []
    text = html.read_text()
    assert "mathjax" not in text.lower() and 'display="block"' in text
    assert text.count("<summary>Solution (click to open)</summary>") == 1
    assert '<code>price = "$5"</code>' in text and "<code>$x$</code>" in text and "$$a$$ and $b$" in text
    assert path.read_bytes() == saved  # the notebook keeps its LaTeX for JupyterLab and Colab


def test_a_formula_latex2mathml_cannot_convert_stays_latex_for_the_browser_check_to_catch():
    assert latex_to_mathml(r"\nosuchcommand{x}") == r"$\nosuchcommand{x}$"
    assert latex_to_mathml(r"\frac{1}{", "block") == r"$$\frac{1}{$$"
    assert latex_to_mathml(r"\log B").count("<mspace") == 1  # MathJax's thin space after a function name
