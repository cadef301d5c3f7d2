"""How long `place_on_input` takes per input, at 1K, 2K and 4K (issue #37's target: at most 150 ms at 2K,
on one core).

Each size is a 4:3 product photo of that long side (tests/placement_photos.py: a textured product off
centre) and the emulator model's square result of the same resolution (cropped, scaled and centred, as the
service returns it). Times the placement from the photo's pixels (what the nodes and the CLI hold), and
from its JPEG file (the decode included), wall time and this process's CPU time beside it: the machine
is shared, so the wall time includes waiting for a core. The FFTs are numpy's, single-threaded: the CPU
time is one core's. Prints the median of --repeats; saves them to benchmarks/results/placement.json.

Run: `.venv/bin/python benchmarks/placement.py [--repeats 9]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from placement_photos import product_photo  # noqa: E402

from runflow_api import place_on_input  # noqa: E402
from runflow_api.emulator import model  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "placement.json"
SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}


def timed(work: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `work`, after one warm-up call."""
    work()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return round(statistics.median(walls), 1), round(statistics.median(cpus), 1)


def measure(repeats: int, folder: Path) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, side in SIDES.items():
        width, height = side, side * 3 // 4
        photo = product_photo((width, height), (width * 0.42, height * 0.55), (width * 0.17, height * 0.3))
        png = io.BytesIO()
        Image.fromarray(photo.pixels).save(png, format="PNG", compress_level=1)
        with Image.open(io.BytesIO(model.isolate(png.getvalue(), (side, side)))) as opened:
            result = opened.convert("RGBA")
        path = folder / f"{name}.jpg"
        Image.fromarray(photo.pixels).save(path, quality=92)
        placement = place_on_input(photo.pixels, result)
        assert placement.mask is not None and photo.iou(placement.mask) >= 0.95, name
        wall, cpu = timed(lambda: place_on_input(photo.pixels, result), repeats)  # noqa: B023
        file_wall, file_cpu = timed(lambda: place_on_input(path, result), repeats)  # noqa: B023
        figures[name] = {"photo": f"{width}x{height}", "result": f"{side}x{side}", "wall_ms": wall, "cpu_ms": cpu,
                         "from_jpeg_wall_ms": file_wall, "from_jpeg_cpu_ms": file_cpu,
                         "score": placement.score, "iou": round(photo.iou(placement.mask), 4)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(args.repeats, Path(folder))
    print(f"place_on_input, median of {args.repeats} (load {load}, {os.cpu_count()} cores)")
    print(f"{'size':<5} {'photo':>10} {'wall ms':>8} {'CPU ms':>7} {'JPEG wall':>10} {'JPEG CPU':>9} {'IoU':>7}")
    for name, row in figures.items():
        print(f"{name:<5} {row['photo']:>10} {row['wall_ms']:>8} {row['cpu_ms']:>7} {row['from_jpeg_wall_ms']:>10} "
              f"{row['from_jpeg_cpu_ms']:>9} {row['iou']:>7}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": platform.machine(),
        "cores": os.cpu_count(), "load": load, "repeats": args.repeats, "figures": figures,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
