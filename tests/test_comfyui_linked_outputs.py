"""In a real ComfyUI, the V3 isolation node builds only the outputs the graph connects, and those right.

ComfyUI hands the V3 node its prompt and id as hidden inputs; the node reports what it built in its ui
payload (`outputs_built`). The outputs in use are compared, pixel for pixel as saved, with a run where
all three are connected; that second run also proves that connecting another output makes ComfyUI run
the node again (its fingerprint carries the links) instead of answering from its cache with a stand-in.
Runs only when COMFYUI_DIR points at a ComfyUI checkout (as test_comfyui_real.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI, ComfyUIUnavailable
from PIL import Image


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    state = tmp_path_factory.mktemp("runflow-linked")
    server = ComfyUI(
        env={"RUNFLOW_MODE": "emulator", "RUNFLOW_EMULATOR_LATENCY": "0.2", "RUNFLOW_DATA_DIR": str(state / "data"),
             "RUNFLOW_CACHE_DIR": str(state / "cache"), "RUNFLOW_KEY_FILE": str(state / "no_key")}  # fmt: skip
    )
    server.input_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")
    try:
        server.start()
    except ComfyUIUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def prompt(saves: dict[str, list[Any]]) -> dict[str, Any]:
    """sneaker.jpg -> isolation (1K 1:1) -> one SaveImage per entry (prefix -> the image to save; ["3", 0]
    is the mask through MaskToImage)."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
        "2": {"class_type": "RunflowProductIsolation", "inputs": {"image": ["1", 0], "aspect_ratio": "1:1",
                                                                  "resolution": "1K"}},  # fmt: skip
    }
    if ["3", 0] in saves.values():
        graph["3"] = {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}}
    for number, (prefix, image) in enumerate(saves.items(), 10):
        graph[str(number)] = {"class_type": "SaveImage", "inputs": {"images": image, "filename_prefix": prefix}}
    return graph


def run(comfy: ComfyUI, saves: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The node's ui summary, and each saved image's pixels by prefix."""
    entry = comfy.wait_history(comfy.queue_prompt(prompt(saves)), timeout=180)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    saved = {}
    for file in comfy.output_files(entry):
        with Image.open(file) as image:
            saved[file.name.rsplit("_", 2)[0]] = np.asarray(image)
    return entry["outputs"]["2"]["runflow"][0], saved


def test_an_unused_rgba_is_not_built_and_the_outputs_in_use_are_right(comfy: ComfyUI) -> None:
    image_and_mask = {"image_a": ["2", 0], "mask_a": ["3", 0]}
    summary, used = run(comfy, image_and_mask)
    assert summary["outputs_built"] == ["image", "mask"], "the V3 node saw its prompt: rgba was left out"

    summary, everything = run(comfy, {"image_b": ["2", 0], "mask_b": ["3", 0], "rgba_b": ["2", 2]})
    assert summary["outputs_built"] == ["image", "mask", "rgba"], "a newly connected rgba made ComfyUI run it again"
    assert summary["cached"] == 1 and summary["paid_runs"] == 0, "the result itself came from the pack's cache"
    assert everything["rgba_b"].shape == (1024, 1024, 4), "the real rgba, not a cached 1x1 stand-in"
    assert np.array_equal(used["image_a"], everything["image_b"])
    assert np.array_equal(used["mask_a"], everything["mask_b"])
    assert used["image_a"].shape == (1024, 1024, 3) and 0 < used["mask_a"].mean() < 255

    summary, _ = run(comfy, {"rgba_c": ["2", 2]})
    assert summary["outputs_built"] == ["rgba"]

