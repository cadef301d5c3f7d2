"""Catalogue throughput with realistic 2K camera JPEGs: what uploading originals (no re-encode) buys.

Writes N distinct 2048x1536 JPEGs (photo-like content, quality 90, 4:2:0 as cameras save them, no ICC,
no EXIF rotation: the files the original-bytes path takes), then times `python -m runflow_api isolate`
over the folder against the emulator in its own process (cheap mode, L = 0.5 s by default), exactly as
a user runs it. Prints images/min for the whole command (start-up and planning included), the CLI
process's CPU time per image and peak memory, and each photo's upload size as it is and re-encoded.

Run: `.venv/bin/python benchmarks/catalogue_originals.py [--count 300] [--concurrency 8] [--repeats 2]`.
The ceiling is concurrency x 60 / L (960 img/min at 8 and 0.5 s). Near it the wall clock is the runs'
waiting, which hides the client's work: CPU per image, or a higher --concurrency, shows that work.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def upload_sizes(folder: Path, sample: int = 5) -> tuple[float, float]:
    """Mean MiB per photo as the file is, and as `encode_for_upload` (JPEG q95 4:4:4) would send it."""
    from runflow_api.pictures import images

    paths = sorted(folder.iterdir())[:sample]
    as_is = statistics.mean(path.stat().st_size for path in paths)
    redone = statistics.mean(len(images.encode_for_upload(images.to_array(path)).data) for path in paths)
    return as_is / 2**20, redone / 2**20


def time_cli(folder: Path, work: Path, base_url: str, concurrency: int, resolution: str) -> tuple[float, float]:
    """(wall seconds, CLI CPU seconds) of one CLI run over `folder` with fresh cache and journal (every
    photo a new run)."""
    env = {**os.environ, "RUNFLOW_API_BASE": base_url, "RUNFLOW_API_KEY": KEY, "PYTHONPATH": str(REPO),
           "RUNFLOW_CACHE_DIR": str(work / "cache"), "RUNFLOW_DATA_DIR": str(work / "data")}
    argv = [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(work / "out"),
            "--resolution", resolution, "--aspect-ratio", "4:3", "--concurrency", str(concurrency), "-q"]
    cpu, started = child_cpu_seconds(), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - started, child_cpu_seconds() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"the catalogue run failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, cpu


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
        write_catalogue(tmp / "catalogue", args.count)
        as_is, redone = upload_sizes(tmp / "catalogue")
        print(f"{args.count} JPEGs {WIDTH}x{HEIGHT}: {as_is:.2f} MiB each as they are, {redone:.2f} MiB re-encoded",
              flush=True)
        with ExternalEmulator(args.latency, balance=10 * args.count) as emu:
            walls, cpus = [], []
            for repeat in range(args.repeats):
                wall, cpu = time_cli(tmp / "catalogue", tmp / f"run{repeat}", emu.base_url, args.concurrency,
                                     args.resolution)
                walls.append(wall)
                cpus.append(cpu)
                print(f"run {repeat + 1}: {wall:.1f} s, {args.count / wall * 60:.0f} img/min, "
                      f"CLI CPU {cpu / args.count * 1000:.0f} ms/img", flush=True)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the CLI runs, not the emulator
    ceiling = args.concurrency * 60 / args.latency
    per_minute = args.count / statistics.median(walls) * 60
    print(f"catalogue {args.count} x {WIDTH}x{HEIGHT} JPEG via CLI, L = {args.latency:g} s, concurrency "
          f"{args.concurrency}: {per_minute:.0f} img/min (median; ceiling {ceiling:.0f}), "
          f"CLI CPU {statistics.median(cpus) / args.count * 1000:.0f} ms/img, "
          f"CLI peak RSS {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
