"""Shadows (issue #36): milliseconds to draw a `contact` and a `drop` shadow under a cut-out at 1K, 2K and 4K.

The cut-out is the bundled sneaker photo as the emulator isolates it (runflow_api.emulator.model.isolate,
the same pixels `python -m runflow_api demo` writes), at 1024x768, 2048x1536 and 4096x3072: a wide product
filling most of the canvas, so a drop shadow's blur covers most of the image. Each figure is the best of
--repeat calls of `shadows.add_shadow` (everything: finding the product, drawing the shadow, compositing
it under the product into a new RGBA array), as wall time and CPU time of this process, with the load
average beside them: the machine is shared. Target: <= 120 ms per 2K image.

Run: `.venv/bin/python benchmarks/shadows.py` (about 20 s).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runflow_api.emulator.model import isolate  # noqa: E402
from runflow_api.pictures.shadows import SHADOW_CONTACT, SHADOW_DROP, ShadowOptions, add_shadow  # noqa: E402

SIZES = {"1K": (1024, 768), "2K": (2048, 1536), "4K": (4096, 3072)}
SAMPLE = REPO / "examples" / "sneaker.jpg"


def cut_out(canvas: tuple[int, int]) -> np.ndarray:
    """The sample as the emulator returns it at `canvas`, as HxWx4 uint8."""
    with Image.open(io.BytesIO(isolate(SAMPLE.read_bytes(), canvas))) as image:
        return np.asarray(image.convert("RGBA"))


def best_of(rgba: np.ndarray, options: ShadowOptions, repeat: int) -> tuple[float, float]:
    """(wall ms, CPU ms) of the fastest of `repeat` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        add_shadow(rgba, options)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best[0] * 1000, best[1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--softness", type=float, default=0.5)
    args = parser.parse_args()
    print(f"{'size':<5} {'mode':<8} {'wall ms':>8} {'cpu ms':>8}  load (1 min)")
    for name, canvas in SIZES.items():
        rgba = cut_out(canvas)
        for mode in (SHADOW_CONTACT, SHADOW_DROP):
            wall, cpu = best_of(rgba, ShadowOptions(mode, 0.5, args.softness), args.repeat)
            load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
            print(f"{name:<5} {mode:<8} {wall:8.1f} {cpu:8.1f}  {load}")


if __name__ == "__main__":
    main()
