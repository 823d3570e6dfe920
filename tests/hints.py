"""Exercise hints as code: each hint's ```python block becomes a cell right after its exercise's text, so a run
of the notebook executes it exactly where a learner reads it (after every cell above, in a fresh kernel)."""

import re

HINT = re.compile(r"<summary>Hint</summary>(.*?)</details>", re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)
TAG = "hint-check"


def hint_code(markdown: str) -> list[str]:
    """The python blocks inside an exercise's collapsed hint."""
    return [code for hint in HINT.findall(markdown) for code in CODE.findall(hint)]


def with_hint_cells(notebook: dict) -> dict:
    """The notebook with each exercise's hint code as a tagged code cell after the exercise's text."""
    cells = []
    for cell in notebook["cells"]:
        cells.append(cell)
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("### Exercise"):
            for k, code in enumerate(hint_code(source)):
                cells.append({"cell_type": "code", "execution_count": None, "id": f"{cell['id']}-hint{k}",
                              "metadata": {"tags": [TAG]}, "outputs": [], "source": code})
    return {**notebook, "cells": cells}
