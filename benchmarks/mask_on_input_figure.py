"""Draw docs/mask-on-input.jpg: the bundled sample photo, the service's re-framed result, its mask placed
back on the photo (`place_on_input`), and a new background around the product, in place.

The result comes from the bundled emulator (free, offline), as the service would return it: cropped,
scaled and centred on a square canvas. Deterministic.

    .venv/bin/python benchmarks/mask_on_input_figure.py [OUT]     # default: docs/mask-on-input.jpg
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runflow_api import RunflowClient, place_on_input  # noqa: E402
from runflow_api.emulator import Emulator  # noqa: E402

SAMPLE = REPO / "examples" / "mug.jpg"
PANEL = 420  # px, each panel's height
LABEL_HEIGHT = 34
KEY = "rf_live_figure_0001"


def new_background(size: tuple[int, int]) -> np.ndarray:
    """A warm studio gradient with a soft floor line: the background the product is put on, in place."""
    width, height = size
    rows = np.linspace(0, 1, height)[:, None, None]
    top, bottom = np.array([250, 222, 190]), np.array([196, 120, 84])
    gradient = top + (bottom - top) * rows
    return np.broadcast_to(gradient, (height, width, 3)).astype(np.float64)


def panels() -> list[tuple[str, Image.Image]]:
    with tempfile.TemporaryDirectory() as state, Emulator(api_key=KEY, latency=0.05) as emu, \
            RunflowClient(api_key=KEY, base_url=emu.base_url, cache_dir=Path(state) / "c",
                          data_dir=Path(state) / "d") as client:
        result = client.isolate(SAMPLE, aspect_ratio="1:1", resolution="1K")
    placement = place_on_input(SAMPLE, result)
    assert placement.mask is not None and placement.rgba is not None, placement.reason
    photo = Image.open(SAMPLE).convert("RGB")
    checker = Image.new("RGB", result.image.size, (255, 255, 255))
    tiles = np.indices((result.image.height // 32 + 1, result.image.width // 32 + 1)).sum(axis=0) % 2
    grey = np.kron(tiles, np.ones((32, 32)))[: result.image.height, : result.image.width]
    checker = Image.fromarray((255 - 40 * grey).astype(np.uint8)).convert("RGB")
    checker.paste(result.image, (0, 0), result.image)
    mask = placement.mask[..., None]
    pixels = np.asarray(photo, np.float64)
    overlay = pixels * (1 - 0.55 * mask) + np.array([40, 200, 90]) * 0.55 * mask
    x, y, w, h = placement.box
    overlay_image = Image.fromarray(np.round(overlay).astype(np.uint8))
    ImageDraw.Draw(overlay_image).rectangle((x, y, x + w - 1, y + h - 1), outline=(20, 120, 50), width=3)
    replaced = pixels * mask + new_background(photo.size) * (1 - mask)
    return [
        ("the photo", photo),
        ("the result: re-framed", checker),
        (f"input_mask on the photo (score {placement.score:.2f})", overlay_image),
        ("new background, product in place", Image.fromarray(np.round(replaced).astype(np.uint8))),
    ]


def draw(out: Path) -> None:
    shown = [(label, image.resize((round(image.width * PANEL / image.height), PANEL), Image.Resampling.LANCZOS))
             for label, image in panels()]
    gap = 12
    width = sum(image.width for _, image in shown) + gap * (len(shown) + 1)
    sheet = Image.new("RGB", (width, PANEL + LABEL_HEIGHT + gap), (255, 255, 255))
    draw_text = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=18)
    left = gap
    for label, image in shown:
        sheet.paste(image, (left, gap))
        draw_text.text((left, PANEL + gap + 6), label, fill=(30, 30, 30), font=font)
        left += image.width + gap
    sheet.save(out, quality=88)


if __name__ == "__main__":
    draw(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "mask-on-input.jpg")
