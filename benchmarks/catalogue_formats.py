"""A catalogue with marketplace presets against the same catalogue without: what `--formats` costs.

Writes N distinct 1024x768 product photos (a shaded product on a light background), then times
`python -m runflow_api isolate` over the folder, as a user runs it, against the emulator in its own
process (real isolation, not the cheap grey canvas; each run lasts L seconds), each command with its own
empty cache:

1. without presets (the command's default tier, 2K);
2. without presets at 4K (the tier the five presets need: the same download and decode, no rendering);
3. with `--formats amazon,walmart,instagram-portrait,pinterest,zalando` (4K chosen before paying, five
   files rendered, checked and recorded per photo on the rendering threads).

Prints wall time and the CLI process's CPU time (user + system) of each, the emulator's CPU time over the
same command (it runs the stand-in model on the same two cores: the real service computes elsewhere), the
load around them, and the ratio of 3 to 1 and to 2 (the issue's target: within 1.3x). When CLI + emulator
CPU over the wall time is near the core count, the machine, not the waiting, set the pace.

Run: `.venv/bin/python benchmarks/catalogue_formats.py [--count 200] [--concurrency 16] [--latency 2]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_load import load_window  # noqa: E402 - the benchmarks' shared helpers
from run import KEY, REPO  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from support import product_photo  # noqa: E402 - a product on a plain background, which the emulator isolates

FIVE = "amazon,walmart,instagram-portrait,pinterest,zalando"


def write_catalogue(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):  # every photo distinct (its own seed), so every one is a paid run
        Image.fromarray(product_photo(index, size=(768, 1024))).save(folder / f"p{index:04d}.jpg", quality=90)


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """A running process's user + system CPU seconds, from /proc (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_command(base_url: str, folder: Path, work: Path, name: str, concurrency: int,
                  options: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one isolate command with its own cache, data and output folders."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNFLOW_API_BASE": base_url, "RUNFLOW_API_KEY": KEY,
           "RUNFLOW_CACHE_DIR": str(work / name / "cache"), "RUNFLOW_DATA_DIR": str(work / name / "data")}
    argv = [sys.executable, "-m", "runflow_api", "isolate", str(folder), "--out", str(work / name / "out"), "-q",
            "--concurrency", str(concurrency), *options]
    cpu, started = child_cpu_seconds(), time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {done.stderr[-2000:]}")
    print(f"  {name}: {done.stderr.strip().splitlines()[-1][:160]}", flush=True)
    return wall, child_cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runflow-formats-") as temporary:
        work = Path(temporary)
        write_catalogue(work / "photos", args.count)
        emulator = subprocess.Popen(
            [sys.executable, "-m", "runflow_api.emulator", "--port", "0", "--api-key", KEY, "--latency",
             str(args.latency), "--balance", "100000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert emulator.stdout is not None
            base_url = emulator.stdout.readline().strip()
            commands = {"without presets (2K)": [], "without presets, 4K": ["--resolution", "4K"],
                        "with five presets": ["--formats", FIVE]}
            figures = {}
            for name, options in commands.items():
                before, emulator_cpu = os.getloadavg(), process_cpu_seconds(emulator.pid)
                wall, cpu = timed_command(base_url, work / "photos", work, name.replace(" ", "-"),
                                          args.concurrency, options)
                emulator_cpu = process_cpu_seconds(emulator.pid) - emulator_cpu
                figures[name] = (wall, cpu)
                print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU (CLI process), {emulator_cpu:.1f} s CPU "
                      f"(emulator), {(cpu + emulator_cpu) / wall:.2f} cores busy of {os.cpu_count()}, "
                      f"{cpu / args.count * 1000:.0f} ms CLI CPU per photo, load {load_window(before)}", flush=True)
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
    with_presets = figures["with five presets"]
    for baseline in ("without presets (2K)", "without presets, 4K"):
        wall, cpu = figures[baseline]
        print(f"with five presets / {baseline}: {with_presets[0] / wall:.2f}x wall, {with_presets[1] / cpu:.2f}x CPU "
              f"(target <= 1.3x wall; {args.count} photos, --concurrency {args.concurrency}, L = {args.latency} s)")


if __name__ == "__main__":
    main()
