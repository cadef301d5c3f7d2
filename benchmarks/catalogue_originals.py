"""Catalogue throughput with realistic 2K camera JPEGs: what uploading originals (no re-encode) buys.

Writes N distinct 2048x1536 JPEGs (photo-like content, quality 90, 4:2:0 as cameras save them, no ICC,
no EXIF rotation: the files the original-bytes path takes), then times `python -m runflow_api isolate`
over the folder against the emulator in its own process (cheap mode, L = 0.5 s by default), exactly as
a user runs it. Prints images/min for the whole command, start-up and planning included.

Run: `.venv/bin/python benchmarks/catalogue_originals.py [--count 300] [--concurrency 8] [--repeats 2]`.
The ceiling is concurrency x 60 / L (960 img/min at 8 and 0.5 s); the gap to it is client work per image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import KEY, REPO, ExternalEmulator, photo  # noqa: E402 - the lead's shared benchmark helpers

WIDTH, HEIGHT = 2048, 1536


def write_catalogue(folder: Path, count: int) -> int:
    """`count` distinct camera-like JPEGs; returns their total size in bytes."""
    folder.mkdir(parents=True)
    base = photo(WIDTH, 700)[:HEIGHT]
    for index in range(count):
        variant = base.copy()
        variant[index % HEIGHT, :, index % 3] ^= 0xFF  # every photo distinct, so every one is a paid run
        Image.fromarray(variant).save(folder / f"p{index:04d}.jpg", quality=90)
    return sum(path.stat().st_size for path in folder.iterdir())


def time_cli(folder: Path, work: Path, base_url: str, concurrency: int, resolution: str) -> float:
    """Wall seconds of one CLI run over `folder` with fresh cache and journal (every photo a new run)."""
    env = {**os.environ, "RUNFLOW_API_BASE": base_url, "RUNFLOW_API_KEY": KEY, "PYTHONPATH": str(REPO),
           "RUNFLOW_CACHE_DIR": str(work / "cache"), "RUNFLOW_DATA_DIR": str(work / "data")}
    argv = [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(work / "out"),
            "--resolution", resolution, "--aspect-ratio", "4:3", "--concurrency", str(concurrency), "-q"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the catalogue run failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="photos in the catalogue (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="the CLI's --concurrency (default 8)")
    parser.add_argument("--latency", type=float, default=0.5, help="emulator seconds per run (default 0.5)")
    parser.add_argument("--resolution", default="1K", help="output tier (default 1K: the input side is measured)")
    parser.add_argument("--repeats", type=int, default=2, help="CLI runs; the median is reported (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        total = write_catalogue(tmp / "catalogue", args.count)
        print(f"{args.count} JPEGs {WIDTH}x{HEIGHT}, {total / args.count / 2**20:.2f} MiB each on average", flush=True)
        with ExternalEmulator(args.latency, balance=10 * args.count) as emu:
            walls = []
            for repeat in range(args.repeats):
                wall = time_cli(tmp / "catalogue", tmp / f"run{repeat}", emu.base_url, args.concurrency,
                                args.resolution)
                walls.append(wall)
                print(f"run {repeat + 1}: {wall:.1f} s, {args.count / wall * 60:.0f} img/min", flush=True)
    ceiling = args.concurrency * 60 / args.latency
    per_minute = args.count / statistics.median(walls) * 60
    print(f"catalogue {args.count} x {WIDTH}x{HEIGHT} JPEG via CLI, L = {args.latency:g} s, concurrency "
          f"{args.concurrency}: {per_minute:.0f} img/min (median; ceiling {ceiling:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
