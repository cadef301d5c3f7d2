"""Draws docs/shadows.jpg: the bundled sneaker as the emulator isolates it (the pixels `python -m runflow_api
demo` writes), with `shadow` none, contact and drop at the default strength and softness, on white and on a
colour. Run: `.venv/bin/python benchmarks/shadows_figure.py [OUT]`.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runflow_api.emulator.model import isolate  # noqa: E402
from runflow_api.pictures.backgrounds import composite  # noqa: E402
from runflow_api.pictures.shadows import (  # noqa: E402
    SHADOW_MODES,
    ShadowOptions,
    add_shadow,
    framed_box,
    product_box,
    shadow_box,
)

BACKGROUNDS = {"on white": (255, 255, 255), "on #E9DFCF": (233, 223, 207)}
TILE_WIDTH = 560
LABEL_HEIGHT = 44
INK = (60, 60, 60)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "shadows.jpg"
    with Image.open(io.BytesIO(isolate((REPO / "examples" / "sneaker.jpg").read_bytes(), (2048, 1536)))) as image:
        rgba = np.asarray(image.convert("RGBA"))
    shaded = {mode: add_shadow(rgba, ShadowOptions(mode)) for mode in SHADOW_MODES}
    # One crop for every tile: the product and its widest shadow, with a margin.
    box = product_box(rgba[..., 3])
    assert box is not None
    for mode in SHADOW_MODES:
        box = framed_box(box, shadow_box(rgba[..., 3], ShadowOptions(mode)))
    pad = 60
    crop = (max(0, box[0] - pad), max(0, box[1] - pad), min(rgba.shape[1], box[2] + pad),
            min(rgba.shape[0], box[3] + pad))
    tile_height = round(TILE_WIDTH * (crop[3] - crop[1]) / (crop[2] - crop[0]))
    font = ImageFont.load_default(size=26)
    figure = Image.new("RGB", (TILE_WIDTH * 3, LABEL_HEIGHT + 2 * (tile_height + LABEL_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(figure)
    for column, mode in enumerate(SHADOW_MODES):
        draw.text((column * TILE_WIDTH + TILE_WIDTH // 2, LABEL_HEIGHT // 2), f"shadow: {mode}", font=font,
                  fill=INK, anchor="mm")
    for row, (name, colour) in enumerate(BACKGROUNDS.items()):
        top = LABEL_HEIGHT + row * (tile_height + LABEL_HEIGHT)
        draw.text((12, top + LABEL_HEIGHT // 2), name, font=font, fill=INK, anchor="lm")
        for column, mode in enumerate(SHADOW_MODES):
            pixels = shaded[mode][crop[1]:crop[3], crop[0]:crop[2]]
            tile = Image.fromarray(composite(pixels[..., :3], pixels[..., 3] / np.float32(255), colour))
            tile = tile.resize((TILE_WIDTH, tile_height), Image.Resampling.LANCZOS)
            figure.paste(tile, (column * TILE_WIDTH, top + LABEL_HEIGHT))
    figure.save(out, quality=90)  # JPEG or PNG by the name; quality is ignored for PNG
    print(f"Wrote {out} ({figure.size[0]}x{figure.size[1]})")


if __name__ == "__main__":
    main()
