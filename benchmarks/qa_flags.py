"""How long the QA flags take per result, at 1K, 2K and 4K (issue #23's target: well under 20 ms at 2K).

Times `IsolationResult.flags`' real work, `qa.image_flags` on an RGBA image (grid sampled by Pillow,
border lines cropped, judged), and `qa.flags` on a uint8 and a float32 matte; once with scipy's labelling
and once in a child process where scipy cannot be imported (the numpy fallback a plain Python uses).
The matte is a soft-edged product with specks and a hole, so the part count has something to do.
Prints milliseconds (median of --repeats);
saves them to benchmarks/results/qa_flags.json.

Run: `.venv/bin/python benchmarks/qa_flags.py [--repeats 30]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runflow_api.pictures import qa

RESULTS = Path(__file__).resolve().parent / "results" / "qa_flags.json"
SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}


def matte(side: int) -> np.ndarray:
    """A product at about 85% of the canvas with a soft rim, a hole and scattered specks, as uint8."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    distance = np.sqrt(((yy - 0.5) / 0.42) ** 2 + ((xx - 0.5) / 0.3) ** 2)
    alpha = np.clip((1.0 - distance) * 40, 0, 1)
    alpha[(np.abs(yy - 0.5) < 0.05) & (np.abs(xx - 0.5) < 0.05)] = 0
    rng = np.random.default_rng(0)
    for row, col in rng.integers(0, side - 8, size=(200, 2)):
        alpha[row : row + 6, col : col + 6] = 1
    return (alpha * 255).astype(np.uint8)


def median_ms(work: Callable[[], Any], repeats: int) -> float:
    work()  # warm: imports, first allocation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def measure(repeats: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, side in SIDES.items():
        alpha = matte(side)
        rgba = Image.new("RGBA", (side, side), (180, 40, 40, 255))
        rgba.putalpha(Image.fromarray(alpha))
        as_float = alpha.astype(np.float32) / 255
        figures[name] = {
            "image_flags_rgba": median_ms(lambda rgba=rgba: qa.image_flags(rgba), repeats),
            "flags_uint8": median_ms(lambda alpha=alpha: qa.flags(alpha), repeats),
            "flags_float32": median_ms(lambda as_float=as_float: qa.flags(as_float), repeats),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--child-without-scipy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_without_scipy:
        print(json.dumps(measure(args.repeats)))
        return
    results = {"with_scipy": measure(args.repeats)}
    block = ("import sys; sys.modules['scipy'] = None; sys.argv[1:] = {!r}; "
             "import runpy; runpy.run_path({!r}, run_name='__main__')")
    child = [sys.executable, "-c", block.format(["--child-without-scipy", "--repeats", str(args.repeats)], __file__)]
    results["without_scipy"] = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
    for variant, figures in results.items():
        for name, row in figures.items():
            print(f"{variant:13} {name} ({SIDES[name]} px): " + ", ".join(f"{k} {v:.2f} ms" for k, v in row.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"repeats": args.repeats, "ms": results}, indent=2) + "\n", encoding="utf-8")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
