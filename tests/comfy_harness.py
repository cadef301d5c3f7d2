"""Load the pack the way ComfyUI does, and drive a real ComfyUI with the pack installed.

Two jobs, for the tests and for anyone checking the pack by hand:

- `load_pack()` imports this repository as ComfyUI imports a custom-node folder (a package built from
  its `__init__.py`), so relative imports and the "no ComfyUI present" paths are exercised for real.
- `ComfyUI` starts a real ComfyUI checkout (`COMFYUI_DIR`) on a free loopback port, with the pack
  symlinked into `custom_nodes/`. Nothing is written into the checkout: ComfyUI runs with
  `--base-directory` pointing at a temporary folder that holds `custom_nodes/<pack link>`, `input/`,
  `output/`, `user/` and `temp/`, so several instances can run at once and every run starts clean.
  `COMFYUI_PYTHON` picks the interpreter (default: this one), `COMFYUI_PYTHONPATH` adds entries to its
  `PYTHONPATH` (e.g. a torchvision stand-in). Extra environment (RUNFLOW_MODE=emulator,
  RUNFLOW_DATA_DIR, ...) is passed per instance. Before starting, the interpreter is checked for
  ComfyUI's core modules: a wrong one raises `ComfyUIUnavailable` naming COMFYUI_PYTHON, instead of a
  ModuleNotFoundError buried in ComfyUI's log.

`ui_to_api()` converts a UI-format workflow (what the frontend saves, and `example_workflows/` holds)
into the API format `POST /prompt` takes, using `GET /object_info` for each node's widget order.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

PACK_DIR = Path(__file__).resolve().parents[1]
PACK_FOLDER_NAME = "runflow-product-isolation"
COMFYUI_DIR_ENV = "COMFYUI_DIR"
COMFYUI_PYTHON_ENV = "COMFYUI_PYTHON"
COMFYUI_PYTHONPATH_ENV = "COMFYUI_PYTHONPATH"

# Imported by ComfyUI's main.py on the way up; an interpreter without them cannot start it at all.
COMFYUI_CORE_MODULES = ("torch", "aiohttp", "yaml", "numpy", "PIL")
_FIND_MISSING = (
    "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if not importlib.util.find_spec(m)))"
)

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
SEED_WIDGET_NAMES = {"seed", "noise_seed"}


def load_pack(module_name: str = "runflow_pack") -> ModuleType:
    """Import the repository as ComfyUI imports a custom-node folder; reuse it when already loaded."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, PACK_DIR / "__init__.py", submodule_search_locations=[str(PACK_DIR)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


class ComfyUIUnavailable(RuntimeError):
    """ComfyUI cannot start as configured; the message says what to set."""


def interpreter_problem(python: str, pythonpath: str = "") -> str | None:
    """Why `python` cannot run ComfyUI, or None. A quick subprocess (find_spec, no imports): ComfyUI
    itself would only fail half-way through its start-up, in a log the tests show truncated."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    try:
        answer = subprocess.run([python, "-c", _FIND_MISSING, *COMFYUI_CORE_MODULES], env=env,
                                capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"{python} cannot be run ({exc.strerror or exc})"
    missing = answer.stdout.split()
    if answer.returncode != 0 or missing:
        return f"{python} cannot import {', '.join(missing) or 'its standard library'}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- UI format -> API format ---------------------------------------------------------------------------


def _is_widget(spec: Any) -> bool:
    """An input the frontend shows as a widget (and so stores in widgets_values)."""
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    options = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_control_widget(name: str, spec: Any) -> bool:
    """INT seeds get an extra "control_after_generate" widget whose value follows theirs."""
    options = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) else {}
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    return bool(options.get("control_after_generate")) or (kind == "INT" and name in SEED_WIDGET_NAMES)


def _ordered_inputs(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, spec) in the frontend's widget order: required then optional, as the server lists them."""
    inputs = info.get("input", {})
    order = info.get("input_order") or {section: list(inputs.get(section, {})) for section in ("required", "optional")}
    return [
        (name, inputs[section][name])
        for section in ("required", "optional")
        for name in order.get(section, [])
        if name in inputs.get(section, {})
    ]


