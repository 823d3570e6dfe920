"""Method diagrams drawn by the kit: plain SVG (boxes on a grid, arrows between them), so a notebook shows them
inline, in papermill's output and in exported HTML alike, with no image file or address to fetch.

Each diagram is data (:data:`DIAGRAMS`): boxes placed at (column, row) with their text, and arrows between
them. A box may span several rows (the shared Transformer layers that both modalities pass through).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

BOX_WIDTH, BOX_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 180, 58, 56, 22, 16
COLOURS = {"data": "#e8f1fb", "model": "#fdf0dc", "shared": "#f6e3c4", "loss": "#e6f4e6", "result": "#efe8f7"}


@dataclass(frozen=True)
class Box:
    column: int
    row: float  # rows may be fractional: a box between two lanes
    text: str  # lines separated by "\n"
    kind: str = "model"  # a key of COLOURS
    rows: float = 1.0  # how many rows tall


@dataclass(frozen=True)
class Diagram:
    title: str
    boxes: dict[str, Box]
    arrows: tuple[tuple[str, str], ...]


def _alternating(title: str, inputs: str, embedding: str, modality: str) -> Diagram:
    """VisualCSE and AudioCSE: a modality lane and the text lane meeting in the shared layers."""
    return Diagram(
        title,
        {"inputs": Box(0, 0, inputs, "data"),
         "patches": Box(1, 0, embedding),
         "sentences": Box(0, 1, "sentence batch\n(each sentence twice)", "data"),
         "words": Box(1, 1, "word embeddings\n(the encoder's own)"),
         "shared": Box(2, 0, "shared Transformer layers\n(the sentence encoder's own)", "shared", rows=2),
         "modality_head": Box(3, 0, f"[CLS] -> the {modality}\nbranch's own MLP head", "result"),
         "text_head": Box(3, 1, "[CLS] -> MLP head, or\nthe mean of the tokens", "result"),
         "modality_loss": Box(4, 0, f"{modality} loss x lambda: SupCon\n(quick, class), new_supcon (full)\n-> {modality} AdamW (all weights)", "loss"),
         "text_loss": Box(4, 1, "InfoNCE -> text AdamW\n(moves only the encoder; the\nreference's holds every weight)", "loss")},
        (("inputs", "patches"), ("patches", "shared"), ("sentences", "words"), ("words", "shared"),
         ("shared", "modality_head"), ("shared", "text_head"), ("modality_head", "modality_loss"), ("text_head", "text_loss")))


DIAGRAMS: dict[str, Diagram] = {
    "simcse": Diagram(
        "Unsupervised SimCSE: a sentence is its own positive, through two dropout masks",
        {"batch": Box(0, 0.5, "B sentences, each written\ntwice: 2B rows", "data"),
         "encoder": Box(1, 0.5, "encoder, one pass:\na dropout mask per row"),
         "z1": Box(2, 0, "first copy: z_i\n[CLS] -> MLP head", "result"),
         "z2": Box(2, 1, "second copy: z_i+\n[CLS] -> MLP head", "result"),
         "loss": Box(3, 0.5, "InfoNCE: cos(z_i, z_j+) / 0.05,\nthe diagonal is the positive", "loss")},
        (("batch", "encoder"), ("encoder", "z1"), ("encoder", "z2"), ("z1", "loss"), ("z2", "loss"))),
    "visualcse": _alternating(
        "VisualCSE: images clustered by class through the same layers, then the SimCSE step",
        "image batch: two\naugmented views each", "patch embedding\n(ViT conv, [CLS], positions)", "image"),
    "audiocse": _alternating(
        "AudioCSE: the same alternating step, with speech turned into fbank patches",
        "audio clips -> log-mel fbank\n(mixup, SpecAugment)", "patch embedding\n(fbank patches, [CLS])", "audio"),
    "comparison": Diagram(
        "Comparing two methods honestly: several seeds, the same test pairs, both sources of chance",
        {"recipes": Box(0, 0.5, "two recipes\n(SimCSE, VisualCSE)", "data"),
         "seed1": Box(1, 0, "train: each seed\n(three or more: SEEDS)"),
         "seed2": Box(1, 1, "train: each seed,\nthe other recipe"),
         "scores": Box(2, 0.5, "cosine per test pair,\nSpearman per run", "result"),
         "bootstrap": Box(3, 0.5, "two-level bootstrap (seeds,\nthen pairs) -> interval\n-> printed conclusion", "loss")},
        (("recipes", "seed1"), ("recipes", "seed2"), ("seed1", "scores"), ("seed2", "scores"),
         ("scores", "bootstrap"))),
    "beyond-english": Diagram(
        "Beyond English: nothing on the image side is in any language; only the text lane changes",
        {"digits": Box(0, 0, "unpaired images\n(no captions, no language)", "data"),
         "patches": Box(1, 0, "patch embedding"),
         "sentences": Box(0, 1, "unlabelled sentences in\nthe chosen language", "data"),
         "words": Box(1, 1, "a multilingual tokenizer\nand word embeddings (XLM-R)"),
         "shared": Box(2, 0, "shared Transformer layers", "shared", rows=2),
         "image_loss": Box(3, 0, "image loss on classes\n(SupCon; full mode:\nthe released new_supcon)", "loss"),
         "text_loss": Box(3, 1, "InfoNCE on the sentences", "loss"),
         "score": Box(4, 0.5, "STS-B in that language,\nSTS17 across languages", "result")},
        (("digits", "patches"), ("patches", "shared"), ("sentences", "words"), ("words", "shared"),
         ("shared", "image_loss"), ("shared", "text_loss"), ("text_loss", "score"))),
    "embedding-space": Diagram(
        "Looking at the embedding space",
        {"inputs": Box(0, 0.5, "sentences, digits,\nspoken words", "data"),
         "model": Box(1, 0.5, "trained encoder\n(+ its branch)"),
         "vectors": Box(2, 0.5, "one vector each", "result"),
         "map": Box(3, 0, "cosines, before vs after:\npairs, class by class", "loss"),
         "measures": Box(3, 1, "alignment, uniformity,\nnearest neighbours", "loss")},
        (("inputs", "model"), ("model", "vectors"), ("vectors", "map"), ("vectors", "measures"))),
}


def _position(box: Box) -> tuple[float, float, float, float]:
    x = MARGIN + box.column * (BOX_WIDTH + COLUMN_GAP)
    y = MARGIN + 28 + box.row * (BOX_HEIGHT + ROW_GAP)
    height = box.rows * BOX_HEIGHT + (box.rows - 1) * ROW_GAP
    return x, y, BOX_WIDTH, height


def to_svg(diagram: Diagram) -> str:
    """The diagram as a standalone SVG document."""
    frames = {name: _position(box) for name, box in diagram.boxes.items()}
    width = max(x + w for x, _, w, _ in frames.values()) + MARGIN
    height = max(y + h for _, y, _, h in frames.values()) + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
             f'<text x="{MARGIN}" y="{MARGIN + 12}" font-size="14" font-weight="bold">{escape(diagram.title)}</text>']
    for start, end in diagram.arrows:
        x1, y1, w1, h1 = frames[start]
        x2, y2, _, h2 = frames[end]
        from_y, to_y = y1 + h1 / 2, y2 + h2 / 2
        if h2 > BOX_HEIGHT:  # into a tall box: stay level with the lane the arrow comes from
            to_y = min(max(from_y, y2 + 12), y2 + h2 - 12)
        if h1 > BOX_HEIGHT:  # out of a tall box: leave level with the lane it goes to
            from_y = min(max(to_y, y1 + 12), y1 + h1 - 12)
        parts.append(f'<line x1="{x1 + w1:.0f}" y1="{from_y:.0f}" x2="{x2 - 2:.0f}" y2="{to_y:.0f}" '
                     'stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>')
    for name, box in diagram.boxes.items():
        x, y, w, h = frames[name]
        parts.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="8" '
                     f'fill="{COLOURS[box.kind]}" stroke="#888"/>')
        lines = box.text.split("\n")
        for i, line in enumerate(lines):
            line_y = y + h / 2 + (i - (len(lines) - 1) / 2) * 15 + 4
            parts.append(f'<text x="{x + w / 2:.0f}" y="{line_y:.0f}" text-anchor="middle">{escape(line)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def show_diagram(name: str) -> None:
    """Display one of :data:`DIAGRAMS` inline in a notebook."""
    from IPython.display import SVG, display

    display(SVG(to_svg(DIAGRAMS[name])))
