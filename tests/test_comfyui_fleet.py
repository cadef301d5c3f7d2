"""Two real ComfyUI workers, one shared Redis: the studio set-up the fleet store is for.

Each worker has its own cache and data directories (as on two machines) and talks to one emulator that
this test starts and counts. Runs only when COMFYUI_DIR points at a ComfyUI checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from comfy_harness import (
    COMFYUI_DIR_ENV,
    COMFYUI_PYTHON_ENV,
    PACK_DIR,
    ComfyUI,
    ComfyUIUnavailable,
    interpreter_problem,
)
from support import EMULATOR_KEY

WORKFLOW = PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json"


def _worker(name: str, tmp_path: Path, emu_url: str, redis_url: str) -> ComfyUI:
    state = tmp_path / name
    server = ComfyUI(env={
        "RUNFLOW_MODE": "runflow",
        "RUNFLOW_API_BASE": emu_url,
        "RUNFLOW_API_KEY": EMULATOR_KEY,
        "RUNFLOW_SHARED_STORE": redis_url,
        "RUNFLOW_DATA_DIR": str(state / "data"),
        "RUNFLOW_CACHE_DIR": str(state / "cache"),
        "RUNFLOW_KEY_FILE": str(state / "api_key"),
    })
    server.input_dir.mkdir(parents=True, exist_ok=True)
    for sample in (PACK_DIR / "examples").iterdir():
        if sample.suffix.lower() in (".jpg", ".jpeg", ".png"):
            shutil.copy(sample, server.input_dir / sample.name)
    return server


def test_two_comfyui_workers_share_one_paid_run(emulator_factory, redis_server, tmp_path):
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI fleet test")
    python = os.environ.get(COMFYUI_PYTHON_ENV, sys.executable)
    if interpreter_problem(python) is None and subprocess.run([python, "-c", "import redis"]).returncode:
        pytest.fail(f"{python} (COMFYUI_PYTHON) lacks the 'redis' package the fleet store needs: "
                    f"`{python} -m pip install redis`", pytrace=False)
    emu = emulator_factory(latency=2.0)
    workers = [_worker(name, tmp_path, emu.base_url, redis_server.url) for name in ("w1", "w2")]
    try:
        for server in workers:
            server.start()
    except ComfyUIUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        workflow = json.loads(WORKFLOW.read_text(encoding="utf-8"))
        info = workers[0].object_info()
        entries: dict[str, dict] = {}

        def run(server: ComfyUI, name: str) -> None:
            entries[name] = server.run_workflow(workflow, timeout=180, object_info=info)

        pairs = zip(workers, "ab", strict=True)
        threads = [threading.Thread(target=run, args=pair) for pair in pairs]
        for thread in threads:  # the same shared workflow queued on both workers at once
            thread.start()
        for thread in threads:
            thread.join(timeout=200)
        assert {name: entry["status"]["status_str"] for name, entry in entries.items()} == {
            "a": "success", "b": "success"}
        assert emu.stats["creates"] == 1, "two workers, one paid run"
        assert emu.stats["uploads"] == 1, "the waiting worker uploaded nothing"
        logs = workers[0].log_text() + workers[1].log_text()
        assert "unreachable" not in logs, logs[-3000:]
        pack = workers[0].pack_folder_name
        assert not [line for line in logs.splitlines() if "IMPORT FAILED" in line and pack in line]
    finally:
        for server in workers:
            server.stop()
