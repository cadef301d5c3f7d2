"""The one node declaration: it renders the classic nodes exactly as 0.1.0 shipped them, binds inputs
the way ComfyUI and scripts call them, refuses a declaration that would break saved workflows, and on a
ComfyUI too old for the V3 API says so in one line while the nodes keep working.

tests/fixtures/object_info_0.1.0.json is `/object_info` for the three nodes, recorded from a real
ComfyUI 0.3.64 running the pack before the move to the V3 schema, and kept as that record. What the
nodes promise now is that record plus the `metadata` and `outputs` inputs appended to the isolation
nodes and the display texts corrected since (comfy_harness.promised_object_info). test_comfyui_real.py
compares the live V3 nodes with it; here the classic rendering is compared byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any

import pytest
from comfy_harness import (
    FIXTURE_0_1_0,
    HIDDEN_SINCE_0_1_0,
    ISOLATION_NODE_IDS,
    NODES_ADDED_SINCE_0_1_0,
    PACK_DIR,
    RELEASED_DEFAULTS_SINCE_0_1_0,
    appended_since_0_1_0,
    load_pack,
    node_contract,
    outputs_appended_since_0_1_0,
    promised_object_info,
    revised_since_0_1_0,
)

RECORDED: dict[str, Any] = json.loads(FIXTURE_0_1_0.read_text(encoding="utf-8"))
PROMISED: dict[str, Any] = promised_object_info()


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    return load_pack()


def classic_object_info(cls: type, node_id: str, display_name: str) -> dict[str, Any]:
    """What ComfyUI's `/object_info` builds from a V1 class (server.py `node_info`)."""
    inputs = cls.INPUT_TYPES()
    return json.loads(json.dumps({
        "input": inputs,
        "input_order": {section: list(names) for section, names in inputs.items()},
        "output": list(cls.RETURN_TYPES),
        "output_is_list": [False] * len(cls.RETURN_TYPES),
        "output_name": list(cls.RETURN_NAMES),
        "output_tooltips": list(cls.OUTPUT_TOOLTIPS),
        "name": node_id,
        "display_name": display_name,
        "description": cls.DESCRIPTION,
        "category": cls.CATEGORY,
        "output_node": False,
    }))  # fmt: skip


@pytest.mark.parametrize("node_id", sorted(RECORDED))
def test_the_classic_rendering_is_0_1_0_plus_the_appended_metadata_and_outputs(pack: ModuleType, node_id: str) -> None:
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    live = classic_object_info(cls, node_id, pack.NODE_DISPLAY_NAME_MAPPINGS[node_id])
    promised = {key: PROMISED[node_id][key] for key in live}
    assert live == promised  # byte for byte, not only the contract
    assert node_contract(live) == node_contract(PROMISED[node_id])
    # Taking the appended inputs away again leaves exactly what 0.1.0 shipped, with its corrected texts.
    appended = list(appended_since_0_1_0()) if node_id in ISOLATION_NODE_IDS else []
    optional = live["input"].get("optional", {})
    assert list(optional)[len(optional) - len(appended):] == appended, "appended last, in this order"
    for name in appended:
        del live["input"]["optional"][name]
        live["input_order"]["optional"].remove(name)
    for name in HIDDEN_SINCE_0_1_0 if node_id in ISOLATION_NODE_IDS else ():
        del live["input"]["hidden"][name]
        live["input_order"]["hidden"].remove(name)
    # And the appended outputs, which must be the last ones: 0.1.0's outputs keep their slots.
    added = outputs_appended_since_0_1_0() if node_id in ISOLATION_NODE_IDS else []
    if added:
        assert live["output_name"][-len(added):] == [name for name, _, _ in added], "outputs appended last"
        for key in ("output", "output_is_list", "output_name", "output_tooltips"):
            live[key] = live[key][: -len(added)]
    shipped = {**RECORDED[node_id], **revised_since_0_1_0().get(node_id, {})}
    assert live == {key: shipped[key] for key in live}


def test_the_declaration_is_the_only_list_of_nodes(pack: ModuleType) -> None:
    declared = pack.nodes.NODES
    assert [node.node_id for node in declared] == list(pack.NODE_CLASS_MAPPINGS) == [
        *sorted(RECORDED), *NODES_ADDED_SINCE_0_1_0]
    for node in declared:
        assert pack.NODE_CLASS_MAPPINGS[node.node_id].NODE is node
        if node.node_id in NODES_ADDED_SINCE_0_1_0:
            shipped = NODES_ADDED_SINCE_0_1_0[node.node_id]
            assert [spec.name for spec in node.inputs] == shipped["inputs"]
            assert [out.name for out in node.outputs] == shipped["outputs"]
            continue
        order = PROMISED[node.node_id]["input_order"]
        assert [spec.name for spec in node.inputs] == order["required"] + order.get("optional", [])


