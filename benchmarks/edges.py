"""Edge clean-up (issue #22): quality and speed of the candidates, on synthetic cut-outs whose true colours
are known (tests/edge_truth.py, the same cases the tests assert on).

Quality: the mean error of composites on five new backgrounds over the edge band (0 < a < 1), divided by
that of the cut-out as returned (target <= 0.5, aim 0.33), and how much worse an already clean cut-out
gets (target < 1 % of the range). Speed: milliseconds per RGBA image at 1K, 2K and 4K (best of --repeat),
wall and CPU time, on one product whose rim goes from crisp to very soft, with hair strands.

Candidates:
- core colour: the mean colour of the product pixels within 6 px (box blur of aI over a), no correction;
- blur-fusion, one pass (r = 90 px), whole image;
- blur-fusion, two passes (r = 90 then 6 px), whole image: Forte & Pitie's reference method;
- ours (runflow_api.pictures.edges.decontaminate): the same two passes, the large one on a 16 px grid, the small
  one on the tiles of the edge band only;
- pymatting's multi-level estimate_foreground_ml (Germer et al. 2020), when pymatting is importable
  (`pip install pymatting`; it brings numba and scipy, so it is not a dependency of the pack).

Run: `.venv/bin/python benchmarks/edges.py` (about 6 minutes on 2 cores); writes benchmarks/results/edges.json.
`--only ours` measures our method alone (and writes nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from edge_truth import make_case, quality  # noqa: E402

from runflow_api.pictures.edges import decontaminate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
Candidate = Callable[[np.ndarray], np.ndarray]


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over a (2r+1)^2 box, zeros beyond the edges, float64 summed-area table."""
    out = values.astype(np.float64)
    for axis in (0, 1):
        size = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        table = np.cumsum(np.pad(out, pad), axis=axis)
        out = np.take(table, np.arange(2 * radius + 1, 2 * radius + 1 + size), axis=axis) - np.take(
            table, np.arange(size), axis=axis)
    return out


def _fusion(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, a: np.ndarray, radius: int) -> tuple[Any, Any]:
    """One whole-image blur-fusion step, as in the paper's reference code."""
    weight_fg, weight_bg = _box(a, radius), _box(1 - a, radius)
    fg_hat = _box(fg * a, radius) / np.maximum(weight_fg, 1e-9)
    bg_hat = _box(bg * (1 - a), radius) / np.maximum(weight_bg, 1e-9)
    residual = image - a * fg_hat - (1 - a) * bg_hat
    return np.clip(fg_hat + a * residual, 0, 1), np.clip(bg_hat + (1 - a) * residual, 0, 1)


def _whole_image(estimate: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Candidate:
    """A candidate from an estimator of F (image HxWx3, alpha HxWx1, both 0..1): edge pixels get it."""
    def run(rgba: np.ndarray) -> np.ndarray:
        image, a = rgba[..., :3] / 255.0, rgba[..., 3:4] / 255.0
        out = rgba.copy()
        band = (rgba[..., 3] > 0) & (rgba[..., 3] < 255)
        out[..., :3][band] = np.round(estimate(image, a)[band] * 255).astype(np.uint8)
        return out
    return run


def core_colour(image: np.ndarray, a: np.ndarray) -> np.ndarray:
    return _box(image * a, 6) / np.maximum(_box(a, 6), 1e-9)


def fusion_one_pass(image: np.ndarray, a: np.ndarray) -> np.ndarray:
    return _fusion(image, image, image, a, 90)[0]


def fusion_two_passes(image: np.ndarray, a: np.ndarray) -> np.ndarray:
    fg, bg = _fusion(image, image, image, a, 90)
    return _fusion(image, fg, bg, a, 6)[0]


def candidates() -> dict[str, Candidate]:
    found = {
        "core colour (r=6)": _whole_image(core_colour),
        "blur-fusion, 1 pass, whole image": _whole_image(fusion_one_pass),
        "blur-fusion, 2 passes, whole image": _whole_image(fusion_two_passes),
        "ours: blur-fusion, 2 passes, band only": decontaminate,
    }
    try:
        from pymatting import estimate_foreground_ml
    except ImportError:
        print("pymatting is not installed: its multi-level estimate is left out (pip install pymatting).")
    else:
        found["pymatting estimate_foreground_ml"] = _whole_image(
            lambda image, a: estimate_foreground_ml(image, a[..., 0]))
    return found


def best_ms(candidate: Candidate, rgba: np.ndarray, repeat: int) -> tuple[float, float]:
    """(wall, CPU) milliseconds of the fastest of `repeat` runs. The CPU time is what the process itself
    spent: on a machine shared with other work it moves less than the wall time."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        candidate(rgba)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return round(best[0] * 1000, 1), round(best[1] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size; the best is kept")
    parser.add_argument("--sizes", default="1024,2048,4096", help="sizes to time (px, square)")
    parser.add_argument("--whole-image-up-to", type=int, default=2048,
                        help="time the whole-image candidates only up to this size (they take seconds at 4K)")
    parser.add_argument("--only", default="", help="measure only the candidates whose name contains this text")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    found = {name: candidate for name, candidate in candidates().items() if args.only in name}
    quality_cases = [make_case(512, seed) for seed in range(3)]
    timing_cases = {size: make_case(size, 0).observed for size in sizes}
    warm_up = timing_cases[sizes[0]][:256, :256].copy()
    for candidate in found.values():  # pymatting compiles with numba on its first call: not timed
        candidate(warm_up)
    rows = []
    print(f"{'candidate':40} {'ratio':>6} {'clean +%':>8} " + " ".join(f"{size:>8}" for size in sizes))
    for name, candidate in found.items():
        measured = [quality(candidate, case) for case in quality_cases]
        ratio = float(np.mean([ratio for ratio, _ in measured]))
        worse = float(np.max([worse for _, worse in measured]))
        times: dict[str, float | None] = {}
        cpu_times: dict[str, float | None] = {}
        for size, rgba in timing_cases.items():
            whole = not name.startswith("ours")
            skip = whole and size > args.whole_image_up_to
            times[str(size)], cpu_times[str(size)] = (None, None) if skip else best_ms(candidate, rgba, args.repeat)
        rows.append({"candidate": name, "ratio": round(ratio, 3), "clean_input_worse_pct": round(worse, 3),
                     "ms": times, "cpu_ms": cpu_times, "ratios": [round(r, 3) for r, _ in measured]})
        shown = " ".join(f"{'-' if ms is None else f'{ms:.0f} ms':>8}" for ms in times.values())
        shown += "  (CPU " + ", ".join("-" if ms is None else f"{ms:.0f}" for ms in cpu_times.values()) + " ms)"
        print(f"{name:40} {ratio:6.3f} {worse:8.2f} {shown}", flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print("ratio: composite error on new backgrounds over the edge band, cleaned / as returned (<= 0.5, aim 0.33)")
    print("clean +%: how much worse an already clean cut-out gets, in % of the range (< 1)")
    if load is not None:
        print(f"load average while measuring: {load[0]:.1f} on {os.cpu_count()} cores (timings are noisy under load)")
    if args.only:  # a partial run does not replace the full comparison
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "edges.json").write_text(json.dumps({
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": load[0] if load is not None else None,
        "rows": rows,
    }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
