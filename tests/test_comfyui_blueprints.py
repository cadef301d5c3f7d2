"""The pack's subgraph blueprints (`subgraphs/*.json`): well formed, listed by a ComfyUI that serves them,
ignored by one that does not, and runnable against the emulator.

ComfyUI serves a pack's `subgraphs/*.json` at `/global_subgraphs` from 0.3.66 on (app/subgraph_manager.py);
the frontend offers each as one node under "Subgraph Blueprints". The shape checks run always; the rest
needs COMFYUI_DIR (as tests/test_comfyui_real.py). Placing a blueprint in a real browser and running it is
tests/test_browser_blueprints.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import (
    BLUEPRINTS,
    COMFYUI_DIR_ENV,
    PACK_FOLDER_NAME,
    SUBGRAPH_INPUT_NODE,
    SUBGRAPH_OUTPUT_NODE,
    ComfyUI,
    blueprint_workflow,
    load_pack,
)
from PIL import Image
from support import product_photo

FAKE_KEY = "rf_live_BLUEPRINTKEY5678"
PHOTO = "blueprint-product.png"
# The ComfyUI release that first serves custom nodes' subgraphs at /global_subgraphs.
GLOBAL_SUBGRAPHS_SINCE = (0, 3, 66)
# Core nodes a blueprint may use besides the pack's own, with their widgets in order (the same on 0.3.64 and 0.33).
CORE_WIDGETS = {"SaveImage": ["filename_prefix"], "EmptyImage": ["width", "height", "batch_size", "color"],
                "ImageBlend": ["blend_factor", "blend_mode"], "ImageCompositeMasked": ["x", "y", "resize_source"]}
ON_COLOUR, MARKETPLACE = "Runflow Product on a Colour", "Runflow Marketplace Files"
IN_PLACE = "Runflow Keep Product in Place"
MARKETPLACE_FILES = {"amazon": (2000, 2000), "instagram-portrait": (1080, 1350), "pinterest": (1000, 1500)}
IN_PLACE_COLOUR = (0xE8, 0xE4, 0xDC)  # the blueprint's EmptyImage colour, 15262940


def _blueprint(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _widget_names(node_type: str) -> list[str]:
    """The widget inputs of a node, in the frontend's order (required, then optional)."""
    if node_type in CORE_WIDGETS:
        return CORE_WIDGETS[node_type]
    declared = load_pack().NODE_CLASS_MAPPINGS[node_type].INPUT_TYPES()
    return [
        name
        for section in ("required", "optional")
        for name, spec in declared.get(section, {}).items()
        if isinstance(spec[0], list) or spec[0] in ("STRING", "INT", "FLOAT", "BOOLEAN")
    ]


def test_there_are_blueprints_for_a_colour_the_marketplace_files_and_the_product_in_place() -> None:
    assert sorted(path.stem for path in BLUEPRINTS) == sorted([ON_COLOUR, MARKETPLACE, IN_PLACE])


@pytest.mark.parametrize("path", BLUEPRINTS, ids=[path.stem for path in BLUEPRINTS])
def test_a_blueprint_is_one_subgraph_node_over_the_packs_nodes(path: Path) -> None:
    """What the frontend requires of a blueprint (one root node, an instance of the one subgraph, named
    as the file) and what a saved workflow requires of its nodes: every value in its widget's place,
    every promoted widget one that exists."""
    blueprint = _blueprint(path)
    (subgraph,) = blueprint["definitions"]["subgraphs"]
    (root,) = blueprint["nodes"]
    assert root["type"] == subgraph["id"] and subgraph["name"] == path.stem == root["title"]
    assert subgraph["category"] == "Runflow" and "$0.27 per image" in subgraph["description"]
    inner = {str(node["id"]): node for node in subgraph["nodes"]}
    for node in inner.values():
        assert len(node["widgets_values"]) == len(_widget_names(node["type"])), node["type"]
    for node_id, widget in root["properties"]["proxyWidgets"]:
        assert widget in _widget_names(inner[node_id]["type"]), (node_id, widget)
    ends = {SUBGRAPH_INPUT_NODE, SUBGRAPH_OUTPUT_NODE}
    for link in subgraph["links"]:
        assert {link["origin_id"], link["target_id"]} - ends <= {node["id"] for node in subgraph["nodes"]}
    assert [slot["name"] for slot in root["inputs"]] == [slot["name"] for slot in subgraph["inputs"]]
    assert [slot["name"] for slot in root["outputs"]] == [slot["name"] for slot in subgraph["outputs"]]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    state = tmp_path_factory.mktemp("runflow-state")
    server = ComfyUI(env={
        "RUNFLOW_MODE": "emulator", "RUNFLOW_EMULATOR_LATENCY": "0.3", "RUNFLOW_API_KEY": FAKE_KEY,
        "RUNFLOW_DATA_DIR": str(state / "data"), "RUNFLOW_CACHE_DIR": str(state / "cache"),
        "RUNFLOW_KEY_FILE": str(state / "api_key"),
    })  # fmt: skip
    server.input_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(product_photo(5, (240, 320))).save(server.input_dir / PHOTO)
    yield from server.serve()


