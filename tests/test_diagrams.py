"""The notebooks' method diagrams: valid SVG, every box and arrow drawn, no two boxes overlapping, arrows
running left to right (read back from the SVG itself, not from the layout code)."""

import xml.etree.ElementTree as ET

import pytest

from nlsup_kit.diagrams import DIAGRAMS, to_svg

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_diagram_draws_every_box_and_arrow_without_overlap(name):
    diagram = DIAGRAMS[name]
    root = ET.fromstring(to_svg(diagram))  # raises on malformed XML (an unescaped "<" or "&" in a label)
    rects = [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for r in root.iter(f"{SVG}rect")]
    lines = [tuple(float(line.get(k)) for k in ("x1", "y1", "x2", "y2")) for line in root.iter(f"{SVG}line")]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert len(rects) == len(diagram.boxes) and len(lines) == len(diagram.arrows)
    for box in diagram.boxes.values():
        assert all(line in texts for line in box.text.split("\n"))
    assert diagram.title in texts
    for i, (x, y, w, h) in enumerate(rects):
        for x2, y2, w2, h2 in rects[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, f"{name}: boxes overlap"
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(0 <= x and x + w <= width and 0 <= y and y + h <= height for x, y, w, h in rects)
    assert all(x2 > x1 for x1, _, x2, _ in lines)  # every arrow points onward
