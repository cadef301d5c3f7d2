"""`margin` through a real ComfyUI: the V3 node takes the appended input, saves the product shrunk and
centred on a canvas of the same size, and changing it is a cache hit, not a second run, counted by an
emulator of this test. Skips without COMFYUI_DIR (see test_comfyui_real.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI, emulator_env
from PIL import Image

from runflow_api.emulator import Emulator


def test_a_v3_node_with_a_margin_saves_the_product_shrunk_and_centred_from_the_cache(tmp_path: Path) -> None:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    key = "rf_live_emulator_margin_test"
    with (
        Emulator(api_key=key, latency=0.3, port=0) as emu,
        ComfyUI(env=emulator_env(emu.base_url, key, tmp_path)) as server,
    ):
        server.input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")

        def saved_rgba(margin: int) -> np.ndarray:
            isolation = {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K", "margin": margin}
            save = {"images": ["2", 2], "filename_prefix": f"runflow/m{margin}"}
            prompt: dict[str, Any] = {
                "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
                "2": {"class_type": "RunflowProductIsolation", "inputs": isolation},
                "3": {"class_type": "SaveImage", "inputs": save},
            }
            entry = server.wait_history(server.queue_prompt(prompt), timeout=120)
            assert entry["status"]["status_str"] == "success", entry["status"]
            [file] = [file for file in server.output_files(entry) if file.parent.name == "runflow"]
            with Image.open(file) as image:
                return np.asarray(image.convert("RGBA")).copy()

        plain = saved_rgba(0)
        framed = saved_rgba(30)
        assert emu.stats["creates"] == 1, "changing the margin is served from the cache"
    assert framed.shape == plain.shape, "the canvas keeps its size"
    solid = framed[..., 3] > 0
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    height, width = solid.shape
    assert cols[-1] + 1 - cols[0] <= round(width * 0.7) and rows[-1] + 1 - rows[0] <= round(height * 0.7)
    assert abs((cols[0] + cols[-1] + 1) / 2 - width / 2) <= 2 and abs((rows[0] + rows[-1] + 1) / 2 - height / 2) <= 2
