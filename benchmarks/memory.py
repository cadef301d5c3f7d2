"""What a 4K batch costs ComfyUI in memory: the growth of its peak resident memory over one graph run.

Not part of the test suite and asserts nothing: it prints figures (and saves them with --save). A real
ComfyUI (COMFYUI_DIR, COMFYUI_PYTHON, COMFYUI_PYTHONPATH as for the real-ComfyUI tests) runs the pack
against the emulator in its own process (cheap mode, so its work is not ComfyUI's). The graph: 8 distinct
photos -> Runflow Product Isolation at 4K 1:1 -> each output in use scaled down to 256 px and previewed.

For each case (only `image` used; `image`, `mask` and `rgba` used):
1. a warm-up run (imports, kernels, the pack's memory tier filled);
2. a small flush prompt that keeps the photos but not the isolation node, so ComfyUI drops the warm-up's
   output tensors;
3. the peak is reset (`echo 5 > /proc/<pid>/clear_refs`: VmHWM := VmRSS) and a run with new runs (another
   `prompt` text, so neither ComfyUI's cache nor the pack's answers it) is measured: growth = VmHWM after
   - VmRSS before. Time per image = the prompt's execution time (ComfyUI's own timestamps) / 8, and
   ComfyUI's CPU seconds over the run / 8 (steadier than the wall clock when the machine is shared).

Run: `.venv/bin/python benchmarks/memory.py [--pack DIR] [--save]`. `--pack` installs another checkout of
the pack (e.g. main's, to compare before and after). Linux only (/proc). The machine may be shared:
times are noisy, memory figures much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_harness import PACK_FOLDER_NAME, ComfyUI  # noqa: E402
from run import KEY, ExternalEmulator, photo  # noqa: E402

COUNT = 8
SIDE = 4096  # 4K 1:1
PHOTO_SIDE = 768
LATENCY = 0.5
GIB = 1024**3
ISOLATION = "20"
CASES = {"image only": (0,), "image + mask + rgba": (0, 1, 2)}
CHANNELS = {0: 3, 1: 1, 2: 4}


def photos_chain() -> dict[str, Any]:
    """8 LoadImage nodes joined into one batch by a chain of ImageBatch nodes (ids 1-8, 11-17)."""
    graph: dict[str, Any] = {
        str(index + 1): {"class_type": "LoadImage", "inputs": {"image": f"bench_{index}.png"}} for index in range(COUNT)
    }
    previous = ["1", 0]
    for index in range(1, COUNT):
        node_id = str(10 + index)
        graph[node_id] = {"class_type": "ImageBatch", "inputs": {"image1": previous, "image2": [str(index + 1), 0]}}
        previous = [node_id, 0]
    return graph


def _preview(graph: dict[str, Any], node_id: str, image: list[Any]) -> None:
    scale = {"image": image, "upscale_method": "nearest-exact", "width": 256, "height": 256, "crop": "disabled"}
    graph[node_id] = {"class_type": "ImageScale", "inputs": scale}
    graph[f"{node_id}9"] = {"class_type": "PreviewImage", "inputs": {"images": [node_id, 0]}}


def isolation_graph(slots: tuple[int, ...], label: str) -> dict[str, Any]:
    """The photos, the isolation node at 4K 1:1 (its `prompt` text makes new runs), and a scaled-down
    preview of each output slot in `slots`."""
    graph = photos_chain()
    graph[ISOLATION] = {
        "class_type": "RunflowProductIsolation",
        "inputs": {"image": ["17", 0], "aspect_ratio": "1:1", "resolution": "4K", "prompt": label},
    }
    for slot in slots:
        source: list[Any] = [ISOLATION, slot]
        if slot == 1:
            graph["31"] = {"class_type": "MaskToImage", "inputs": {"mask": source}}
            source = ["31", 0]
        _preview(graph, str(40 + slot), source)
    return graph


def flush_graph() -> dict[str, Any]:
    """The same photos (still cached) previewed without the isolation node: ComfyUI drops its outputs."""
    graph = photos_chain()
    _preview(graph, "50", ["17", 0])
    return graph


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far: on a shared machine a steadier measure of the work
    than the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(server: ComfyUI, graph: dict[str, Any]) -> dict[str, Any]:
    entry = server.wait_history(server.queue_prompt(graph), timeout=900)
    if entry["status"]["status_str"] != "success":
        raise RuntimeError(json.dumps(entry["status"], indent=1)[-3000:])
    return entry


def execution_seconds(entry: dict[str, Any]) -> float:
    stamps = {name: data.get("timestamp") for name, data in entry["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000


def measure(server: ComfyUI, name: str, slots: tuple[int, ...]) -> dict[str, Any]:
    assert server.process is not None
    pid = server.process.pid
    run(server, isolation_graph(slots, f"warm-up {name}"))
    run(server, flush_graph())
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before, cpu_before = status(pid), cpu_seconds(pid)
    if before["VmHWM"] > before["VmRSS"] + 64 * 1024**2:
        raise RuntimeError("the peak was not reset (clear_refs refused?): cannot measure growth")
    entry = run(server, isolation_graph(slots, f"measured {name}"))
    after, cpu = status(pid), cpu_seconds(pid) - cpu_before
    growth = after["VmHWM"] - before["VmRSS"]
    tensors = sum(COUNT * SIDE * SIDE * CHANNELS[slot] * 4 for slot in slots)
    seconds = execution_seconds(entry)
    return {"case": name, "growth_bytes": growth, "tensor_bytes": tensors, "ratio": growth / tensors,
            "rss_before_bytes": before["VmRSS"], "seconds": seconds, "seconds_per_image": seconds / COUNT,
            "cpu_seconds_per_image": cpu / COUNT}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=REPO, help="the pack checkout to install (default: this one)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/memory.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="runflow-memory-") as tmp, ExternalEmulator(LATENCY) as emu:
        base = Path(tmp) / "comfy"
        (base / "custom_nodes").mkdir(parents=True)
        (base / "custom_nodes" / PACK_FOLDER_NAME).symlink_to(args.pack.resolve(), target_is_directory=True)
        (base / "input").mkdir()
        for index in range(COUNT):
            Image.fromarray(photo(PHOTO_SIDE, 100 + index)).save(base / "input" / f"bench_{index}.png")
        env = {"RUNFLOW_MODE": "runflow", "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": KEY,
               "RUNFLOW_DATA_DIR": str(Path(tmp) / "data"), "RUNFLOW_CACHE_DIR": str(Path(tmp) / "cache"),
               "RUNFLOW_KEY_FILE": str(Path(tmp) / "no_key")}  # fmt: skip
        with ComfyUI(env=env, base_dir=base) as server:
            for name, slots in CASES.items():
                started = time.monotonic()
                result = measure(server, name, slots)
                rows.append(result)
                print(
                    f"{name:<20} growth {result['growth_bytes'] / GIB:5.2f} GiB = {result['ratio']:.2f} x the "
                    f"outputs' {result['tensor_bytes'] / GIB:.2f} GiB (target <= 1.3)   "
                    f"{result['seconds_per_image']:.2f} s per image (ComfyUI's CPU: "
                    f"{result['cpu_seconds_per_image']:.2f} s)   [{time.monotonic() - started:.0f} s]",
                    flush=True,
                )
    print(f"pack: {args.pack.resolve()}   load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.save:
        out = REPO / "benchmarks" / "results" / "memory.json"
        out.write_text(json.dumps({"pack": str(args.pack.resolve()), "cases": rows}, indent=1) + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
