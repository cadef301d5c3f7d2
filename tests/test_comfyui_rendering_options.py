"""Rendering options through a real ComfyUI: the V3 node takes the appended `edges` and `margin` inputs and
saves what they draw, and changing one is a cache hit, not a second run, counted by an emulator of this
module. Skips without COMFYUI_DIR (see test_comfyui_real.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI, emulator_env
from PIL import Image

from runflow_api.emulator import Emulator
from runflow_api.pictures.edges import decontaminate

KEY = "rf_live_emulator_rendering_options"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, ComfyUI]]:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    state = tmp_path_factory.mktemp("runflow-state")
    with (
        Emulator(api_key=KEY, latency=0.3, port=0) as emu,
        ComfyUI(env=emulator_env(emu.base_url, KEY, state)) as server,
    ):
        server.input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")
        yield emu, server


def saved_rgba(server: ComfyUI, prefix: str, **isolation: Any) -> np.ndarray:
    """Load Image (the sample sneaker) -> the isolation node (1:1, 1K, `isolation`) -> Save Image of its rgba."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
        "2": {"class_type": "RunflowProductIsolation",
              "inputs": {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K", **isolation}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 2], "filename_prefix": f"runflow/{prefix}"}},
    }
    entry = server.wait_history(server.queue_prompt(prompt), timeout=120)
    assert entry["status"]["status_str"] == "success", entry["status"]
    [file] = [file for file in server.output_files(entry) if file.parent.name == "runflow"]
    with Image.open(file) as image:
        assert image.mode == "RGBA"
        return np.asarray(image).copy()


def test_a_v3_node_with_edges_clean_saves_clean_edges_from_the_cache(served: tuple[Emulator, ComfyUI]) -> None:
    emu, server = served
    returned = saved_rgba(server, "edges-as-returned", edges="as returned")
    paid = emu.stats["creates"]
    cleaned = saved_rgba(server, "edges-clean", edges="clean")
    assert emu.stats["creates"] == paid, "switching edges is served from the cache"
    band = (returned[..., 3] > 0) & (returned[..., 3] < 255)
    assert band.sum() > 100
    assert np.array_equal(cleaned[..., 3], returned[..., 3])
    assert np.array_equal(cleaned[~band], returned[~band])
    assert (cleaned[band] != returned[band]).any(axis=1).mean() > 0.3
    # SaveImage truncates 255 * x, so a saved pixel may be one below the node's: compare with that slack.
    assert np.abs(cleaned.astype(int) - decontaminate(returned)).max() <= 3


def test_a_v3_node_with_a_margin_saves_the_product_shrunk_and_centred_from_the_cache(
    served: tuple[Emulator, ComfyUI],
) -> None:
    emu, server = served
    plain = saved_rgba(server, "m0", margin=0)
    paid = emu.stats["creates"]
    framed = saved_rgba(server, "m30", margin=30)
    assert emu.stats["creates"] == paid, "changing the margin is served from the cache"
    assert framed.shape == plain.shape, "the canvas keeps its size"
    solid = framed[..., 3] > 0
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    height, width = solid.shape
    assert cols[-1] + 1 - cols[0] <= round(width * 0.7) and rows[-1] + 1 - rows[0] <= round(height * 0.7)
    assert abs((cols[0] + cols[-1] + 1) / 2 - width / 2) <= 2 and abs((rows[0] + rows[-1] + 1) / 2 - height / 2) <= 2
