"""Several Runflow nodes of one graph at once, in a real ComfyUI (skipped without COMFYUI_DIR).

One photo goes to marketplace 1:1 and social 4:5 through two isolation nodes, as a shop's graph does.
The V3 nodes are coroutines, so ComfyUI waits for both runs together: the emulator (in this test's
process, reached over loopback) records when each run was created, and the two runs' service times
overlap. A Cancel while both wait stops the prompt at once, and queueing again collects both paid runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI, ComfyUIUnavailable

from runflow_api.emulator import Emulator

KEY = "rf_live_emulator_async_nodes"
LATENCY_S = 2.5


def two_formats(photo: str = "sneaker.jpg", *, second_aspect: str = "4:5") -> dict[str, Any]:
    """LoadImage -> isolation at 1:1 and at `second_aspect` -> one PreviewAny each (their run_info)."""
    def isolation(aspect: str) -> dict[str, Any]:
        return {"class_type": "RunflowProductIsolation",
                "inputs": {"image": ["1", 0], "aspect_ratio": aspect, "resolution": "1K"}}

    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": photo}},
        "2": isolation("1:1"),
        "3": isolation(second_aspect),
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 3]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 3]}},
    }


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[tuple[ComfyUI, Emulator]]:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    with Emulator(api_key=KEY, latency=LATENCY_S, port=0) as emu:
        env = {"RUNFLOW_MODE": "runflow", "RUNFLOW_API_BASE": emu.base_url, "RUNFLOW_API_KEY": KEY,
               "RUNFLOW_DATA_DIR": str(tmp_path / "data"), "RUNFLOW_CACHE_DIR": str(tmp_path / "cache"),
               "RUNFLOW_KEY_FILE": str(tmp_path / "no_key")}  # fmt: skip
        server = ComfyUI(env=env)
        try:
            server.start()
        except ComfyUIUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            server.input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")
            yield server, emu
        finally:
            server.stop()


def test_two_isolation_nodes_of_one_graph_wait_for_the_service_together(graph: tuple[ComfyUI, Emulator]) -> None:
    server, emu = graph
    entry = server.wait_history(server.queue_prompt(two_formats()), timeout=120)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    first, second = sorted(emu.runs.values(), key=lambda run: run.created_at)
    assert second.created_at < first.completed_at, (
        f"the second run was created {second.created_at - first.created_at:.2f} s after the first, which took "
        f"{LATENCY_S} s: the nodes ran one after the other"
    )
    infos = [json.loads(entry["outputs"][node]["text"][0]) for node in ("4", "5")]
    assert [(info["aspect_ratio"], info["cached"]) for info in infos] == [("1:1", False), ("4:5", False)]
    for node in ("2", "3"):
        [summary] = entry["outputs"][node]["runflow"]
        assert (summary["paid_runs"], summary["images"]) == (1, 1), "each node's badge counts its own run"

    same = server.wait_history(server.queue_prompt(two_formats(second_aspect="1:1")), timeout=120)
    assert same["status"]["status_str"] == "success"
    assert emu.stats["creates"] == 2, "two nodes with the same photo and settings: one run, served from the cache"


def test_cancel_stops_two_waiting_nodes_and_both_runs_are_collected_later(graph: tuple[ComfyUI, Emulator]) -> None:
    server, emu = graph
    emu.latency = 8.0
    prompt = two_formats()
    prompt_id = server.queue_prompt(prompt)
    entry, seconds = server.cancel_once(prompt_id, lambda: emu.stats["creates"] >= 2)
    assert any(message[0] == "execution_interrupted" for message in entry["status"]["messages"]), entry["status"]
    assert seconds < 1.5, f"Cancel took {seconds:.2f} s"

    emu.latency = 0.3
    again = server.wait_history(server.queue_prompt(prompt), timeout=60)
    assert again["status"]["status_str"] == "success", json.dumps(again["status"], indent=1)[-3000:]
    assert emu.stats["creates"] == 2, "the cancelled runs were collected from the journal, not paid again"
    assert [again["outputs"][node]["runflow"][0]["resumed"] for node in ("2", "3")] == [1, 1]
