"""The pack loads the way ComfyUI loads it, with no ComfyUI present, and its node contracts hold.

Node ids, input names and widget order are saved in users' workflows, so these tests pin them: a
renamed node, a widget inserted in the middle or a missing tooltip fails here, not in a user's graph.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from comfy_harness import NODES_ADDED_SINCE_0_1_0, PACK_DIR, appended_since_0_1_0, load_pack

EXPECTED_NAMES = {
    "RunflowProductIsolation": "Runflow Product Isolation",
    "RunflowProductIsolationFromURL": "Runflow Product Isolation (URL)",
    "RunflowStageImage": "Runflow Stage Image",
    "RunflowLoadPhoto": "Runflow Load Photo",  # issue #32
    # Issue #35: new nodes, so nothing saved before names them.
    "RunflowMarketplaceImage": "Runflow Marketplace Image",
    "RunflowSaveMarketplaceFile": "Runflow Save Marketplace File",
}
OUTPUT_NODES = ("RunflowSaveMarketplaceFile",)  # writes files: ComfyUI runs it with nothing downstream
ISOLATION_NODES = ("RunflowProductIsolation", "RunflowProductIsolationFromURL")
# Widget order (widgets_values in saved workflows) as 0.1.0 shipped it: frozen.
WIDGET_ORDER_0_1_0 = {
    "RunflowProductIsolation": [
        "aspect_ratio", "resolution", "prompt", "background", "force_rerun", "spend_limit", "concurrency",
    ],
    "RunflowProductIsolationFromURL": [
        "image_urls", "aspect_ratio", "resolution", "prompt", "background", "force_rerun", "spend_limit",
        "concurrency",
    ],
    "RunflowStageImage": ["lossless"],
}  # fmt: skip
# The widget order of every node as it first shipped (0.1.0's, then the nodes added since, as
# comfy_harness.NODES_ADDED_SINCE_0_1_0 pins them): frozen from then on.
WIDGET_ORDER_FIRST = {**WIDGET_ORDER_0_1_0,
                      **{node_id: added["widgets"] for node_id, added in NODES_ADDED_SINCE_0_1_0.items()}}
# New inputs may only be appended (issue #11 appended `metadata` and `outputs` to the isolation nodes, issue
# #22 `edges`, issue #34 `margin`, issue #36 the shadow's): which ones, the declaration says.
APPENDED = {node_id: list(appended_since_0_1_0()) for node_id in ISOLATION_NODES}
WIDGET_ORDER = {node_id: [*order, *APPENDED.get(node_id, [])] for node_id, order in WIDGET_ORDER_FIRST.items()}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
SECRET_NAME = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    return load_pack()


def _inputs(cls: type) -> dict[str, tuple]:
    spec = cls.INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def _widgets(cls: type) -> list[str]:
    return [name for name, spec in _inputs(cls).items() if isinstance(spec[0], list) or spec[0] in WIDGET_TYPES]


def test_mappings_are_exactly_the_declared_nodes(pack: ModuleType) -> None:
    assert set(pack.NODE_CLASS_MAPPINGS) == set(EXPECTED_NAMES)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == EXPECTED_NAMES


def test_the_nodes_are_declared_in_the_top_level_nodes_py(pack: ModuleType) -> None:
    """Where a reader finds the nodes: nodes.py beside __init__.py, declaring exactly these."""
    assert Path(pack.nodes.__file__) == PACK_DIR / "nodes.py"
    assert {node.node_id for node in pack.nodes.NODES} == set(EXPECTED_NAMES)
    assert not (PACK_DIR / "nodes").exists(), "a nodes/ package would shadow nodes.py"


def test_web_directory_exists(pack: ModuleType) -> None:
    assert pack.WEB_DIRECTORY == "./web"
    assert (PACK_DIR / pack.WEB_DIRECTORY).is_dir()


@pytest.mark.parametrize("node_id", sorted(EXPECTED_NAMES))
def test_node_contract_is_consistent(pack: ModuleType, node_id: str) -> None:
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"}
    # The prompt is `graph` in a classic node: a hidden `prompt` would overwrite the `prompt` widget's value.
    hidden = {"unique_id": "UNIQUE_ID", "graph": "PROMPT"} if node_id in ISOLATION_NODES else {"unique_id": "UNIQUE_ID"}
    assert spec.get("hidden") == hidden
    count = len(cls.RETURN_TYPES)
    assert count > 0 and len(cls.RETURN_NAMES) == count and len(cls.OUTPUT_TOOLTIPS) == count
    assert all(isinstance(tip, str) and len(tip) > 20 for tip in cls.OUTPUT_TOOLTIPS)
    assert cls.CATEGORY == "Runflow"
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40
    assert not getattr(cls, "API_NODE", False) and getattr(cls, "OUTPUT_NODE", False) == (node_id in OUTPUT_NODES)
    assert callable(getattr(cls(), cls.FUNCTION))
    for name, (_kind, *rest) in _inputs(cls).items():
        options = rest[0] if rest else {}
        assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert not SECRET_NAME.search(name), f"{node_id}.{name} looks like a place for a secret"
    for name, (kind, options) in spec.get("optional", {}).items():  # a socket (IMAGE, MASK) may be left empty
        assert "default" in options or kind in ("IMAGE", "MASK"), f"optional {node_id}.{name} needs a default"
    # What runs the node takes exactly the declared inputs (the declaration fills the defaults).
    node = cls.NODE
    inputs = node.bind((), {spec.name: spec.default for spec in node.inputs if not spec.optional})
    inspect.signature(node.run).bind(**inputs, **dict.fromkeys(node.hidden_inputs.values()))
    if node_id in ISOLATION_NODES:
        # Each declared input reaches something: a control of the run, a post-processing option or an
        # isolation option (`_isolate` routes the last two by name), and each control is declared.
        run = inspect.signature(pack.node_machinery.execution._isolate).parameters
        controls = {name for name, parameter in run.items() if parameter.kind is parameter.KEYWORD_ONLY}
        post = {field.name for field in dataclasses.fields(pack.runflow_api.pictures.post_processing.PostProcessing)}
        options = set(pack.runflow_api.product_isolation.option_names())
        declared = [spec.name for spec in node.inputs[1:]]
        assert set(declared) <= controls | post | options, "a declared input that the run would refuse"
        assert controls - {"unique_id", "graph"} <= set(declared) and post <= set(declared)


@pytest.mark.parametrize("node_id", ISOLATION_NODES)
def test_isolation_outputs_are_image_mask_rgba_run_info(pack: ModuleType, node_id: str) -> None:
    """0.1.0's four outputs keep their slots; issue #37's input_mask is appended after them."""
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    assert cls.RETURN_NAMES == ("image", "mask", "rgba", "run_info", "input_mask")
    assert cls.RETURN_TYPES == ("IMAGE", "MASK", "IMAGE", "STRING", "MASK")
    assert "1 = product" in cls.OUTPUT_TOOLTIPS[1] and "1 = product" in cls.OUTPUT_TOOLTIPS[4]


def test_stage_node_returns_url_strings(pack: ModuleType) -> None:
    cls = pack.NODE_CLASS_MAPPINGS["RunflowStageImage"]
    assert cls.RETURN_TYPES == ("STRING",) and cls.RETURN_NAMES == ("url",)
    assert _inputs(cls)["image"][0] == "IMAGE"


@pytest.mark.parametrize("node_id", sorted(EXPECTED_NAMES))
def test_widget_order_is_append_only(pack: ModuleType, node_id: str) -> None:
    assert _widgets(pack.NODE_CLASS_MAPPINGS[node_id]) == WIDGET_ORDER[node_id]


def test_combos_equal_the_engine_tables(pack: ModuleType) -> None:
    model = pack.runflow_api.product_isolation
    image_node = _inputs(pack.NODE_CLASS_MAPPINGS["RunflowProductIsolation"])
    url_node = _inputs(pack.NODE_CLASS_MAPPINGS["RunflowProductIsolationFromURL"])
    assert image_node["aspect_ratio"][0] == ["auto", *model.ASPECT_RATIOS]
    # 'auto' came later to the URL node, appended so every saved value keeps its place; default unchanged.
    assert url_node["aspect_ratio"][0] == [*model.ASPECT_RATIOS, "auto"]
    assert url_node["aspect_ratio"][1]["default"] == "1:1"
    for inputs in (image_node, url_node):
        assert inputs["resolution"][0] == list(model.RESOLUTIONS) == ["1K", "2K", "4K"]
        assert inputs["resolution"][1]["default"] == "2K"
        assert inputs["concurrency"][1] | {"tooltip": ""} == {
            "default": 8,
            "min": 1,
            "max": 32,
            "tooltip": "",
        }
        assert inputs["spend_limit"][0] == "FLOAT" and inputs["spend_limit"][1]["default"] == 0.0
        assert "0 = no limit" in inputs["spend_limit"][1]["tooltip"]
        assert inputs["background"][1]["default"] == "transparent"
        assert inputs["force_rerun"][1]["default"] is False
        assert inputs["prompt"][1]["multiline"] is True


def test_the_appended_inputs_default_to_todays_behaviour(pack: ModuleType) -> None:
    outputs_choices = pack.runflow_api.pictures.result_types.OUTPUT_MODES
    for node_id in ISOLATION_NODES:
        inputs = _inputs(pack.NODE_CLASS_MAPPINGS[node_id])
        assert inputs["metadata"] == ("STRING", inputs["metadata"][1])
        assert inputs["metadata"][1]["default"] == "" and inputs["metadata"][1]["multiline"] is True
        assert inputs["outputs"][0] == list(outputs_choices) == ["first", "all"]
        assert inputs["outputs"][1]["default"] == "first"
    stage = _inputs(pack.NODE_CLASS_MAPPINGS["RunflowStageImage"])
    assert "metadata" not in stage and "outputs" not in stage


def test_force_rerun_and_mode_drive_re_execution(pack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = pack.NODE_CLASS_MAPPINGS["RunflowProductIsolation"]
    forced = cls.IS_CHANGED(force_rerun=True, aspect_ratio="1:1")
    assert forced != forced  # NaN: ComfyUI runs the node again every time
    monkeypatch.setenv("RUNFLOW_MODE", "emulator")
    emulator = cls.IS_CHANGED(force_rerun=False)
    monkeypatch.setenv("RUNFLOW_MODE", "runflow")
    assert emulator != cls.IS_CHANGED(force_rerun=False)


def test_bad_background_is_refused_before_anything_runs(pack: ModuleType) -> None:
    cls = pack.NODE_CLASS_MAPPINGS["RunflowProductIsolation"]
    assert cls.VALIDATE_INPUTS(background="#ffffff") is True
    assert cls.VALIDATE_INPUTS(background="transparent") is True
    message = cls.VALIDATE_INPUTS(background="not-a-colour")
    assert isinstance(message, str) and "not-a-colour" in message


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter, without RUNFLOW_* variables (they would override the pack's defaults)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNFLOW_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(PACK_DIR / "tests"),
        env=env,
    )


def test_loads_under_comfyuis_module_name_without_comfyui() -> None:
    """ComfyUI names the module after the folder path; nothing of ComfyUI may be imported."""
    result = _run_python(
        f"""
        import importlib.util, sys
        name = "/opt/ComfyUI/custom_nodes/runflow-product-isolation"
        spec = importlib.util.spec_from_file_location(name, {str(PACK_DIR / "__init__.py")!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        assert len(module.NODE_CLASS_MAPPINGS) == {len(EXPECTED_NAMES)}
        # `nodes` too: ComfyUI's own top-level module; the pack's nodes.py is only ever imported relatively.
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("comfy", "server", "folder_paths", "nodes"))
        assert not leaked, leaked
        assert not any(m.endswith(".routes") for m in sys.modules), "routes imported outside ComfyUI"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""  # no warnings when optional ComfyUI parts are simply absent


def test_inside_comfyui_the_engine_uses_comfyuis_user_directory(tmp_path: Path) -> None:
    result = _run_python(
        f"""
        import sys, types, logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        folder_paths = types.ModuleType("folder_paths")
        folder_paths.get_user_directory = lambda: {str(tmp_path)!r}
        sys.modules["folder_paths"] = folder_paths
        from comfy_harness import load_pack
        pack = load_pack()
        directories = pack.runflow_api.settings.directories
        print(directories.key_file_path(), directories.cache_dir(), directories.data_dir(), sep="\\n")
        """
    )
    assert result.returncode == 0, result.stderr
    base = tmp_path / "runflow"
    assert result.stdout.split() == [str(base / "api_key"), str(base / "cache"), str(base)]


def test_missing_routes_module_is_one_log_line_not_an_import_failure() -> None:
    result = _run_python(
        """
        import importlib.abc, logging, sys, types
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

        class NoRoutes(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.endswith(".routes"):
                    raise ImportError("No module named 'routes' (simulated)")
                return None

        sys.meta_path.insert(0, NoRoutes())
        server = types.ModuleType("server")
        server.PromptServer = type("PromptServer", (), {"instance": object()})
        sys.modules["server"] = server
        from comfy_harness import load_pack
        print(len(load_pack().NODE_CLASS_MAPPINGS))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(EXPECTED_NAMES))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("WARNING") and "routes" in lines[0], result.stderr


def test_example_workflows_are_complete(pack: ModuleType) -> None:
    """Each workflow has its thumbnail, uses bundled sample photos, and fills every widget our nodes had in
    0.1.0. They are kept as saved before `metadata` and `outputs` were appended, so they prove that such a
    workflow still loads (and, in test_comfyui_real.py, runs) with those inputs at their defaults."""
    folder = PACK_DIR / "example_workflows"
    workflows = sorted(folder.glob("*.json"))
    assert len(workflows) >= 3
    samples = {path.name for path in (PACK_DIR / "examples").iterdir()}
    for path in workflows:
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"
        workflow = json.loads(path.read_text(encoding="utf-8"))
        ids = {node["id"] for node in workflow["nodes"]}
        for link in workflow["links"]:
            assert link[1] in ids and link[3] in ids, f"{path.name}: link {link[0]} joins unknown nodes"
        ours = [node for node in workflow["nodes"] if node["type"] in EXPECTED_NAMES]
        assert ours, f"{path.name} uses none of the pack's nodes"
        for node in ours:
            if node["type"] == "RunflowLoadPhoto":  # the photo, then the upload button's value, as LoadImage's
                assert node["widgets_values"][0] in samples, f"{path.name}: {node['widgets_values'][0]} not bundled"
                continue
            assert len(node["widgets_values"]) == len(WIDGET_ORDER_FIRST[node["type"]]), f"{path.name}: {node['id']}"
        # Issue #32: photos are loaded with the pack's own loader (colour profiles, HEIC), not LoadImage.
        assert not [node for node in workflow["nodes"] if node["type"] == "LoadImage"], path.name
