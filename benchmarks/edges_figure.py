"""Draw docs/edges-before-after.jpg: a crop of a fringe, the same cut-out on a dark and on a light
background, as returned and with `edges` = clean.

The cut-out is the synthetic case the tests and benchmarks/edges.py measure (tests/edge_truth.py): a
textured product with soft rims and hair strands, returned from a green studio backdrop. Deterministic.

    .venv/bin/python benchmarks/edges_figure.py [OUT]     # default: docs/edges-before-after.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from edge_truth import make_case  # noqa: E402

from runflow_api.pictures import backgrounds  # noqa: E402
from runflow_api.pictures.edges import decontaminate  # noqa: E402

DARK, LIGHT = (24, 24, 28), (246, 246, 242)
ZOOM = 3
CROP = 170  # px of the case, shown ZOOM times larger
LABEL_HEIGHT = 34


def fringe_crop(rgba: np.ndarray, band: np.ndarray) -> tuple[int, int]:
    """The top-left corner of the CROP x CROP window holding the most edge pixels (strands and soft rim)."""
    best, where = -1, (0, 0)
    for top in range(0, rgba.shape[0] - CROP, 16):
        for left in range(0, rgba.shape[1] - CROP, 16):
            count = int(band[top:top + CROP, left:left + CROP].sum())
            if count > best:
                best, where = count, (top, left)
    return where


def panel(rgba: np.ndarray, color: tuple[int, int, int], label: str) -> Image.Image:
    shown = backgrounds.composite(np.ascontiguousarray(rgba[..., :3]), rgba[..., 3] / np.float32(255), color)
    picture = Image.fromarray(shown).resize((CROP * ZOOM, CROP * ZOOM), Image.NEAREST)
    canvas = Image.new("RGB", (picture.width, picture.height + LABEL_HEIGHT), (255, 255, 255))
    canvas.paste(picture, (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), label, fill=(20, 20, 20), font=ImageFont.load_default(size=20))
    return canvas


def main(out: Path) -> None:
    case = make_case(512, 9)  # a warm product on the green backdrop
    top, left = fringe_crop(case.observed, case.band)
    returned = case.observed[top:top + CROP, left:left + CROP]
    cleaned = decontaminate(case.observed)[top:top + CROP, left:left + CROP]
    panels = [
        panel(returned, DARK, "as returned, on dark"), panel(cleaned, DARK, "clean, on dark"),
        panel(returned, LIGHT, "as returned, on light"), panel(cleaned, LIGHT, "clean, on light"),
    ]
    gap = 8
    width, height = panels[0].size
    sheet = Image.new("RGB", (2 * width + gap, 2 * height + gap), (255, 255, 255))
    for index, picture in enumerate(panels):
        sheet.paste(picture, ((index % 2) * (width + gap), (index // 2) * (height + gap)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=90)
    print(f"Wrote {out} ({sheet.width}x{sheet.height}), crop at y={top}, x={left} of the 512 px case.")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "edges-before-after.jpg")
