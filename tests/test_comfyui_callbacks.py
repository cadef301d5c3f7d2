"""A graph end to end in a real ComfyUI with callbacks on, the nodes unchanged (callbacks are configured
by the environment): ComfyUI talks to an emulator running in this test's process, which delivers signed
callbacks to ComfyUI's own POST /runflow/callback. The emulator's statistics then show each run read at
most twice, every callback answered 2xx, and the secret nowhere in ComfyUI's log, history or files.

Runs only when COMFYUI_DIR points at a ComfyUI checkout (see test_comfyui_real.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest
import requests
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI, free_port
from support import CALLBACK_SECRET, EMULATOR_KEY

from runflow_api import __version__
from runflow_api.emulator import Emulator
from runflow_api.service.callbacks import sign

WORKFLOW = PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """Runs of 3 s: polling alone would read each one 4 times (0.5 s, then 0.75, 1.1, 1.7 s apart), so
    "at most 2 reads" shows the callback woke the wait."""
    with Emulator(api_key=EMULATOR_KEY, latency=3.0, cheap=False, callback_secret=CALLBACK_SECRET) as emu:
        yield emu


@pytest.fixture(scope="module")
def comfy(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    state = tmp_path_factory.mktemp("runflow-callbacks")
    port = free_port()
    server = ComfyUI(
        port=port,
        env={
            "RUNFLOW_MODE": "runflow",
            "RUNFLOW_API_BASE": emulator.base_url,
            "RUNFLOW_API_KEY": EMULATOR_KEY,
            "RUNFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RUNFLOW_CALLBACK_SECRET": CALLBACK_SECRET,
            "RUNFLOW_DATA_DIR": str(state / "data"),
            "RUNFLOW_CACHE_DIR": str(state / "cache"),
            "RUNFLOW_KEY_FILE": str(state / "api_key"),
        },
    )
    server.input_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")
    with server:  # an interpreter that cannot run ComfyUI raises ComfyUIUnavailable, naming what to set
        yield server


def test_a_graph_runs_with_callbacks_and_each_run_is_read_at_most_twice(comfy: ComfyUI, emulator: Emulator) -> None:
    workflow = json.loads(WORKFLOW.read_text(encoding="utf-8"))
    entry = comfy.run_workflow(workflow, timeout=120)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    assert comfy.output_files(entry), "the graph saved its result"
    runs = list(emulator.runs.values())
    assert runs and emulator.stats["creates"] == len(runs)
    for run in runs:
        assert run.callback_url == f"{comfy.url}/runflow/callback"
        assert run.metadata["pack"] == "runflow-product-isolation" and run.metadata["pack_version"] == __version__
        assert run.polls <= 2, f"run {run.id} was polled {run.polls} times with callbacks on"
    assert emulator.stats["callbacks_delivered"] == len(runs) and emulator.stats["callbacks_failed"] == 0
    history = json.dumps(comfy.get_json("/history"))
    for text in (history, comfy.log_text(), json.dumps(workflow)):
        assert CALLBACK_SECRET not in text and CALLBACK_SECRET[-8:] not in text


def test_comfyuis_callback_route_refuses_forgeries_and_accepts_repeats(comfy: ComfyUI) -> None:
    url = f"{comfy.url}/runflow/callback"
    body = json.dumps({"event": "run.completed", "run_id": "run-not-here"}).encode()
    assert requests.post(url, data=body, timeout=10).status_code == 401
    assert requests.post(url, data=body, headers={"Runflow-Signature": "f" * 64}, timeout=10).status_code == 401
    good = {"Runflow-Signature": sign(CALLBACK_SECRET, body)}
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 200
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 200
    big = b"x" * (1024 * 1024 + 1)
    assert requests.post(url, data=big, headers={"Runflow-Signature": sign(CALLBACK_SECRET, big)},
                         timeout=10).status_code == 413
    status = comfy.get_json("/runflow/callback-secret")
    assert status["active"] is True and status["source"] == "env" and CALLBACK_SECRET not in json.dumps(status)
