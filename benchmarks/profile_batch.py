"""Where a batch's time goes: the floor of 16 images in flight against one, and each step's cost.

Not part of the test suite and asserts nothing: it prints figures. The emulator runs in its own process in
cheap mode (as in benchmarks/run.py), so its CPU is counted apart from the client's. Sections:

- steps: each client step alone, per image at 2K and 4K (median of several): hash, encode, upload,
  download, decode, split into arrays;
- decode: Pillow against pyspng (when installed) on realistic RGBA outputs from the stand-in model;
- batch: wall of one 2K image and of 16 at once (L = 2 s), the overhead per image, both processes' CPU
  seconds, and when the last run was created / the last result handed back;
- 4K: overhead (wall - L) of one image.

Run: `.venv/bin/python benchmarks/profile_batch.py [--rounds 3]` (about 2 minutes). The machine may be
shared: every figure is a median, and the spread is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import KEY, ExternalEmulator, client_for, photo  # noqa: E402

from runflow_api import RunflowClient  # noqa: E402
from runflow_api.emulator import model  # noqa: E402
from runflow_api.pictures import images, result_images  # noqa: E402
from runflow_api.service.assets import stage_bytes  # noqa: E402
from runflow_api.service.http import Transport  # noqa: E402

LATENCY = 2.0
TIERS = (("2K", 2048), ("4K", 4096))


def median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(median, min, max) milliseconds over `repeats` calls."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), min(samples), max(samples)


def show(name: str, figures: tuple[float, float, float]) -> None:
    middle, low, high = figures
    print(f"  {name:<44} {middle:8.1f} ms   ({low:.1f}-{high:.1f})", flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def realistic_output(size: int) -> bytes:
    """The stand-in model's RGBA PNG for a photo: a real matte with soft edges, not a flat canvas."""
    source = images.encode_for_upload(photo(size, 7)).data
    return model.isolate(source, (size, size))


def profile_steps(emu: ExternalEmulator, repeats: int) -> None:
    transport = Transport(emu.base_url, KEY)
    for tier, size in TIERS:
        profile_tier(transport, tier, size, repeats)
    transport.close()


def profile_tier(transport: Transport, tier: str, size: int, repeats: int) -> None:
    print(f"steps, one {tier} image ({size}² photo in, {tier} flat canvas out from cheap mode):")
    array = photo(size, 11)
    encoded = images.encode_for_upload(array)
    show("pixel_digest (sha256 of the pixels)", median_ms(lambda: images.pixel_digest(array), repeats))
    show(f"encode_for_upload (JPEG, {len(encoded.data) / 1e6:.1f} MB)",
         median_ms(lambda: images.encode_for_upload(array), repeats))
    show("stage_bytes (3 requests + PUT)", median_ms(
        lambda: stage_bytes(transport, encoded.data, mime_type=encoded.mime_type, filename=encoded.filename),
        repeats))
    canvas = model.flat_canvas((size, size))
    staged = stage_bytes(transport, canvas, mime_type="image/png", filename="canvas.png")
    show(f"download of a PNG ({len(canvas) / 1e3:.0f} kB flat canvas)",
         median_ms(lambda: transport.download(staged.url, max_bytes=1 << 28, what="profile"), repeats))
    show("decode_image (flat canvas)",
         median_ms(lambda: result_images.decode_image(canvas, max_pixels=1 << 27), repeats))
    decoded = result_images.decode_image(canvas, max_pixels=1 << 27)
    show("split_rgba", median_ms(lambda: result_images.split_rgba(decoded), repeats))


def profile_decode(repeats: int) -> None:
    """Pillow (decode_image) against pyspng on the stand-in model's realistic outputs."""
    try:
        import pyspng  # type: ignore[import-not-found]
    except ImportError:
        pyspng = None
    print("decode of a realistic RGBA output (stand-in model, PNG level 1):")
    for tier, size in TIERS:
        data = realistic_output(size)
        flat = model.flat_canvas((size, size))
        for label, blob in (("realistic", data), ("flat", flat)):
            show(f"{tier} {label} Pillow decode_image ({len(blob) / 1e6:.2f} MB)",
                 median_ms(lambda blob=blob: np.asarray(result_images.decode_image(blob, max_pixels=1 << 27)), repeats))
            if pyspng is not None:
                show(f"{tier} {label} pyspng.load", median_ms(lambda blob=blob: pyspng.load(blob), repeats))


