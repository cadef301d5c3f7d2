"""The pack inside a real ComfyUI: it loads, its nodes are listed, and every example workflow runs.

Runs only when COMFYUI_DIR points at a ComfyUI checkout (COMFYUI_PYTHON / COMFYUI_PYTHONPATH pick its
interpreter and extra import paths). ComfyUI talks to the pack's in-process emulator, so nothing is paid
and no network is used. A recognisable fake key is put in ComfyUI's environment to prove that it never
reaches a saved PNG or the prompt history.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI
from PIL import Image

pytestmark = pytest.mark.skipif(
    not os.environ.get(COMFYUI_DIR_ENV),
    reason="set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests",
)

FAKE_KEY = "rf_live_SECRETSECRET1234"
NODE_IDS = {"RunflowProductIsolation", "RunflowProductIsolationFromURL", "RunflowStageImage"}
WORKFLOWS = sorted((PACK_DIR / "example_workflows").glob("*.json"))
# What each example saves: SaveImage filename_prefix -> (PNG mode, size, batch size).
EXPECTED_SAVES = {
    "runflow_isolate_transparent_png": {"runflow/isolated": ("RGBA", None, 1)},
    "runflow_batch_white_background": {"runflow/white": ("RGB", (1024, 1024), 2)},
    "runflow_composite_on_background": {
        "runflow/composite": ("RGB", (1024, 768), 1),
        "runflow/joined": ("RGBA", (1024, 768), 1),
    },
}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    state = tmp_path_factory.mktemp("runflow-state")
    server = ComfyUI(
        env={
            "RUNFLOW_MODE": "emulator",
            "RUNFLOW_EMULATOR_LATENCY": "0.3",
            "RUNFLOW_DATA_DIR": str(state / "data"),
            "RUNFLOW_CACHE_DIR": str(state / "cache"),
            "RUNFLOW_KEY_FILE": str(state / "api_key"),
            "RUNFLOW_API_KEY": FAKE_KEY,
        }
    )
    for sample in (PACK_DIR / "examples").iterdir():
        if sample.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            server.input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample, server.input_dir / sample.name)
    with server:
        yield server


@pytest.fixture(scope="module")
def object_info(comfy: ComfyUI) -> dict[str, Any]:
    return comfy.object_info()


def test_comfyui_loads_the_pack_and_lists_its_nodes(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    assert set(object_info) >= NODE_IDS, comfy.log_text()[-3000:]
    failed = [line for line in comfy.log_text().splitlines() if "IMPORT FAILED" in line]
    assert not [line for line in failed if comfy.pack_folder_name in line], failed
    node = object_info["RunflowProductIsolation"]
    assert node["display_name"] == "Runflow Product Isolation" and node["category"] == "Runflow"
    assert node["output_name"] == ["image", "mask", "rgba", "run_info"]
    assert not node.get("api_node")
    assert comfy.get_json("/runflow/price")["per_image"] == "0.27", "__init__ did not register the routes"
    templates = comfy.get_json("/api/workflow_templates")
    assert sorted(templates.get("runflow-product-isolation", [])) == [path.stem for path in WORKFLOWS]


@pytest.mark.parametrize("path", WORKFLOWS, ids=[path.stem for path in WORKFLOWS])
def test_example_workflow_runs_and_saves_without_the_key(
    comfy: ComfyUI, object_info: dict[str, Any], path: Path
) -> None:
    workflow = json.loads(path.read_text(encoding="utf-8"))
    entry = comfy.run_workflow(workflow, timeout=180, object_info=object_info)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    saved: dict[str, list[Path]] = {}
    for file in comfy.output_files(entry):
        if file.parent.name == "runflow":
            saved.setdefault(f"runflow/{file.name.rsplit('_', 2)[0]}", []).append(file)
    expected = EXPECTED_SAVES[path.stem]
    assert set(saved) == set(expected)
    for prefix, (mode, size, count) in expected.items():
        assert len(saved[prefix]) == count
        for file in saved[prefix]:
            with Image.open(file) as image:
                assert image.mode == mode, f"{file.name}: {image.mode}"
                if size:
                    assert image.size == size
                if mode == "RGBA":
                    low, high = image.getchannel("A").getextrema()
                    assert low == 0 and high == 255, "a transparent background and an opaque product"
                else:
                    darkest = min(low for low, _ in image.getextrema())
                    assert darkest < 128, f"{file.name} shows no product"
                text = json.dumps(dict(image.text))
            assert "workflow" in image.text and "prompt" in image.text
            assert FAKE_KEY not in text and FAKE_KEY[-8:] not in text
    history = json.dumps(comfy.get_json("/history"))
    assert FAKE_KEY not in history and FAKE_KEY[-8:] not in history
    assert FAKE_KEY not in json.dumps(workflow)
    assert FAKE_KEY not in comfy.log_text() and FAKE_KEY[-8:] not in comfy.log_text()


def test_a_second_execution_is_served_from_the_cache(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    """Changing a widget that is not part of the result's identity (concurrency) makes ComfyUI execute
    the node again instead of reusing its in-memory output; the pack's cache must then answer."""
    path = PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    node = next(node for node in workflow["nodes"] if node["type"] == "RunflowProductIsolation")
    summaries = []
    for concurrency in (7, 6):
        node["widgets_values"][-1] = concurrency
        entry = comfy.run_workflow(workflow, timeout=120, object_info=object_info)
        assert entry["status"]["status_str"] == "success"
        summaries.extend(entry["outputs"][str(node["id"])]["runflow"])
    assert summaries[-1]["cached"] == 1 and summaries[-1]["paid_runs"] == 0
    assert summaries[-1]["emulator"] is True and summaries[-1]["cost"] == "0.00"
