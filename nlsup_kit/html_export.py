"""One job: an executed notebook -> one HTML file that reads right with the network off.

nbconvert leaves formulas as ``$...$`` text for MathJax, which it loads from a CDN: offline (a classroom, a
train, the demo machine) a learner sees raw LaTeX. Here every formula of the markdown cells becomes MathML at
export time, which browsers lay out natively (MathML Core), and the kit's template (``templates/nlsup``) drops
the MathJax script and folds each exercise's solution into a closed ``<details>``, as JupyterLab and Colab hide
it (``source_hidden``) in the notebook itself. The notebook file keeps its LaTeX; only the HTML changes."""

from __future__ import annotations

import logging
import re
from html import escape
from pathlib import Path

from jinja2 import pass_context
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Spacing as TeX has it, which latex2mathml leaves to the browser: a thin space after a function name before
# its argument (\log B, not \cos(x)), none around | and \| (TeX's ordinary symbols, a browser's operators).
FUNCTION_NAME = re.compile(r"(<mi>[a-z]{2,}</mi>)(?!<mo[^>]*>&#x000(?:28|5B|7B);|</)")
BAR = re.compile(r"<mo( fence=\"false\")? stretchy=\"false\">(&#x0007C;|&#x02016;)</mo>")
UNKNOWN_COMMAND = re.compile(r">\\[A-Za-z]")  # latex2mathml prints a command it does not know as text
log = logging.getLogger(__name__)


def latex_to_mathml(tex: str, display: str = "inline") -> str:
    """``<math>`` for one formula (``display``: "inline" or "block"). A formula latex2mathml cannot convert stays
    ``$tex$`` text, with a warning, so that the tests that look for raw LaTeX in the page catch it."""
    from latex2mathml.converter import convert

    try:
        mathml = convert(tex.strip(), display=display)
    except Exception as err:  # latex2mathml raises several unrelated types on malformed input
        mathml, problem = "", f"{type(err).__name__}: {err}"
    else:
        problem = "unknown command" if UNKNOWN_COMMAND.search(mathml) else ""
    if problem or not mathml:
        log.warning("formula left as LaTeX (%s): %s", problem or "empty", tex)
        delimiter = "$$" if display == "block" else "$"
        return f"{delimiter}{escape(tex, quote=False)}{delimiter}"
    mathml = BAR.sub(r'<mo\1 stretchy="false" lspace="0" rspace="0">\2</mo>', mathml)
    return FUNCTION_NAME.sub(r'\1<mspace width="0.1667em"/>', mathml)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer (its math parser keeps code spans and fenced code apart), MathML out."""

    def inline_math(self, body: str) -> str:
        return latex_to_mathml(body, "inline")

    def block_math(self, body: str) -> str:
        return latex_to_mathml(body, "block")

    def latex_environment(self, name: str, body: str) -> str:
        return latex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class OfflineHTMLExporter(HTMLExporter):
    """The lab template, extended by the kit's (no MathJax, solutions folded), with MathML formulas."""

    def __init__(self, **kwargs) -> None:
        super().__init__(template_name="nlsup", extra_template_basedirs=[str(TEMPLATES)], **kwargs)

    @pass_context
    def markdown2html(self, context, source: str) -> str:  # HTMLExporter.markdown2html with the renderer swapped
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def export_html(notebook: str | Path, html: str | Path | None = None) -> Path:
    """Write ``notebook`` as HTML (default: beside it, ``.html``) and return the HTML's path."""
    notebook = Path(notebook)
    html = Path(html) if html else notebook.with_suffix(".html")
    body, _ = OfflineHTMLExporter().from_filename(str(notebook))
    html.write_text(body, encoding="utf-8")
    return html
