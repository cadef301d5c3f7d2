"""`edges` = clean through a real ComfyUI: the V3 node takes the appended input, saves the cleaned cut-out
(same alpha, new colours on the soft edges only), and switching from `as returned` is a cache hit, not a
second run, counted by an emulator of this test. Skips without COMFYUI_DIR (see test_comfyui_real.py)."""

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
from runflow_api.pictures.edges import decontaminate


def test_a_v3_node_with_edges_clean_saves_clean_edges_from_the_cache(tmp_path: Path) -> None:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    key = "rf_live_emulator_edges_clean"
    with (
        Emulator(api_key=key, latency=0.3, port=0) as emu,
        ComfyUI(env=emulator_env(emu.base_url, key, tmp_path)) as server,
    ):
        server.input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")

        def saved_rgba(edges: str) -> np.ndarray:
            isolation = {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K", "edges": edges}
            prefix = f"runflow/edges-{edges.replace(' ', '-')}"
            prompt: dict[str, Any] = {
                "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
                "2": {"class_type": "RunflowProductIsolation", "inputs": isolation},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 2], "filename_prefix": prefix}},
            }
            entry = server.wait_history(server.queue_prompt(prompt), timeout=120)
            assert entry["status"]["status_str"] == "success", entry["status"]
            [file] = [file for file in server.output_files(entry) if file.parent.name == "runflow"]
            with Image.open(file) as image:
                assert image.mode == "RGBA"
                return np.asarray(image).copy()

        returned = saved_rgba("as returned")
        cleaned = saved_rgba("clean")
        assert emu.stats["creates"] == 1, "switching edges is served from the cache"
    band = (returned[..., 3] > 0) & (returned[..., 3] < 255)
    assert band.sum() > 100
    assert np.array_equal(cleaned[..., 3], returned[..., 3])
    assert np.array_equal(cleaned[~band], returned[~band])
    assert (cleaned[band] != returned[band]).any(axis=1).mean() > 0.3
    # SaveImage truncates 255 * x, so a saved pixel may be one below the node's: compare with that slack.
    assert np.abs(cleaned.astype(int) - decontaminate(returned)).max() <= 3