def ui_to_api(workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a UI-format workflow into an API-format prompt.

    Linked inputs become `[source node id, output slot]`. `widgets_values` are mapped positionally onto
    the node's widget inputs in `object_info` order, skipping the extra "control_after_generate" value
    after seed-like INTs; a widget converted to a linked input keeps its slot in `widgets_values` but
    takes the link. Frontend-only nodes (notes) and muted/bypassed nodes are left out.
    """
    links = {link[0]: (str(link[1]), int(link[2])) for link in workflow.get("links", [])}
    prompt: dict[str, Any] = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if kind in FRONTEND_ONLY_NODES or node.get("mode", 0) != 0:
            continue
        if kind not in object_info:
            raise KeyError(f"node {node['id']} has type {kind!r}, which this ComfyUI does not know")
        inputs: dict[str, Any] = {}
        linked = {slot["name"]: links[slot["link"]] for slot in node.get("inputs", []) if slot.get("link") is not None}
        values = node.get("widgets_values", [])
        position = 0
        for name, spec in _ordered_inputs(object_info[kind]):
            if not _is_widget(spec):
                continue
            if isinstance(values, dict):
                if name in values:
                    inputs[name] = values[name]
                continue
            if position < len(values):
                inputs[name] = values[position]
            position += 2 if _has_control_widget(name, spec) else 1
        for name, source in linked.items():
            inputs[name] = [source[0], source[1]]
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt


# -- subgraph blueprints (subgraphs/*.json, ComfyUI 0.3.66 and later) ----------------------------------

BLUEPRINTS = sorted((PACK_DIR / "subgraphs").glob("*.json"))
SUBGRAPH_INPUT_NODE, SUBGRAPH_OUTPUT_NODE = -10, -20


def blueprint_workflow(blueprint: Mapping[str, Any], feed: Mapping[str, Any]) -> dict[str, Any]:
    """A blueprint's inner graph as a UI-format workflow, its one input fed by `feed` (a UI-format node
    whose output 0 goes where the blueprint's input goes), for `ui_to_api`. This is what the frontend
    queues when the blueprint sits in a graph, less the frontend's "outer:inner" node ids; the real
    placement in a browser is tests/test_browser_blueprints.py."""
    (subgraph,) = blueprint["definitions"]["subgraphs"]
    links = []
    for link in subgraph["links"]:
        if link["target_id"] == SUBGRAPH_OUTPUT_NODE:
            continue
        origin = feed["id"] if link["origin_id"] == SUBGRAPH_INPUT_NODE else link["origin_id"]
        origin_slot = 0 if link["origin_id"] == SUBGRAPH_INPUT_NODE else link["origin_slot"]
        links.append([link["id"], origin, origin_slot, link["target_id"], link["target_slot"], link["type"]])
    return {"nodes": [dict(feed), *subgraph["nodes"]], "links": links}


# -- a node's contract, whichever API declared it ------------------------------------------------------

# What a node promises saved workflows and downstream nodes; display texts are checked apart.
CONTRACT_KEYS = ("input", "input_order", "output", "output_is_list", "output_name", "output_tooltips",
                 "name", "display_name", "description", "category", "output_node")  # fmt: skip


def _canonical_input(spec: Any) -> Any:
    """A V1 input spec with a dropdown spelled one way: V1 writes `[choices, options]`, a V3 node
    `["COMBO", {"options": choices, "multiselect": false, ...}]`, and the frontend reads both alike."""
    kind, options = spec[0], dict(spec[1]) if len(spec) > 1 else {}
    if kind == "COMBO":
        kind = list(options.pop("options"))
        if options.get("multiselect") is False:
            del options["multiselect"]
    return [kind, options]


def node_contract(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An `/object_info` entry reduced to its contract: ids, inputs (names, order, types, choices,
    defaults, limits, tooltips), outputs and texts; the hidden inputs by kind (V1 writes "UNIQUE_ID",
    V3 ["UNIQUE_ID"]); where the code lives (`python_module`) and the V3-only flags left out."""
    contract = {key: entry.get(key) for key in CONTRACT_KEYS}
    inputs = entry.get("input", {})
    contract["input"] = {
        section: (
            _hidden_kinds(inputs[section])
            if section == "hidden"
            else {name: _canonical_input(spec) for name, spec in inputs[section].items()}
        )
        for section in inputs
    }
    if "hidden" in inputs and isinstance(contract.get("input_order"), dict):
        contract["input_order"] = {**contract["input_order"], "hidden": _hidden_kinds(inputs["hidden"])}
    return json.loads(json.dumps(contract))


def _hidden_kinds(hidden: Mapping[str, Any]) -> list[str]:
    """What a node asks ComfyUI for, by kind. The names differ between the APIs and matter to no saved
    workflow: V3 names the prompt `prompt` (io.Hidden.prompt), the classic node `graph`, since a classic
    hidden input must not share the name of the `prompt` widget."""
    return sorted(kind if isinstance(kind, str) else kind[0] for kind in hidden.values())


# -- what the nodes promise: 0.1.0 as recorded, plus the inputs appended since ---------------------------

FIXTURE_0_1_0 = PACK_DIR / "tests" / "fixtures" / "object_info_0.1.0.json"
ISOLATION_NODE_IDS = ("RunflowProductIsolation", "RunflowProductIsolationFromURL")
# Nodes added since 0.1.0 (no 0.1.0 workflow holds them), in the order they were appended to the declaration,
# each pinned as it first shipped: its inputs, its widgets (a saved workflow's widgets_values) and its outputs,
# in order. The one list of them in the tests: new nodes are appended here; these never change.
NODES_ADDED_SINCE_0_1_0: dict[str, dict[str, list[str]]] = {
    # Issue #32.
    "RunflowLoadPhoto": {"inputs": ["image"], "widgets": ["image"], "outputs": ["image", "mask"]},
    # Issue #35.
    "RunflowMarketplaceImage": {"inputs": ["image", "preset", "mask", "custom_preset", "edges"],
                                "widgets": ["preset", "custom_preset", "edges"],
                                "outputs": ["image", "mask", "report"]},
    "RunflowSaveMarketplaceFile": {"inputs": ["image", "preset", "mask", "custom_preset", "filename_prefix"],
                                   "widgets": ["preset", "custom_preset", "filename_prefix"], "outputs": ["report"]},
}


# The defaults of the inputs appended since 0.1.0, as released (issue #11: `metadata`, `outputs`; issue #22:
# `edges`; issue #34: `margin`; issue #36: the shadow's three). A workflow saved before an input existed runs
# with its default, so changing one would change what old workflows do: these stay written out. Which inputs
# were appended is read from the declaration.
RELEASED_DEFAULTS_SINCE_0_1_0 = {"metadata": "", "outputs": "first", "edges": "as returned", "margin": 0,
                                 "shadow": "none", "shadow_strength": 0.5, "shadow_softness": 0.5}


def appended_since_0_1_0() -> dict[str, Any]:
    """The optional inputs both isolation nodes have gained since 0.1.0, read from the declaration
    (`nodes.ISOLATION_OPTIONS`: those the 0.1.0 record lacks, in declared order) and spelled as a V1
    `/object_info` spells them, so appending an input needs no second list here."""
    recorded = json.loads(FIXTURE_0_1_0.read_text(encoding="utf-8"))[ISOLATION_NODE_IDS[0]]["input"]["optional"]
    declared = load_pack().NODE_CLASS_MAPPINGS[ISOLATION_NODE_IDS[0]].INPUT_TYPES()["optional"]
    return json.loads(json.dumps({name: spec for name, spec in declared.items() if name not in recorded}))


def outputs_appended_since_0_1_0() -> list[tuple[str, str, str]]:
    """The outputs appended to both isolation nodes since 0.1.0, in order, as (name, type, tooltip)
    (issue #37: `input_mask`), read from the declaration: those past the 0.1.0 record's outputs. Saved
    workflows link outputs by slot, so these only ever go at the end."""
    recorded = json.loads(FIXTURE_0_1_0.read_text(encoding="utf-8"))[ISOLATION_NODE_IDS[0]]["output"]
    node = load_pack().NODE_CLASS_MAPPINGS[ISOLATION_NODE_IDS[0]]
    declared = list(zip(node.RETURN_NAMES, node.RETURN_TYPES, node.OUTPUT_TOOLTIPS, strict=True))
    return declared[len(recorded):]


def emulator_env(base_url: str, key: str, state: Path) -> dict[str, str]:
    """ComfyUI's environment for a test's own emulator: the pack talks to it as to Runflow (so the test
    can count what it was asked), with its data, cache and key file under `state`."""
    return {"RUNFLOW_MODE": "runflow", "RUNFLOW_API_BASE": base_url, "RUNFLOW_API_KEY": key,
            "RUNFLOW_DATA_DIR": str(state / "data"), "RUNFLOW_CACHE_DIR": str(state / "cache"),
            "RUNFLOW_KEY_FILE": str(state / "no_key")}


# Hidden inputs added to both isolation nodes since 0.1.0 (issue #24: the prompt, to see which outputs are
# connected), as a classic node names them. Hidden inputs are no widgets: saved workflows do not hold them.
HIDDEN_SINCE_0_1_0 = {"graph": "PROMPT"}


def revised_since_0_1_0() -> dict[str, dict[str, str]]:
    """Display texts corrected since 0.1.0, written out here so that a change is deliberate. A node's
    description is shown, never saved in a workflow. Issue #26: 0.1.0 said every image of a batch runs
    at once, but `concurrency` (default 8) bounds the runs in flight."""
    return {"RunflowProductIsolation": {"description": (
        "Isolates the product in each photo with Runflow's hosted model ($0.27 per image), cropped and framed "
        "to an aspect ratio. Each image of a batch is its own run, up to `concurrency` at once (default 8: a "
        "batch of 16 runs in two waves); results are cached, so the same image with the same settings is never "
        "paid for twice. Works offline and free in emulator mode. The API key is never a widget: set it in "
        "Settings > Runflow or RUNFLOW_API_KEY."
    )}}


def promised_object_info() -> dict[str, Any]:
    """`/object_info` for the three nodes as they must be now: the 0.1.0 record (kept as recorded) with
    `appended_since_0_1_0()` added at the end of each isolation node's optional inputs and
    `HIDDEN_SINCE_0_1_0` to its hidden ones, and the texts of `revised_since_0_1_0()`. Nothing else may
    differ, so every saved workflow keeps loading."""
    promised: dict[str, Any] = json.loads(FIXTURE_0_1_0.read_text(encoding="utf-8"))
    for node_id, texts in revised_since_0_1_0().items():
        promised[node_id].update(texts)
    for node_id in ISOLATION_NODE_IDS:
        entry = promised[node_id]
        for name, spec in appended_since_0_1_0().items():
            entry["input"]["optional"][name] = spec
            entry["input_order"]["optional"].append(name)
        for name, kind in HIDDEN_SINCE_0_1_0.items():
            entry["input"]["hidden"][name] = kind
            entry["input_order"]["hidden"].append(name)
        for name, kind, tooltip in outputs_appended_since_0_1_0():
            entry["output"].append(kind)
            entry["output_is_list"].append(False)
            entry["output_name"].append(name)
            entry["output_tooltips"].append(tooltip)
    return promised


# -- a real ComfyUI --------------------------------------------------------------------------------------


class ComfyUI:
    """One ComfyUI server process with this pack installed; use as a context manager.

    `env` is added to the server's environment (e.g. RUNFLOW_MODE=emulator, RUNFLOW_API_KEY=...).
    `base_dir` (default: a fresh temporary folder, removed on stop) becomes ComfyUI's base directory;
    `input_dir`, `output_dir` and `user_dir` live inside it.
    """

    def __init__(
        self,
        comfy_dir: str | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        pythonpath: str | None = None,
        port: int | None = None,
        base_dir: str | Path | None = None,
        pack_folder_name: str = PACK_FOLDER_NAME,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        comfy_dir = comfy_dir or os.environ.get(COMFYUI_DIR_ENV)
        if not comfy_dir:
            raise RuntimeError(f"set {COMFYUI_DIR_ENV} to a ComfyUI checkout")
        self.comfy_dir = Path(comfy_dir).resolve()
        if not (self.comfy_dir / "main.py").is_file():
            raise RuntimeError(f"{self.comfy_dir} is not a ComfyUI checkout (no main.py)")
        self.python = python or os.environ.get(COMFYUI_PYTHON_ENV) or sys.executable
        self.pythonpath = pythonpath if pythonpath is not None else os.environ.get(COMFYUI_PYTHONPATH_ENV, "")
        self.port = port or free_port()
        self.env = dict(env or {})
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="comfyui-runflow-"))
        self.pack_folder_name = pack_folder_name
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def user_dir(self) -> Path:
        return self.base_dir / "user"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "comfyui.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def serve(self) -> Iterator[ComfyUI]:
        """For a fixture (`yield from server.serve()`): started, a ComfyUI that cannot start failing the test
        with what to set, and stopped afterwards."""
        try:
            self.start()
        except ComfyUIUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield self
        finally:
            self.stop()

    def __enter__(self) -> ComfyUI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check_interpreter(self) -> None:
        """Refuse to start ComfyUI with a Python that lacks its dependencies, saying what to set."""
        problem = interpreter_problem(self.python, self.pythonpath)
        if problem:
            default = self.python == sys.executable and not os.environ.get(COMFYUI_PYTHON_ENV)
            unset = " (it is unset, so the tests' own Python was used)" if default else ""
            raise ComfyUIUnavailable(
                f"ComfyUI in {self.comfy_dir} cannot start: {problem}. Set {COMFYUI_PYTHON_ENV}{unset} to the "
                f"Python of ComfyUI's own environment (e.g. ComfyUI/venv/bin/python), "
                f"add missing paths with {COMFYUI_PYTHONPATH_ENV}, or install ComfyUI's requirements.txt here."
            )

    def start(self, timeout: float = 120.0) -> None:
        """Check the interpreter, link the pack in, start the server and wait until it answers."""
        try:
            self.check_interpreter()
        except ComfyUIUnavailable:
            self.stop()  # nothing was started, but the temporary base directory must go
            raise
        for folder in ("custom_nodes", "input", "output", "user", "temp", "models"):
            (self.base_dir / folder).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / self.pack_folder_name
        if not link.exists():
            link.symlink_to(PACK_DIR, target_is_directory=True)
        env = {**os.environ, **self.env}
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.pythonpath, env.get("PYTHONPATH", "")) if p)
        command = [
            self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--disable-auto-launch", *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.comfy_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()  # a server that never came up must not leave its process or folder behind
            raise

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode}:\n{self.log_text()[-4000:]}")
            try:
                if self.session.get(f"{self.url}/system_stats", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        """Stop the server and remove the temporary base directory (when the harness made it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None
        self.session.close()
        if self._own_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- HTTP ---------------------------------------------------------------------------------------------

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        response = self.session.get(f"{self.url}{path}", timeout=timeout)
        response.raise_for_status()
        return response.json()

    def post_json(self, path: str, body: Any, timeout: float = 30.0) -> requests.Response:
        return self.session.post(f"{self.url}{path}", json=body, timeout=timeout)

    def object_info(self) -> dict[str, Any]:
        return dict(self.get_json("/object_info", timeout=60))

    def queue_prompt(self, prompt: Mapping[str, Any], extra_data: Mapping[str, Any] | None = None) -> str:
        """POST /prompt; returns the prompt id, or raises with ComfyUI's validation errors."""
        body: dict[str, Any] = {"prompt": prompt, "client_id": "runflow-tests"}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        response = self.post_json("/prompt", body)
        if not response.ok:
            raise RuntimeError(f"ComfyUI refused the prompt ({response.status_code}): {response.text}")
        return str(response.json()["prompt_id"])

    def wait_history(self, prompt_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The prompt's /history entry once it has finished (successfully or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry:  # ComfyUI adds the entry once the prompt has finished, however it ended
                return dict(entry)
            time.sleep(0.3)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log_text()[-4000:]}")

    def run_workflow(
        self,
        workflow: Mapping[str, Any],
        timeout: float = 120.0,
        object_info: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Convert a UI-format workflow, queue it with the workflow attached (as the frontend does, so
        saved PNGs embed it), and wait for its history entry."""
        prompt = ui_to_api(workflow, object_info or self.object_info())
        prompt_id = self.queue_prompt(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
        return self.wait_history(prompt_id, timeout)

    def interrupt(self) -> None:
        self.post_json("/interrupt", {}).raise_for_status()

    def cancel_once(self, prompt_id: str, started: Callable[[], bool], *, within: float = 60.0
                    ) -> tuple[dict[str, Any], float]:
        """Press Cancel once `started()` holds (checked every 20 ms, failing after `within` seconds), as a
        user would mid-run: (the prompt's history entry, seconds from the press to ComfyUI's
        `execution_interrupted` message, stamped by ComfyUI's own clock on this machine; inf when the
        prompt was not interrupted). Not to the history entry: after each prompt ComfyUI runs a full
        `gc.collect()` holding the GIL, and on 0.33, a bigger process, that kept `/history` from
        answering for up to 2.4 s after an interrupt that took 0.05 s (measured on a loaded machine)."""
        deadline = time.monotonic() + within
        while not started():
            assert time.monotonic() < deadline, self.log_text()[-3000:]
            time.sleep(0.02)
        pressed = time.time()
        self.interrupt()
        entry = self.wait_history(prompt_id, timeout=30)
        stamps = [data["timestamp"] for name, data in entry["status"]["messages"] if name == "execution_interrupted"]
        return entry, (stamps[0] / 1000 - pressed) if stamps else math.inf

    def output_files(self, entry: Mapping[str, Any]) -> list[Path]:
        """Every file a finished prompt reported in its outputs' "images" lists, as paths on disk."""
        roots = {"output": self.output_dir, "temp": self.base_dir / "temp", "input": self.input_dir}
        files = []
        for node_output in entry.get("outputs", {}).values():
            for item in node_output.get("images", []):
                files.append(roots[item.get("type", "output")] / item.get("subfolder", "") / item["filename"])
        return files
