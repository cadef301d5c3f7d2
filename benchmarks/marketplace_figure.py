"""Draw docs/marketplace-files.jpg: the files one photo became, side by side at one height, each labelled
with its preset, canvas and file size; a thin grey frame shows where each white canvas ends. The last is
Amazon's again with the preset's contact shadow (`amazon,shadow=contact`).

The stored result is the bundled emulator's isolation of examples/sneaker.jpg at 4K (free, offline, in
this process); the files are rendered by `render_presets` exactly as the library writes them.

    .venv/bin/python benchmarks/marketplace_figure.py [OUT]     # default: docs/marketplace-files.jpg
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from runflow_api import render_presets
from runflow_api import service_choice as service

REPO = Path(__file__).resolve().parents[1]
PRESETS = ["amazon", "instagram-portrait", "pinterest", "zalando", "instagram", "amazon,shadow=contact"]
HEIGHT = 360  # px each file is shown at
GAP, LABEL_HEIGHT = 16, 40


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "marketplace-files.jpg"
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update({"RUNFLOW_EMULATOR_LATENCY": "0", "RUNFLOW_CACHE_DIR": f"{scratch}/cache",
                           "RUNFLOW_DATA_DIR": f"{scratch}/data"})
        with service.make_client("emulator") as client:
            result = client.isolate(REPO / "examples" / "sneaker.jpg", aspect_ratio="auto", resolution="4K")
    tiles = []
    for rendering in render_presets(result, PRESETS):
        image = Image.open(io.BytesIO(rendering.data)).convert("RGB")
        shown = image.resize((round(image.width * HEIGHT / image.height), HEIGHT), Image.Resampling.LANCZOS)
        shadow = rendering.preset.shadow.mode
        name = rendering.preset.name + (f" + {shadow} shadow" if shadow != "none" else "")
        label = (f"{name}  {image.width}x{image.height}  "
                 f"{len(rendering.data) / 1e6:.2f} MB  {'ok' if not rendering.flags else ','.join(rendering.flags)}")
        tiles.append((shown, label))
    width = sum(tile.width for tile, _ in tiles) + GAP * (len(tiles) + 1)
    sheet = Image.new("RGB", (width, HEIGHT + LABEL_HEIGHT + 2 * GAP), (226, 228, 232))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    left = GAP
    for tile, label in tiles:
        sheet.paste(tile, (left, GAP))
        draw.rectangle((left - 1, GAP - 1, left + tile.width, GAP + HEIGHT), outline=(150, 150, 156))
        draw.text((left, GAP + HEIGHT + 10), label, fill=(30, 30, 34), font=font)
        left += tile.width + GAP
    sheet.save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