def test_the_inputs_appended_since_0_1_0_keep_their_released_defaults() -> None:
    """A workflow saved before an input existed runs with its default; every appended input has one."""
    appended = appended_since_0_1_0()
    assert list(appended)[: len(RELEASED_DEFAULTS_SINCE_0_1_0)] == list(RELEASED_DEFAULTS_SINCE_0_1_0)
    for name, spec in appended.items():
        assert "default" in spec[1], f"appended input {name!r} has no default"
    released = {name: appended[name][1]["default"] for name in RELEASED_DEFAULTS_SINCE_0_1_0}
    assert released == RELEASED_DEFAULTS_SINCE_0_1_0


def test_bind_fills_declared_defaults_and_takes_positions_in_declared_order(pack: ModuleType) -> None:
    node = pack.nodes.PRODUCT_ISOLATION
    bound = node.bind(("IMG", "4:3"), {"resolution": "1K", "concurrency": 3})
    appended = {name: spec[1]["default"] for name, spec in appended_since_0_1_0().items()}
    assert bound == {
        "image": "IMG", "aspect_ratio": "4:3", "resolution": "1K", "prompt": "", "background": "transparent",
        "force_rerun": False, "spend_limit": 0.0, "concurrency": 3, **appended,
    }  # fmt: skip
    assert list(appended)[:2] == ["metadata", "outputs"]
    with pytest.raises(TypeError, match="no input 'api_key'"):
        node.bind(("IMG", "4:3", "1K"), {"api_key": "x"})
    with pytest.raises(TypeError, match="required input 'resolution' missing"):
        node.bind(("IMG", "4:3"), {})
    with pytest.raises(TypeError, match="given twice"):
        node.bind(("IMG",), {"image": "IMG"})


def test_a_declaration_that_would_break_saved_workflows_is_refused(pack: ModuleType) -> None:
    spec = pack.node_machinery.spec
    with pytest.raises(ValueError, match="needs a default"):
        spec.InputDef("metadata", "STRING", "x", optional=True)
    with pytest.raises(ValueError, match="choices"):
        spec.InputDef("outputs", "COMBO", "x", default="first")
    late_required = spec.InputDef("late", "STRING", "x", default="")
    node = pack.nodes.STAGE_IMAGE
    with pytest.raises(ValueError, match="required input 'late' after an optional one"):
        spec.NodeDef(**{**vars(node), "inputs": (*node.inputs, late_required)})


def test_an_appended_input_reaches_both_renderings_from_one_line(pack: ModuleType) -> None:
    """The change issue #11 made for `metadata` and `outputs`, and the next input will make: one InputDef
    appended to a node's inputs."""
    spec = pack.node_machinery.spec
    node = pack.nodes.PRODUCT_ISOLATION
    extra = spec.InputDef("quality", "COMBO", "Which.", optional=True, default="draft", choices=("draft", "fine"))
    grown = spec.NodeDef(**{**vars(node), "inputs": (*node.inputs, extra)})
    cls = pack.node_machinery.classic.classic_class(grown)
    assert list(cls.INPUT_TYPES()["optional"])[-1] == "quality"
    assert cls.INPUT_TYPES()["optional"]["quality"] == (["draft", "fine"], {"default": "draft", "tooltip": "Which."})
    assert grown.widget_order == [*node.widget_order, "quality"]
    assert grown.bind(("IMG", "1:1", "1K"), {})["quality"] == "draft"


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNFLOW_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=str(PACK_DIR / "tests"), env=env)  # fmt: skip


def test_a_comfyui_older_than_the_v3_api_gets_the_classic_nodes_and_one_line() -> None:
    """Inside a ComfyUI (its `comfyui_version` importable) without comfy_api.v0_0_2."""
    result = _run_python(
        """
        import logging, sys, types
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        sys.modules["comfyui_version"] = types.SimpleNamespace(__version__="0.3.40")
        from comfy_harness import load_pack
        pack = load_pack()
        print(sorted(pack.NODE_CLASS_MAPPINGS), hasattr(pack, "comfy_entrypoint"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("]")[1].strip() == "False" and "RunflowStageImage" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("WARNING") and "ComfyUI 0.3.40" in lines[0] and "0.3.48 or later" in lines[0]
