"""What showing each cut-out as it arrives costs a batch: 40 photos through the isolation node, with the
live previews and without them, at L = 2 s.

The node runs for real (the pack loaded as ComfyUI loads it, real torch tensors, the engine against the
emulator in cheap mode in a process of its own). ComfyUI's progress bar is a stand-in that does with each
preview what ComfyUI 0.3.64's server does with it, in the same process: fit it into 512 px and encode it
as JPEG, so that work is counted. "Without" sets the preview interval to infinity (only the first and the
final update carry a picture). Wall time is noisy on a shared machine; the CPU time the process spent is
the steadier figure of what the previews cost. Interleaved rounds, median of 3. Prints a table and writes
benchmarks/results/previews.json. Run: `.venv/bin/python benchmarks/previews.py` (about 2 minutes).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tempfile
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_harness import load_pack  # noqa: E402
from run import KEY, ExternalEmulator, photo  # noqa: E402

LATENCY_S = 2.0
BATCH = 40
ROUNDS = 3
PACK = load_pack()


class ServerLikeBar:
    """comfy.utils.ProgressBar, doing with a preview what ComfyUI's server does (PromptServer.send_image)."""

    previews = 0

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total = total

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        if preview is not None:
            kind, image, size = preview
            ImageOps.contain(image, (size, size), Image.Resampling.BILINEAR).save(io.BytesIO(), format=kind,
                                                                                  quality=95)
            ServerLikeBar.previews += 1


def batch_seconds(seed: int, *, previews: bool) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, previews sent) of one batch through the node."""
    PACK.node_machinery.preview.PREVIEW_INTERVAL_S = 0.5 if previews else float("inf")
    ServerLikeBar.previews = 0
    images = torch.from_numpy(np.stack([photo(1024, seed * 1000 + n) for n in range(BATCH)])).float() / 255
    started, cpu = time.perf_counter(), time.process_time()
    output = PACK.nodes.RunflowProductIsolation().isolate(images, aspect_ratio="1:1", resolution="1K",
                                                          unique_id="1")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert output["ui"]["runflow"][0]["paid_runs"] == BATCH
    return elapsed, cpu, ServerLikeBar.previews


def main() -> None:
    load_before = os.getloadavg()
    sys.modules["comfy"] = types.ModuleType("comfy")
    sys.modules["comfy.utils"] = types.SimpleNamespace(ProgressBar=ServerLikeBar)  # type: ignore[assignment]
    figures: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder, ExternalEmulator(LATENCY_S, balance=1000) as emu:
        os.environ.update({"RUNFLOW_MODE": "runflow", "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": KEY,
                           "RUNFLOW_DATA_DIR": f"{folder}/data", "RUNFLOW_CACHE_DIR": f"{folder}/cache",
                           "RUNFLOW_KEY_FILE": f"{folder}/no_key"})
        batch_seconds(99, previews=True)  # warm-up: imports, connection pools, learned run durations
        for seed in range(ROUNDS):  # interleaved, so drift in the machine's load hits both alike
            for previews in (True, False):
                figures[previews].append(batch_seconds(2 * seed + previews, previews=previews))
    rows = []
    for previews, runs in figures.items():
        rows.append({"previews": previews, "wall_s": round(statistics.median(s for s, _, _ in runs), 2),
                     "cpu_s": round(statistics.median(c for _, c, _ in runs), 2),
                     "rounds_s": [round(s, 2) for s, _, _ in runs], "previews_sent": [n for _, _, n in runs]})
    on, off = rows[0]["wall_s"], rows[1]["wall_s"]
    cpu_on, cpu_off = rows[0]["cpu_s"], rows[1]["cpu_s"]
    load = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    print(f"{BATCH} photos through the isolation node, L = {LATENCY_S:.0f} s, median of {ROUNDS}; "
          f"load average {load['before']} -> {load['after']}")
    print("| live previews | wall time | CPU time of the process | previews sent | rounds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {'on' if row['previews'] else 'off'} | {row['wall_s']:.2f} s | {row['cpu_s']:.2f} s | "
              f"{row['previews_sent']} | {row['rounds_s']} |")
    print(f"difference: wall {on - off:+.2f} s ({(on - off) / off * 100:+.1f} %), CPU {cpu_on - cpu_off:+.2f} s")
    out = Path(__file__).resolve().parent / "results" / "previews.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="minutes"), "load": load,
                               "rows": rows, "difference_s": round(on - off, 2),
                               "cpu_difference_s": round(cpu_on - cpu_off, 2)}, indent=2))


if __name__ == "__main__":
    main()
