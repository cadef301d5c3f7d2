"""Each subgraph blueprint of the pack, placed in a graph in a real browser as a user does, runs against the emulator.

The user's way: double-click the canvas, type the blueprint's name in the node search, pick it, click
to drop it, wire a Load Image into it, change one of its promoted widgets and press Run; then the next
blueprint, in the same ComfyUI. The frontend loads the blueprint from ComfyUI's `/global_subgraphs`
(ComfyUI 0.3.66 and later; an older one ignores the pack's `subgraphs/` folder, which
tests/test_comfyui_blueprints.py checks), turns it into one subgraph node, and flattens it into the
prompt it queues. Runs on the frontend ComfyUI bundles and on today's
(COMFYUI_FRONTEND_ROOT), classic and Nodes 2.0, like tests/test_browser.py, whose set-up it shares.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    APP,
    CHROMIUM,
    CHROMIUM_ARGS,
    PHOTO,
    SETUPS,
    Shots,
    comfy_env,
    frontend_args,
    prepare,
    skip_reason,
    wait_until_idle,
    watch_page,
)
from comfy_harness import BLUEPRINTS, COMFYUI_DIR_ENV, ComfyUI
from PIL import Image

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
GLOBAL_SUBGRAPHS_SINCE = (0, 3, 66)
COLOUR, COLOUR_RGB = "#3366cc", (51, 102, 204)
IN_PLACE_COLOUR = (0xE8, 0xE4, 0xDC)  # the Keep Product in Place blueprint's colour
# Each blueprint: its promoted widgets as the frontend shows them, and the one a user changes here.
BLUEPRINTS_PLACED = {
    "Runflow Product on a Colour": (["background", "aspect_ratio", "resolution"], ("background", COLOUR)),
    "Runflow Marketplace Files": (["prompt", "resolution"], ("prompt", "the sneaker")),
    "Runflow Keep Product in Place": (["color", "resolution"], ("resolution", "1K")),
}

WIRE_AND_SET = f"""
([photo, widget, value]) => {{
  const app = {APP};
  const blueprint = app.graph.nodes.find((node) => node.isSubgraphNode?.());
  const load = window.LiteGraph.createNode("LoadImage");
  load.pos = [60, 120];
  app.graph.add(load);
  load.widgets.find((w) => w.name === "image").value = photo;
  load.connect(0, blueprint, 0);
  blueprint.widgets.find((w) => w.name === widget).value = value;
  app.graph.setDirtyCanvas(true, true);
  return {{ id: blueprint.id, title: blueprint.title, widgets: blueprint.widgets.map((w) => w.name) }};
}}
"""


def _comfyui_version() -> tuple[int, ...]:
    text = (Path(os.environ[COMFYUI_DIR_ENV]) / "comfyui_version.py").read_text(encoding="utf-8")
    version = text.split("__version__")[1].split('"')[1]
    return tuple(int(part) for part in version.split(".")[:3])


def place_blueprint(page: Any, name: str) -> None:
    """Search for the blueprint by name, as a user would, and drop it on the canvas."""
    page.evaluate(f"{APP}.graph.clear()")
    page.locator("canvas#graph-canvas").dblclick(position={"x": 700, "y": 450})
    page.keyboard.type(name, delay=10)
    found = page.get_by_text(name, exact=True).first
    found.wait_for(timeout=30_000)
    found.click()  # not Enter: a node whose name is close ("Runflow Marketplace Image") may rank first
    page.mouse.click(700, 450)  # the search drops a "ghost" that follows the pointer until clicked
    page.wait_for_function(f"() => {APP}.graph.nodes.some((node) => node.isSubgraphNode?.())", timeout=30_000)


@pytest.mark.parametrize(
    ("frontend", "nodes2"), SETUPS, ids=[f"{fe}-{'nodes2' if vue else 'classic'}" for fe, vue in SETUPS]
)
def test_every_blueprint_placed_in_a_real_browser_runs_against_the_emulator(
    tmp_path: Path, frontend: str, nodes2: bool
) -> None:
    from playwright.sync_api import sync_playwright

    assert sorted(path.stem for path in BLUEPRINTS) == sorted(BLUEPRINTS_PLACED)
    if _comfyui_version() < GLOBAL_SUBGRAPHS_SINCE:
        pytest.skip(
            "this ComfyUI serves no /global_subgraphs (from 0.3.66): it has no blueprints to place; "
            "test_comfyui_blueprints.py checks that it ignores the folder and runs the blueprints' graphs"
        )
    base = tmp_path / "comfy"
    shots = Shots(tmp_path, frontend, nodes2)
    runs: dict[str, dict[str, Any]] = {}
    with ComfyUI(env=comfy_env(base), base_dir=base, extra_args=frontend_args(frontend)) as comfy:
        prepare(comfy, nodes2=nodes2)
        comfy.post_json("/runflow/mode", {"mode": "emulator"}).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                problems = watch_page(page)
                page.goto(comfy.url)
                page.wait_for_function(f"() => {APP}?.graph && window.LiteGraph", timeout=60_000)
                page.wait_for_function(f"() => {APP}.graph.nodes.length > 0", timeout=60_000)  # the start-up graph
                for name, (promoted, (widget, value)) in BLUEPRINTS_PLACED.items():
                    place_blueprint(page, name)
                    placed = page.evaluate(WIRE_AND_SET, [PHOTO, widget, value])
                    assert placed["title"] == name, placed
                    assert placed["widgets"][:len(promoted)] == promoted, placed
                    before = set(comfy.get_json("/history"))
                    page.evaluate(f"{APP}.queuePrompt(0, 1)")
                    wait_until_idle(comfy, timeout=180)
                    page.wait_for_timeout(500)  # the previews
                    page.screenshot(path=str(shots.path(name.lower().replace(" ", "-"))))
                    new = [entry for prompt_id, entry in comfy.get_json("/history").items() if prompt_id not in before]
                    assert len(new) == 1 and new[0]["status"]["status_str"] == "success", (name, new)
                    runs[name] = new[0]
            finally:
                browser.close()
        _check_on_a_colour(comfy, runs["Runflow Product on a Colour"])
        _check_marketplace_files(comfy, runs["Runflow Marketplace Files"])
        _check_in_place(comfy, runs["Runflow Keep Product in Place"])
        assert problems == [], problems


def _isolation_inputs(entry: dict[str, Any]) -> dict[str, Any]:
    (isolation,) = [node for node in entry["prompt"][2].values() if node["class_type"] == "RunflowProductIsolation"]
    return dict(isolation["inputs"])


def _check_on_a_colour(comfy: ComfyUI, entry: dict[str, Any]) -> None:
    assert _isolation_inputs(entry)["background"] == COLOUR
    (saved,) = comfy.output_files(entry)
    with Image.open(saved) as image:
        assert image.mode == "RGB" and saved.name.startswith("on-colour")
        corners = {image.getpixel((x, y)) for x in (0, image.width - 1) for y in (0, image.height - 1)}
        assert corners == {COLOUR_RGB}, corners


def _check_marketplace_files(comfy: ComfyUI, entry: dict[str, Any]) -> None:
    assert _isolation_inputs(entry)["prompt"] == "the sneaker"
    saved = comfy.output_files(entry)
    assert sorted(file.name.split("_")[1] for file in saved) == ["amazon", "instagram-portrait", "pinterest"]
    for file in saved:
        with Image.open(file) as image:
            assert image.format == "JPEG" and image.getpixel((0, 0)) == (255, 255, 255), file.name
    flags = [item["flags"] for output in entry["outputs"].values() for item in output.get("runflow_marketplace", [])]
    assert flags == [[], [], []], flags


def _check_in_place(comfy: ComfyUI, entry: dict[str, Any]) -> None:
    assert _isolation_inputs(entry)["resolution"] == "1K"
    (saved,) = comfy.output_files(entry)
    with Image.open(saved) as image, Image.open(comfy.input_dir / PHOTO) as photo:
        assert saved.name.startswith("in-place") and image.size == photo.size
        corner = image.convert("RGB").getpixel((0, 0))  # within a level: core's Save Image truncates
        assert max(abs(a - b) for a, b in zip(corner, IN_PLACE_COLOUR, strict=True)) <= 1, corner
