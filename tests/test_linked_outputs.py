"""Which outputs the graph uses (node_machinery/linked_outputs.py), and the isolation nodes building only those.

The detection runs on prompts shaped as ComfyUI 0.3.64 sends them: a plain graph, a graph with a subgraph
flattened by the frontend ("12:3" ids), a node created by a node expansion ("5.0.0.3", absent from the
prompt) and the fallbacks. The node tests run the classic node class against a real emulator, with
stand-ins for the two parts of ComfyUI it reads (the executing context and the prompt queue), shaped as
ComfyUI's; the V3 class is exercised in a real ComfyUI (test_comfyui_real.py).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from comfy_harness import load_pack
from linked_support import ISOLATION, Running, graph
from node_support import Bound, own_emulator, product_tensor

PACK = load_pack()
nodes = PACK.nodes
linked = importlib.import_module(f"{PACK.__name__}.node_machinery.linked_outputs")



# -- detection -----------------------------------------------------------------------------------------


def test_the_linked_slots_of_a_plain_graph() -> None:
    prompt = graph(("3", "SaveImage", ["2", 2]), ("4", "PreviewAny", ["2", 3]), ("5", "PreviewImage", ["1", 0]))
    assert linked.linked_slots(prompt, "2") == {2, 3}
    assert linked.linked_slots(prompt, "1") == {0}, "another node's links are its own"
    assert linked.linked_slots(graph(), "2") == frozenset(), "nothing connected: nothing to build"


def test_a_script_may_spell_ids_as_numbers() -> None:
    prompt = {2: {"class_type": ISOLATION, "inputs": {}}, 3: {"class_type": "SaveImage", "inputs": {"images": [2, 1]}}}
    assert linked.linked_slots(prompt, 2) == {1}
    assert linked.linked_slots(prompt, "2") == {1}


def test_nodes_of_a_flattened_subgraph_are_found_by_their_full_id() -> None:
    """The frontend sends a subgraph's nodes as "<subgraph node>:<inner id>"; links name those ids."""
    prompt = graph(("12:4", "SaveImage", ["12:3", 1]), ("12:5", "SaveImage", ["12:30", 0]), node_id="12:3")
    prompt["12:30"] = {"class_type": ISOLATION, "inputs": {}}
    assert linked.linked_slots(prompt, "12:3") == {1}
    assert linked.linked_slots(prompt, "12:30") == {0}


@pytest.mark.parametrize(
    ("prompt", "unique_id"),
    [
        (None, "2"),  # an executor that gives no prompt
        ({}, "2"),  # ComfyUI's stand-in when it has no dynamic prompt
        ([["2", 0]], "2"),  # not a prompt at all
        (graph(("3", "SaveImage", ["2", 0])), None),  # no node id
        (graph(("3", "SaveImage", ["2", 0])), ""),
        (graph(("3", "SaveImage", ["2", 0])), "5.0.0.3"),  # made by a node expansion: not in the prompt
    ],
)
def test_what_cannot_be_told_is_none_so_everything_is_built(prompt: Any, unique_id: Any) -> None:
    assert linked.linked_slots(prompt, unique_id) is None


def test_values_that_are_not_links_are_ignored() -> None:
    prompt = graph(("3", "SaveImage", ["2", 0]))
    prompt["6"] = {"class_type": "Odd", "inputs": {"pair": ["2", "0"], "flag": ["2", True], "three": ["2", 1, 0]}}
    prompt["7"] = "not a node"
    prompt["8"] = {"class_type": "NoInputs"}
    assert linked.linked_slots(prompt, "2") == {0}


@pytest.fixture
def comfy(monkeypatch: pytest.MonkeyPatch) -> Running:
    return Running(monkeypatch)


def test_the_running_prompt_is_read_from_comfyuis_queue(comfy: Running) -> None:
    prompt = graph(("3", "SaveImage", ["2", 0]))
    comfy.prompts["p1"] = prompt
    assert linked.running_prompt("p1") is prompt
    assert linked.running_prompt("p2") is None and linked.running_prompt(None) is None


def test_outside_comfyui_there_is_no_running_prompt_and_everything_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace())  # a `server` that is not ComfyUI's
    prompt = graph(("3", "SaveImage", ["2", 0]))
    assert linked.running_prompt("p1") is None
    assert linked.slots_to_build(prompt, "2", "p1") is None


def test_outputs_are_left_out_only_when_the_fingerprint_saw_the_same_links(comfy: Running) -> None:
    """The fingerprint reads the queue's prompt, the node its hidden PROMPT: when they differ, ComfyUI's
    cache key may not carry what is built, so everything is."""
    image_only = graph(("3", "PreviewImage", ["2", 0]))
    comfy.prompts["p1"] = image_only
    assert linked.slots_to_build(image_only, "2", "p1") == {0}
    comfy.prompts["p1"] = graph(("3", "PreviewImage", ["2", 0]), ("4", "SaveImage", ["2", 2]))
    assert linked.slots_to_build(image_only, "2", "p1") is None
    assert linked.slots_to_build(image_only, "2", "p9") is None


