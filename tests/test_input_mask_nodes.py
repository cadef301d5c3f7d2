"""The isolation nodes' `input_mask` output (issue #37), with real torch tensors through the node code path
against a real emulator: the product's mask on the input photo's canvas, built only when connected, no
paid run added; the URL node's mask at the downloaded image's size; a batch of several sizes letterboxed
like the other outputs; and a product that cannot be placed flagged `unplaced` in run_info."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from linked_support import Running, graph
from node_support import PACK, Bound, own_emulator
from placement_photos import case, product_photo

nodes = PACK.nodes
INPUT_MASK = 4  # the slot: appended after run_info


@pytest.fixture
def bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bound]:
    yield from own_emulator(tmp_path, monkeypatch, latency=0.05, cheap=False)  # a real matte from the pixels


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch) -> Running:
    return Running(monkeypatch)


def tensor(pixels: np.ndarray) -> torch.Tensor:
    """ComfyUI's IMAGE batch of one: [1, H, W, 3] float32 in 0..1."""
    return torch.from_numpy(pixels.astype(np.float32) / 255).unsqueeze(0)


def run_image_node(comfy: Running, prompt: dict[str, Any], image: torch.Tensor, **inputs: Any) -> dict[str, Any]:
    node = nodes.RunflowProductIsolation()
    params = {"aspect_ratio": "1:1", "resolution": "1K", "unique_id": "2", "graph": prompt, **inputs}
    comfy.prompts["p1"] = prompt
    return comfy.run("p1", "2", lambda: node.isolate(image, **params))


def iou(mask: torch.Tensor, footprint: np.ndarray) -> float:
    placed = mask.numpy() >= 0.5
    return float((placed & footprint).sum() / (placed | footprint).sum())


def test_input_mask_is_the_product_on_the_photos_canvas_and_only_it_is_built(bound: Bound, comfy: Running) -> None:
    photos = [case("near the top-left"), case("near the top-left", seed=1)]
    batch = torch.cat([tensor(photo.pixels) for photo in photos])
    joined = graph(("6", "JoinImageWithAlpha", ["2", INPUT_MASK]))
    output = run_image_node(comfy, joined, batch)
    image, mask, rgba, info, input_mask = output["result"]
    assert input_mask.shape == (2, 900, 1200) and input_mask.dtype == torch.float32, "the input's size"
    for index, photo in enumerate(photos):
        assert iou(input_mask[index], photo.footprint) >= 0.95
    assert image.shape == (1, 1, 1, 3) and mask.shape == (1, 1, 1) and rgba.shape == (1, 1, 1, 4), "not connected"
    assert output["ui"]["runflow"][0]["outputs_built"] == ["input_mask"]
    assert all("unplaced" not in json.loads(line)["flags"] for line in info.splitlines())
    assert bound.emu.stats["creates"] == 2, "one paid run per image, none for the placement"

    everything_else = graph(("3", "PreviewImage", ["2", 0]), ("4", "MaskPreview", ["2", 1]),
                            ("5", "SaveImage", ["2", 2]))
    output = run_image_node(comfy, everything_else, batch)
    assert output["result"][INPUT_MASK].shape == (1, 1, 1), "not connected: a stand-in, and nothing placed"
    assert "input_mask" not in output["ui"]["runflow"][0]["outputs_built"]
    assert output["result"][1].shape == (2, 1024, 1024), "`mask` stays the result's canvas"
    assert bound.emu.stats["creates"] == 2, "answered by the cache"


def test_connecting_input_mask_changes_the_fingerprint(comfy: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """ComfyUI caches outputs by fingerprint: connecting input_mask later must run the node again rather
    than hand over the stand-in of a run that did not build it."""
    monkeypatch.setenv("RUNFLOW_MODE", "emulator")
    seen = partial(comfy.fingerprint, nodes.RunflowProductIsolation)
    image_only = seen(graph(("3", "PreviewImage", ["2", 0])))
    assert image_only != seen(graph(("3", "PreviewImage", ["2", 0]), ("6", "MaskPreview", ["2", INPUT_MASK])))
    assert image_only == "emulator outputs [0]", "unchanged for graphs that do not connect it"


def test_a_product_that_cannot_be_placed_gives_an_empty_mask_and_the_unplaced_flag(bound: Bound,
                                                                                   comfy: Running) -> None:
    """A product too small to be looked for (under 6% of the photo's long side): the mask is the input's
    size and empty, and run_info and the node's summary say `unplaced` (beside the matte's `tiny`)."""
    photo = product_photo((1200, 900), (600, 450), (22, 27))
    output = run_image_node(comfy, graph(("6", "MaskPreview", ["2", INPUT_MASK])), tensor(photo.pixels))
    input_mask, info = output["result"][INPUT_MASK], output["result"][3]
    assert input_mask.shape == (1, 900, 1200) and float(input_mask.max()) == 0.0
    assert json.loads(info)["flags"][-1] == "unplaced", "after the matte's own flags"
    assert output["ui"]["runflow"][0]["flags"]["unplaced"] == 1


def test_the_url_node_places_on_the_downloaded_image_and_letterboxes_a_batch_of_sizes(
    bound: Bound, comfy: Running
) -> None:
    wide, tall = case("wide photo"), product_photo((500, 700), (250, 380), (160, 220), seed=3)
    staged = [nodes.RunflowStageImage().stage(tensor(photo.pixels), lossless=True)[0] for photo in (wide, tall)]
    prompt = graph(("6", "MaskPreview", ["2", INPUT_MASK]))
    prompt["2"]["class_type"] = "RunflowProductIsolationFromURL"
    comfy.prompts["p1"] = prompt
    node = nodes.RunflowProductIsolationFromURL()
    params = {"aspect_ratio": "4:3", "resolution": "1K", "unique_id": "2", "graph": prompt}
    result = comfy.run("p1", "2", lambda: node.isolate("\n".join(staged), **params))["result"]
    input_mask = result[INPUT_MASK]
    assert input_mask.shape == (2, 700, 1800), "the largest height and width of the downloaded images"
    # Each mask centred in its item, padding 0, as the other outputs letterbox a batch of sizes.
    assert iou(input_mask[0, 50:650, :], wide.footprint) >= 0.95
    assert float(input_mask[0, :50].max()) == 0 == float(input_mask[0, 650:].max())
    assert iou(input_mask[1, :, 650:1150], tall.footprint) >= 0.95
    assert float(input_mask[1, :, :650].max()) == 0 == float(input_mask[1, :, 1150:].max())
    assert bound.emu.stats["creates"] == 2
