"""How long rendering all ten marketplace presets of one photo from its stored result takes (issue #35's
target: at most 1.0 s of CPU here), and how far JPEG's ringing reaches next to the product.

The stored results are the bundled emulator's real isolations of the sample photos (free, offline, in
this process), at 2K and at the tier `marketplace_tiers.choose_tier` buys for all ten presets (4K). For
each: `marketplace_render.render_all` (cut, clean edges, scale, composite, encode within the cap, decode
and check every file), median wall and CPU (`time.process_time`) over --repeats, with the load average.
The ringing figures: for every file, the share of the canvas in the 8x8 blocks the product reaches that is
not product (the only pixels whose background is not promised exact) and the largest deviation there.
Saves benchmarks/results/marketplace.json.

Run: `.venv/bin/python benchmarks/marketplace.py [--repeats 5]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runflow_api import service_choice as service
from runflow_api.pictures import marketplace_presets, marketplace_render, marketplace_tiers
from runflow_api.pictures.marketplace_checks import JPEG_BLOCK

RESULTS = Path(__file__).resolve().parent / "results" / "marketplace.json"
SAMPLES = Path(__file__).resolve().parents[1] / "examples"
PHOTOS = ("sneaker.jpg", "bottle.png")


def stored_results(presets: list[marketplace_presets.Preset]) -> dict[str, Image.Image]:
    """The emulator's isolations of the samples at 2K and at the tier chosen for `presets`."""
    found: dict[str, Image.Image] = {}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update({"RUNFLOW_EMULATOR_LATENCY": "0", "RUNFLOW_CACHE_DIR": f"{scratch}/cache",
                           "RUNFLOW_DATA_DIR": f"{scratch}/data"})
        with service.make_client("emulator") as client:
            for photo in PHOTOS:
                with Image.open(SAMPLES / photo) as image:
                    size = image.size
                chosen = marketplace_tiers.choose_tier(presets, "auto", input_size=size).resolution
                for tier in sorted({"2K", chosen}):
                    result = client.isolate(SAMPLES / photo, aspect_ratio="auto", resolution=tier)
                    found[f"{photo} {tier}{' (chosen)' if tier == chosen else ''}"] = result.image.copy()
    return found


def ringing(rendering: marketplace_render.Rendering) -> tuple[float, int]:
    """(share of the canvas in product blocks but not product, largest deviation from the colour there)."""
    pixels = np.asarray(Image.open(io.BytesIO(rendering.data)).convert("RGB")).astype(np.int16)
    height, width = pixels.shape[:2]
    product = np.zeros((height, width), bool)
    rows, cols = rendering.product.alpha.shape
    product[rendering.product.top:rendering.product.top + rows,
            rendering.product.left:rendering.product.left + cols] = rendering.product.alpha > 0
    cells_h, cells_w = -(-height // JPEG_BLOCK), -(-width // JPEG_BLOCK)
    padded = np.zeros((cells_h * JPEG_BLOCK, cells_w * JPEG_BLOCK), bool)
    padded[:height, :width] = product
    cells = padded.reshape(cells_h, JPEG_BLOCK, cells_w, JPEG_BLOCK).any(axis=(1, 3))
    grown = cells.repeat(JPEG_BLOCK, axis=0).repeat(JPEG_BLOCK, axis=1)[:height, :width]
    band = grown & ~product
    deviation = np.abs(pixels - np.asarray(rendering.preset.background, np.int16)).max(axis=2)
    return float(band.mean()), int(deviation[band].max()) if band.any() else 0


def load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def measure(image: Image.Image, presets: list[marketplace_presets.Preset], repeats: int) -> dict[str, Any]:
    marketplace_render.render_all(image, presets)  # warm: imports, first allocations
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        renderings = marketplace_render.render_all(image, presets)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    bands = [ringing(rendering) for rendering in renderings]
    return {
        "cpu_s": round(statistics.median(cpus), 3), "wall_s": round(statistics.median(walls), 3),
        "flags": {rendering.preset.name: rendering.flags for rendering in renderings if rendering.flags},
        "bytes": {rendering.preset.name: len(rendering.data) for rendering in renderings},
        "ringing_band_share_max": round(max(share for share, _ in bands), 4),
        "ringing_deviation_max": max(deviation for _, deviation in bands),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    presets = marketplace_presets.select("all")
    figures: dict[str, Any] = {}
    for name, image in stored_results(presets).items():
        before = load()
        row = measure(image, presets, args.repeats)
        row["load_before"], row["load_after"] = before, load()
        row["result_px"] = list(image.size)
        figures[name] = row
        print(f"{name:28} {image.size[0]}x{image.size[1]}: all ten presets {row['cpu_s']:.3f} s CPU, "
              f"{row['wall_s']:.3f} s wall (load {before:.1f}); ringing band <= {row['ringing_band_share_max']:.2%} "
              f"of a canvas, max deviation {row['ringing_deviation_max']}; flags {row['flags'] or 'none'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"repeats": args.repeats, "cpu_count": os.cpu_count(), "results": figures},
                                  indent=2) + "\n", encoding="utf-8")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
