"""QA flags through a real ComfyUI: a blank photo and a product in one batch, isolated by the pack's
in-process emulator; run_info (shown by ComfyUI's PreviewAny) and the node's ui summary in /history carry
the flags, and the run succeeds all the same. Skips without COMFYUI_DIR (see tests/comfy_harness.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI
from PIL import Image


def test_a_blank_photo_is_flagged_empty_in_run_info_and_the_summary(tmp_path: Path) -> None:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    env = {"RUNFLOW_MODE": "emulator", "RUNFLOW_EMULATOR_LATENCY": "0.2", "RUNFLOW_DATA_DIR": str(tmp_path / "data"),
           "RUNFLOW_CACHE_DIR": str(tmp_path / "cache"), "RUNFLOW_KEY_FILE": str(tmp_path / "no_key")}
    with ComfyUI(env=env) as server:
        server.input_dir.mkdir(parents=True, exist_ok=True)
        with Image.open(PACK_DIR / "examples" / "sneaker.jpg") as sneaker:
            size = sneaker.size
            sneaker.save(server.input_dir / "sneaker.png")
        Image.fromarray(np.full((size[1], size[0], 3), 230, np.uint8)).save(server.input_dir / "blank.png")
        isolation = {"image": ["3", 0], "aspect_ratio": "1:1", "resolution": "1K"}
        prompt = {
            "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.png"}},
            "2": {"class_type": "LoadImage", "inputs": {"image": "blank.png"}},
            "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
            "4": {"class_type": "RunflowProductIsolation", "inputs": isolation},
            "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 2], "filename_prefix": "runflow/qa"}},
            "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 3]}},
        }
        entry = server.wait_history(server.queue_prompt(prompt), timeout=180)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
        info = [json.loads(line) for line in entry["outputs"]["6"]["text"][0].splitlines()]
        assert [line["flags"] for line in info] == [[], ["empty"]]
        summary = entry["outputs"]["4"]["runflow"][0]
        assert (summary["images"], summary["flagged"], summary["flags"]) == (2, 1, {"empty": 1})
        assert len([file for file in server.output_files(entry) if file.parent.name == "runflow"]) == 2