# -- the nodes -----------------------------------------------------------------------------------------


@pytest.fixture
def bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bound]:
    yield from own_emulator(tmp_path, monkeypatch, latency=0.1)


def run_classic(comfy: Running, prompt: dict[str, Any], image: torch.Tensor, **inputs: Any) -> Any:
    """The classic node as ComfyUI calls it: in the executing context, with UNIQUE_ID and PROMPT as
    its hidden `unique_id` and `graph` inputs."""
    node = nodes.RunflowProductIsolation()
    params = {"aspect_ratio": "1:1", "resolution": "1K", "unique_id": "2", "graph": prompt, **inputs}
    return comfy.run("p1", "2", lambda: node.isolate(image, **params))["result"]


def test_the_classic_node_builds_only_the_connected_outputs(bound: Bound, comfy: Running) -> None:
    batch = torch.cat([product_tensor((200, 30, 30)), product_tensor((30, 30, 200))])
    everything = graph(("3", "PreviewImage", ["2", 0]), ("4", "MaskPreview", ["2", 1]), ("5", "SaveImage", ["2", 2]))
    comfy.prompts["p1"] = everything
    full = run_classic(comfy, everything, batch)
    assert full[0].shape == (2, 1024, 1024, 3) and full[1].shape == (2, 1024, 1024) and full[2].shape[-1] == 4

    only_image = graph(("3", "PreviewImage", ["2", 0]))
    comfy.prompts["p1"] = only_image
    image, mask, rgba, info, _ = run_classic(comfy, only_image, batch)
    assert torch.equal(image, full[0]), "the output in use is what a full build gives"
    assert mask.shape == (1, 1, 1) and rgba.shape == (1, 1, 1, 4), "1x1 stand-ins of the right kind, never None"
    assert float(mask.sum()) == 0 == float(rgba.sum())
    assert info.count("\n") == 1, "run_info always describes the batch"

    only_rgba = graph(("5", "SaveImage", ["2", 2]))
    comfy.prompts["p1"] = only_rgba
    image, mask, rgba, _, _ = run_classic(comfy, only_rgba, batch)
    assert torch.equal(rgba, full[2]) and image.shape == (1, 1, 1, 3) and mask.shape == (1, 1, 1)
    assert bound.emu.stats["creates"] == 2, "the later executions were answered by the cache"


def test_without_the_queues_view_the_classic_node_builds_everything(
    bound: Bound, comfy: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An executor that gives the hidden PROMPT but whose queue the fingerprint cannot read."""
    monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace())
    photo = product_tensor((9, 9, 9))
    image, mask, rgba, _, input_mask = run_classic(comfy, graph(("3", "PreviewImage", ["2", 0])), photo)
    assert image.shape == (1, 1024, 1024, 3) and mask.shape == (1, 1024, 1024) and rgba.shape == (1, 1024, 1024, 4)
    assert input_mask.shape == photo.shape[:3], "input_mask too, at the input's size"


def test_connecting_another_output_changes_the_fingerprint_so_comfyui_runs_the_node_again(
    comfy: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ComfyUI keys its output cache on the node's inputs and fingerprint, not on what is connected: an
    output connected after a run that left it out must not be answered with its cached stand-in."""
    monkeypatch.setenv("RUNFLOW_MODE", "emulator")
    seen = partial(comfy.fingerprint, nodes.RunflowProductIsolation)
    image_only = seen(graph(("3", "PreviewImage", ["2", 0])))
    assert image_only == seen(graph(("3", "PreviewImage", ["2", 0]), ("4", "PreviewAny", ["2", 3])))
    assert image_only != seen(graph(("3", "PreviewImage", ["2", 0]), ("5", "SaveImage", ["2", 2])))
    assert image_only == seen(graph(("3", "PreviewImage", ["2", 0]))), "the same links: the cache may answer"
    comfy.prompts.clear()
    fingerprint = nodes.RunflowProductIsolation.IS_CHANGED
    assert comfy.run("p1", "2", lambda: fingerprint(graph={}, unique_id="2")) == "emulator", "links unknown"


def test_the_url_node_builds_only_the_connected_outputs_too(bound: Bound, comfy: Running) -> None:
    (urls,) = nodes.RunflowStageImage().stage(product_tensor((30, 30, 200)))  # the Stage node builds no tensors
    prompt = graph(("4", "MaskPreview", ["2", 1]))
    prompt["2"]["class_type"] = "RunflowProductIsolationFromURL"
    comfy.prompts["p1"] = prompt
    node = nodes.RunflowProductIsolationFromURL()
    params = {"aspect_ratio": "4:3", "resolution": "1K", "unique_id": "2", "graph": prompt}
    image, mask, rgba, _, _ = comfy.run("p1", "2", lambda: node.isolate(urls, **params))["result"]
    assert mask.shape == (1, 768, 1024) and 0 < float(mask.mean()) < 1
    assert image.shape == (1, 1, 1, 3) and rgba.shape == (1, 1, 1, 4)