def fresh_photos(count: int, size: int, base_seed: int) -> list[np.ndarray]:
    return [photo(size, base_seed + seed) for seed in range(count)]


def one_wall(client: RunflowClient, array: np.ndarray, tier: str) -> float:
    started = time.perf_counter()
    client.isolate(array, resolution=tier)
    return time.perf_counter() - started


def batch_round(client: RunflowClient, emu_pid: int, arrays: list[np.ndarray]) -> dict[str, float]:
    """One batch of 16 with a timeline from its progress events and both processes' CPU seconds."""
    marks: dict[str, list[float]] = {"created": [], "downloaded": [], "done": [], "staged": []}

    def on_progress(event: Any) -> None:
        if event.kind in marks:
            marks[event.kind].append(time.perf_counter())

    client_cpu, emu_cpu = time.process_time(), cpu_seconds(emu_pid)
    started = time.perf_counter()
    outcomes = client.isolate_many(arrays, resolution="2K", on_progress=on_progress)
    wall = time.perf_counter() - started
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    return {
        "wall": wall,
        "client_cpu": time.process_time() - client_cpu,
        "emulator_cpu": cpu_seconds(emu_pid) - emu_cpu,
        "first_staged": min(marks["staged"]) - started,
        "last_created": max(marks["created"]) - started,
        "first_downloaded": min(marks["downloaded"]) - started,
        "last_done": max(marks["done"]) - started,
    }


def profile_batch(tmp: Path, rounds: int) -> None:
    with ExternalEmulator(LATENCY) as emu:
        pid = emu._process.pid  # noqa: SLF001 - the profile reads the emulator's CPU time
        client = client_for(emu, tmp, "profile", max_concurrency=16)
        client.isolate(photo(2048, 999), resolution="2K")  # warm-up: learn the 2K duration
        client.isolate(photo(4096, 998), resolution="4K")
        ones, overheads, rows = [], [], []
        for round_index in range(rounds):
            single = photo(2048, 1000 + round_index)
            arrays = fresh_photos(16, 2048, 2000 + 100 * round_index)
            one = one_wall(client, single, "2K")
            figures = batch_round(client, pid, arrays)
            ones.append(one)
            rows.append(figures)
            overheads.append((figures["wall"] - one) / 16)
            print(f"  round {round_index}: one {one:.3f} s, 16 at once {figures['wall']:.3f} s, "
                  f"overhead/image {overheads[-1] * 1000:.0f} ms; " + ", ".join(
                      f"{name} {value:.2f}" for name, value in figures.items() if name != "wall"), flush=True)
        print(f"batch (L = {LATENCY:g} s, 2K): one image {statistics.median(ones):.3f} s; overhead per image "
              f"(wall16 - wall1) / 16 = {statistics.median(overheads) * 1000:.0f} ms median "
              f"({min(overheads) * 1000:.0f}-{max(overheads) * 1000:.0f}) over {rounds} rounds", flush=True)
        four_k = [one_wall(client, photo(4096, 3000 + i), "4K") - LATENCY for i in range(rounds)]
        print(f"4K one image overhead (wall - L): {statistics.median(four_k) * 1000:.0f} ms median "
              f"({min(four_k) * 1000:.0f}-{max(four_k) * 1000:.0f})", flush=True)
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("steps", "decode", "batch"), default=None)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.only in (None, "steps"):
        with ExternalEmulator(LATENCY) as emu:
            profile_steps(emu, args.repeats)
    if args.only in (None, "decode"):
        profile_decode(args.repeats)
    if args.only in (None, "batch"):
        with tempfile.TemporaryDirectory() as name:
            profile_batch(Path(name), args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
