"""Several Runflow nodes of one graph in a real ComfyUI: wall time of 1, 2 and 4 isolation nodes at L.

A shop's graph takes one photo to several formats (1:1 marketplace, 4:5 social, 16:9 banner, ...):
one isolation node per format, all fed by one LoadImage. Each graph here gets a photo no earlier graph
used, so every node pays one run of the emulator at L seconds (the emulator runs in this benchmark's
process, ComfyUI in its own). The clock runs from queueing the graph to its entry in /history (polled
every 20 ms), after one warm-up graph has loaded torch, the pack and the connection pools.

Needs a real ComfyUI (COMFYUI_DIR, COMFYUI_PYTHON, COMFYUI_PYTHONPATH, as for the tests). Prints a table
and writes benchmarks/results/comfy_nodes.json. Run: `.venv/bin/python benchmarks/comfy_nodes.py`
(about 2 minutes).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_harness import COMFYUI_DIR_ENV, ComfyUI  # noqa: E402
from machine_load import load_window  # noqa: E402
from run import photo  # noqa: E402

from runflow_api.emulator import Emulator  # noqa: E402

KEY = "rf_live_benchmark_comfy_nodes"
LATENCY_S = 4.0
FORMATS = ("1:1", "4:5", "16:9", "3:4")
ROUNDS = 3


def graph(image: str, nodes: int) -> dict[str, Any]:
    prompt: dict[str, Any] = {"1": {"class_type": "LoadImage", "inputs": {"image": image}}}
    for number, aspect in enumerate(FORMATS[:nodes]):
        prompt[str(10 + number)] = {"class_type": "RunflowProductIsolation",
                                    "inputs": {"image": ["1", 0], "aspect_ratio": aspect, "resolution": "1K"}}
        prompt[str(20 + number)] = {"class_type": "PreviewAny", "inputs": {"source": [str(10 + number), 3]}}
    return prompt


def seconds_to_finish(server: ComfyUI, prompt: dict[str, Any]) -> float:
    started = time.perf_counter()
    prompt_id = server.queue_prompt(prompt)
    while True:
        entry = server.get_json(f"/history/{prompt_id}").get(prompt_id)
        if entry:
            elapsed = time.perf_counter() - started
            assert entry["status"]["status_str"] == "success", entry["status"]
            return elapsed
        time.sleep(0.02)


def main() -> None:
    if not os.environ.get(COMFYUI_DIR_ENV):
        raise SystemExit("Set COMFYUI_DIR (and COMFYUI_PYTHON, COMFYUI_PYTHONPATH) to a ComfyUI checkout.")
    load_before = os.getloadavg()
    walls: dict[int, list[float]] = {1: [], 2: [], 4: []}
    with tempfile.TemporaryDirectory() as folder, Emulator(api_key=KEY, latency=LATENCY_S, port=0, cheap=True) as emu:
        state = Path(folder)
        env = {"RUNFLOW_MODE": "runflow", "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": KEY,
               "RUNFLOW_DATA_DIR": str(state / "data"), "RUNFLOW_CACHE_DIR": str(state / "cache"),
               "RUNFLOW_KEY_FILE": str(state / "no_key")}
        with ComfyUI(env=env) as server:
            server.input_dir.mkdir(parents=True, exist_ok=True)
            numbers = itertools.count()

            def fresh_photo() -> str:
                number = next(numbers)
                Image.fromarray(photo(768, 4000 + number)).save(server.input_dir / f"bench_{number}.png")
                return f"bench_{number}.png"

            seconds_to_finish(server, graph(fresh_photo(), 1))  # warm-up
            for _ in range(ROUNDS):  # interleaved, so drift in the machine's load hits every size alike
                for nodes in walls:
                    walls[nodes].append(seconds_to_finish(server, graph(fresh_photo(), nodes)))
        creates = emu.stats["creates"]
    expected_creates = 1 + ROUNDS * sum(walls)
    assert creates == expected_creates, f"{creates} runs created, expected {expected_creates}"
    rows = [{"nodes": nodes, "wall_s": round(statistics.median(times), 2),
             "wall_over_L": round(statistics.median(times) / LATENCY_S, 2),
             "rounds_s": [round(x, 2) for x in times]} for nodes, times in walls.items()]
    load = load_window(load_before)
    print(f"Isolation nodes in one graph of a real ComfyUI, L = {LATENCY_S:.0f} s, median of {ROUNDS}; "
          f"load average {load['before']} -> {load['after']}")
    print("| nodes | wall time | wall / L |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row['nodes']} | {row['wall_s']:.2f} s | {row['wall_over_L']:.2f} |")
    out = Path(__file__).resolve().parent / "results" / "comfy_nodes.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="minutes"),
                               "latency_s": LATENCY_S, "load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