def _version(comfy: ComfyUI) -> tuple[int, ...]:
    return tuple(int(part) for part in comfy.get_json("/system_stats")["system"]["comfyui_version"].split(".")[:3])


def test_comfyui_lists_the_blueprints_or_ignores_the_folder(comfy: ComfyUI) -> None:
    """From 0.3.66 each blueprint is listed under the pack's folder and served as the file's own text;
    an older ComfyUI has no such route, and the folder changes nothing there (the nodes load as ever)."""
    answer = comfy.session.get(f"{comfy.url}/global_subgraphs", timeout=30)
    if _version(comfy) < GLOBAL_SUBGRAPHS_SINCE:
        assert answer.status_code == 404, answer.text[:500]
        assert {"RunflowProductIsolation", "RunflowStageImage"} <= set(comfy.object_info())
        return
    answer.raise_for_status()
    ours = {
        entry["name"]: entry_id
        for entry_id, entry in answer.json().items()
        if entry["info"]["node_pack"] == f"custom_nodes.{PACK_FOLDER_NAME}"
    }
    assert sorted(ours) == [path.stem for path in BLUEPRINTS]
    for path in BLUEPRINTS:
        served = comfy.get_json(f"/global_subgraphs/{ours[path.stem]}")
        assert served["source"] == "custom_node" and "path" not in served  # no server paths leak
        assert json.loads(served["data"]) == _blueprint(path)


@pytest.mark.parametrize("path", BLUEPRINTS, ids=[path.stem for path in BLUEPRINTS])
def test_a_blueprint_runs_against_the_emulator_and_writes_what_it_promises(comfy: ComfyUI, path: Path) -> None:
    """The blueprint's own graph, fed by Load Image, runs on every ComfyUI the pack supports (older ones
    only lack the listing), and its files are what its description promises, without the key."""
    load = {"id": 1000, "type": "LoadImage", "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE"}],
            "widgets_values": [PHOTO, "image"]}  # fmt: skip
    entry = comfy.run_workflow(blueprint_workflow(_blueprint(path), load), timeout=180)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    saved = comfy.output_files(entry)
    for file in saved:
        with Image.open(file) as image:
            assert FAKE_KEY[-8:] not in json.dumps({**image.info, **getattr(image, "text", {})}, default=str)
    {ON_COLOUR: _on_a_colour, MARKETPLACE: _marketplace_files, IN_PLACE: _in_place}[path.stem](entry, saved, comfy)


def _on_a_colour(entry: dict[str, Any], saved: list[Path], comfy: ComfyUI) -> None:
    (file,) = saved
    assert file.parent.name == "runflow" and file.name.startswith("on-colour")
    with Image.open(file) as image:
        assert image.mode == "RGB"
        corners = {image.getpixel((x, y)) for x in (0, image.width - 1) for y in (0, image.height - 1)}
        assert corners == {(255, 255, 255)}, corners
        assert min(low for low, _ in image.getextrema()) < 128, "no product on the colour"


def _marketplace_files(entry: dict[str, Any], saved: list[Path], comfy: ComfyUI) -> None:
    """Three JPEGs, one per preset, at its canvas, on exact white, with no compliance flag (one paid run)."""
    assert sorted(file.name for file in saved) == sorted(f"marketplace_{name}_00001.jpg" for name in MARKETPLACE_FILES)
    for file in saved:
        preset = file.name.removeprefix("marketplace_").removesuffix("_00001.jpg")
        with Image.open(file) as image:
            assert image.format == "JPEG" and image.size == MARKETPLACE_FILES[preset], file.name
            corners = {image.getpixel((x, y)) for x in (0, image.width - 1) for y in (0, image.height - 1)}
            assert corners == {(255, 255, 255)}, (file.name, corners)
    shown = [item for output in entry["outputs"].values() for item in output.get("runflow_marketplace", [])]
    assert sorted(item["preset"] for item in shown) == sorted(MARKETPLACE_FILES)
    assert all(item["flags"] == [] for item in shown), shown


def _in_place(entry: dict[str, Any], saved: list[Path], comfy: ComfyUI) -> None:
    """The photo's size, the photo's own product where it was, the blueprint's colour around it."""
    (file,) = saved
    assert file.parent.name == "runflow" and file.name.startswith("in-place")
    with Image.open(comfy.input_dir / PHOTO) as photo, Image.open(file) as image:
        assert image.size == photo.size
        corners = {image.getpixel((x, y)) for x in (0, image.width - 1) for y in (0, image.height - 1)}
        # Core's Save Image truncates 255 x value (231.99... -> 231), so a colour comes back within one level.
        assert all(max(abs(a - b) for a, b in zip(corner, IN_PLACE_COLOUR, strict=True)) <= 1 for corner in corners)
        centre = (photo.width // 2, photo.height // 2)
        kept, was = image.convert("RGB").getpixel(centre), photo.convert("RGB").getpixel(centre)
        assert max(abs(a - b) for a, b in zip(kept, was, strict=True)) <= 2, (kept, was)
